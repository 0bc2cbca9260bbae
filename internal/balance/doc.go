// Package balance is the cluster's load-leveling policy, and only the
// policy: from load vectors and process statistics to migration
// decisions. It does no I/O and keeps no clock; the same input (with the
// same seed) gives the same decision. A driver in the agent feeds it once
// a second and carries out what it decides.
//
// # The openMosix algorithm, decentralized
//
// Every node decides for its own processes only (Decide), against the
// load vectors it holds of a random subset of its peers (gossiped every
// second). There is no master and no central scheduler in the loop: each
// pair of nodes levels its load on its own, so the work grows with the
// gossip, not with the cluster.
//
// A process goes where it gets the most work done per second: a node's
// rate for it is its core speed times the share of a core it would get
// there (its demand, capped by the node's cores over its runnable tasks,
// the newcomer counted on a target). Speeds are relative (1000 is the
// reference core), so a slow node with idle cores and a fast busy one are
// compared on what they give.
//
// # Whether a move pays
//
// As MOSIX estimated it, a process that has run for a time is expected to
// run about as long again: its remaining work is what it did in its age
// at its present rate. A move pays when the time it saves on that work is
// more than what it costs: the freeze, and the pre-copy, which sends the
// resident memory at the measured transfer rate while the process runs a
// little slower (Params.PreCopySlowdown of that time). The saving must
// also beat hysteresis: the target must give at least Params.MinSpeedup
// more, and the gain be at least Params.MinGain.
//
// # Stability
//
// A process that moved stays at least Params.MinResidency; a node that
// just received processes takes no more until its load is measured again
// (Admit, the target's own decision); decisions made in one round count
// themselves (a process moved in a round leaves its node's queue and
// joins its target's), and a node moves at most Params.MaxMoves a round
// (scaled by aggressiveness). Processes never ping-pong: a move back
// would need the same gain the other way, which the first move took.
//
// # Memory ushering first
//
// When a node's free memory falls below Params.MemLow of its total, or
// its memory pressure (PSI, some avg10) rises above Params.PSIHigh, it
// moves processes away before the kernel swaps or kills: those with the
// most resident memory for the least dirtying first (what moves the most
// relief for the least copying), to nodes with the most free memory that
// the move leaves above their own threshold. Ushering comes before load
// balancing: a node short of memory does not take guests and its own
// balancing waits until it is relieved.
//
// # Drain
//
// A draining node moves every process that can move, whatever the gain,
// to the best nodes that are not draining and accept guests, at most
// Params.MaxDrainMoves a round; no node moves anything to a draining one.
//
// # Why
//
// Every process gets a Verdict: where it goes and why (with the expected
// gain), or why it stays (pinned, cannot move and the reason, moved too
// recently, no better node, not worth it by how much), for `ssi balance
// why` and the balance log.
package balance
