package balance

import (
	"fmt"
	"math"
)

// Node is a node's load vector as the balancer sees it: its own, or a
// peer's as last gossiped, with the node's settings from the agreed state.
type Node struct {
	Number   int
	RunQueue float64 // runnable tasks, this node's processes among them
	Cores    int
	Speed    int // of one core, relative: 1000 is the reference core
	MemTotal uint64
	MemFree  uint64
	PSI      float64 // memory pressure: "some avg10", percent (0 if unknown)
	// AcceptGuests: the node takes processes from others (ssi node set N
	// accept-guests); SendAway: it moves its own away for load (ushering
	// and drain do not ask). Draining: ssi node drain.
	AcceptGuests bool
	SendAway     bool
	Draining     bool
	// Aggressiveness of the node's balancer, 0 to 1 (0: no moves for
	// load; ushering and drain still move).
	Aggressiveness float64
	// Guests: processes it received since its load was last measured
	// (the target's admission control; a sender counts its own moves of
	// the round here).
	Guests int
}

// Proc is one of this node's processes as the balancer sees it.
type Proc struct {
	CPID      int64
	CPU       float64 // cores it used over the last interval
	Threads   int     // its threads (the most cores it can use); 0 counts as 1
	Age       float64 // seconds since it started
	RSS       uint64  // resident memory, bytes
	DirtyRate float64 // bytes of memory it dirties a second
	Moves     int     // migrations so far
	SinceMove float64 // seconds since its last move; < 0: never moved
	Pinned    bool    // --no-migrate or ssi pin
	CantMove  string  // why it cannot move at all ("" if it can)
}

// Params are the balancer's tunables; Defaults gives those an operator
// would start with.
type Params struct {
	MinResidency    float64 // seconds a process stays after a move before it moves for load
	MinSpeedup      float64 // the target's rate over this node's, at aggressiveness 0.5, minus 1
	MinGain         float64 // seconds a move must save, at least
	MinAge          float64 // seconds a process must have run before it moves for load
	TransferRate    float64 // bytes a second a migration sends (measured by the driver)
	Freeze          float64 // seconds a migration keeps the process frozen
	PreCopySlowdown float64 // how much slower a process runs while it is copied (0.3: 30%)
	MaxMoves        int     // moves for load a round at aggressiveness 1
	MaxUsherMoves   int     // moves for memory a round
	MaxDrainMoves   int     // moves for a drain a round
	MaxGuests       int     // processes a node takes before its load is measured again (0: its cores)
	MemLow          float64 // a node is short of memory under this fraction of its total free
	MemMargin       float64 // ushering frees up to MemLow*(1+MemMargin); a target keeps that much
	PSIHigh         float64 // memory pressure (some avg10, %) that starts ushering
}

// Defaults are the parameters the agent starts with.
func Defaults() Params {
	return Params{
		MinResidency:    10,
		MinSpeedup:      0.25,
		MinGain:         2,
		MinAge:          1,
		TransferRate:    200 << 20,
		Freeze:          0.05,
		PreCopySlowdown: 0.3,
		MaxMoves:        2,
		MaxUsherMoves:   4,
		MaxDrainMoves:   4,
		MemLow:          0.10,
		MemMargin:       0.25,
		PSIHigh:         20,
	}
}

// Input is one round's decision for the node Self.
type Input struct {
	Self   Node
	Peers  []Node // the peers whose vectors this node holds (a random subset)
	Procs  []Proc // Self's processes that the balancer may consider
	Params Params
	Seed   uint64 // ties between equal targets are broken by it
}

// Reason is why a process moves.
type Reason string

const (
	ForMemory Reason = "memory" // memory ushering
	ForLoad   Reason = "load"   // load balancing
	ForDrain  Reason = "drain"  // its node is drained
)

// Move is a decision to migrate a process.
type Move struct {
	CPID   int64
	To     int
	Reason Reason
	Gain   float64 // seconds it is expected to save (load), or bytes it frees (memory)
	Detail string  // the figures behind it, for the log
}

// Verdict is what the round decided for one process: a move, or why it
// stays.
type Verdict struct {
	CPID int64
	Move *Move
	Stay string
}

// Decision is a round's outcome: the moves in the order to make them, and
// a verdict for every process of the input.
type Decision struct {
	Moves    []Move
	Verdicts []Verdict
	// Short says why the node counts as short of memory ("" if not).
	Short string
}

// Why is the verdict for cpid ("" if it was not in the input).
func (d Decision) Why(cpid int64) string {
	for _, v := range d.Verdicts {
		if v.CPID != cpid {
			continue
		}
		if v.Move != nil {
			return fmt.Sprintf("moves to node %d for %s: %s", v.Move.To, v.Move.Reason, v.Move.Detail)
		}
		return v.Stay
	}
	return ""
}

// demand is how many cores p would use unhindered on n, its node: what it
// used, scaled up by how crowded n is, at most its threads.
func (p Proc) demand(n Node) float64 {
	threads := float64(max(p.Threads, 1))
	crowd := math.Max(1, n.RunQueue/float64(max(n.Cores, 1)))
	return math.Min(p.CPU*crowd, threads)
}

// rate is the work a second (reference-core seconds) a process of demand
// d gets on n with tasks runnable tasks there, itself included.
func rate(n Node, tasks, d float64) float64 {
	cores := float64(max(n.Cores, 1))
	share := math.Min(d, d*cores/math.Max(tasks, cores))
	return share * float64(max(n.Speed, 1)) / 1000
}

// short says why n is short of memory under p, or "".
func short(n Node, p Params) string {
	switch {
	case n.MemTotal > 0 && float64(n.MemFree) < p.MemLow*float64(n.MemTotal):
		return fmt.Sprintf("%s free of %s (under %.0f%%)", bytes(n.MemFree), bytes(n.MemTotal), 100*p.MemLow)
	case p.PSIHigh > 0 && n.PSI > p.PSIHigh:
		return fmt.Sprintf("memory pressure %.1f%% (over %.0f%%)", n.PSI, p.PSIHigh)
	}
	return ""
}

// roomFor reports whether n keeps its free-memory floor (MemLow, with the
// margin) after taking rss more.
func roomFor(n Node, rss uint64, p Params) bool {
	if n.MemTotal == 0 {
		return true // not known: not refused for it
	}
	floor := p.MemLow * (1 + p.MemMargin) * float64(n.MemTotal)
	return float64(n.MemFree) >= float64(rss)+floor
}

// bytes prints n in binary units.
func bytes(n uint64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
