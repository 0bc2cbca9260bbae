package balance

import (
	"math"
	"math/rand/v2"
)

// SimNode is a simulated node: its hardware and its settings. Nodes are
// numbered from 1 in the order of SimConfig.Nodes.
type SimNode struct {
	Cores          int
	Speed          int // of one core, relative: 1000 is the reference core
	MemTotal       uint64
	BaseUse        uint64 // memory used by what is not simulated (kernel, daemons)
	AcceptGuests   bool
	SendAway       bool
	Draining       bool
	Aggressiveness float64
}

// SimProc is a simulated process as it starts. Processes get the cluster
// pids 1, 2, ... in the order of SimConfig.Procs.
type SimProc struct {
	Node      int     // where it starts: an index in SimConfig.Nodes
	Work      float64 // reference-core seconds it runs for (+Inf: for ever)
	Demand    float64 // the share of a core it would use alone, up to 1 (0 counts as 1: CPU-bound)
	RSS       uint64
	DirtyRate float64
	Pinned    bool
	CantMove  string
}

// SimConfig is a simulated cluster and how it is run.
type SimConfig struct {
	Nodes  []SimNode
	Procs  []SimProc
	Params Params
	// Peers is how many peers' vectors a node holds each round, a new
	// random subset every round, as gossip brings them (0: 8).
	Peers int
	// Static runs no balancer at all: processes stay where they started
	// (the anchors of no balancing and of static placement).
	Static bool
	// Decide is the policy (nil: Decide); a benchmark wraps it to time it.
	Decide func(Input) Decision
}

// Sim runs the pure policy over a simulated cluster, one second a round,
// as the agents would: every node decides for its own processes against
// its own vector and peers' vectors a round old, each target admits or
// refuses what is sent to it, and processes share their node's cores.
// It has no clock and no I/O; a seed makes a run repeat exactly.
type Sim struct {
	cfg        SimConfig
	rng        *rand.Rand
	t          int
	procs      []simProc
	seen       []Node // the vectors as peers hold them: measured a round ago
	prevGuests []int  // arrivals of the last round, not in the vectors peers hold
	left       int
	moves      int
	makespan   float64
}

// simProc is a process's state in a run.
type simProc struct {
	SimProc
	node   int     // its node's index
	left   float64 // work left, reference-core seconds
	cpu    float64 // cores it used last round
	moves  int
	moved  float64 // when it last moved (< 0: never)
	stall  float64 // seconds of migration it still owes: it makes no progress meanwhile
	finish float64 // when it ended (< 0: running)
}

// SimRound is what one round decided and did.
type SimRound struct {
	T         int // the round's time: seconds since the start
	Decisions []SimDecision
	Moves     []SimMove // every move decided, made or refused
}

// SimDecision is one node's decision of a round with what it saw.
type SimDecision struct {
	Node int // its index
	In   Input
	Out  Decision
}

// SimMove is a decided move with its outcome.
type SimMove struct {
	Move
	From    int    // the number of the node it leaves
	Refused string // why the target refused it ("" if made)
}

// NewSim starts a run of cfg at time 0; seed drives the peer subsets, the
// decisions' seeds and the order in which targets hear of moves.
func NewSim(cfg SimConfig, seed uint64) *Sim {
	if cfg.Peers <= 0 {
		cfg.Peers = 8
	}
	if cfg.Decide == nil {
		cfg.Decide = Decide
	}
	s := &Sim{cfg: cfg, rng: rand.New(rand.NewPCG(seed, 0x551)), prevGuests: make([]int, len(cfg.Nodes))}
	for _, p := range cfg.Procs {
		if p.Demand <= 0 || p.Demand > 1 {
			p.Demand = 1
		}
		s.procs = append(s.procs, simProc{SimProc: p, node: p.Node, left: p.Work, moved: -1, finish: -1})
		s.left++
	}
	return s
}

// Done reports whether every process has ended.
func (s *Sim) Done() bool { return s.left == 0 }

// Step runs one round: vectors measured, every node's decision, the
// targets' admission of the moves, and a second of work.
func (s *Sim) Step() SimRound {
	now := s.Vectors()
	if s.seen == nil {
		s.seen = now // the first round: nothing older was gossiped
	}
	rd := SimRound{T: s.t}
	if !s.cfg.Static {
		by := s.byNode()
		for i := range s.cfg.Nodes {
			in := Input{Self: now[i], Peers: s.peersOf(i), Procs: s.inputProcs(by[i]), Params: s.cfg.Params, Seed: s.rng.Uint64()}
			rd.Decisions = append(rd.Decisions, SimDecision{Node: i, In: in, Out: s.cfg.Decide(in)})
		}
		rd.Moves = s.apply(now, rd.Decisions)
	}
	s.seen = now
	s.work()
	s.t++
	return rd
}

// Vectors are the nodes' load vectors measured now: the run queue is the
// demand of the processes there, free memory what they and the base use
// leave.
func (s *Sim) Vectors() []Node {
	ns := make([]Node, len(s.cfg.Nodes))
	used := make([]uint64, len(ns))
	for i, c := range s.cfg.Nodes {
		ns[i] = Node{Number: i + 1, Cores: c.Cores, Speed: c.Speed, MemTotal: c.MemTotal,
			AcceptGuests: c.AcceptGuests, SendAway: c.SendAway, Draining: c.Draining, Aggressiveness: c.Aggressiveness}
		used[i] = c.BaseUse
	}
	for _, p := range s.procs {
		if p.finish < 0 {
			ns[p.node].RunQueue += p.Demand
			used[p.node] += p.RSS
		}
	}
	for i := range ns {
		ns[i].MemFree = ns[i].MemTotal - min(used[i], ns[i].MemTotal)
	}
	return ns
}

// byNode lists the indexes of the running processes of every node.
func (s *Sim) byNode() [][]int {
	by := make([][]int, len(s.cfg.Nodes))
	for i, p := range s.procs {
		if p.finish < 0 {
			by[p.node] = append(by[p.node], i)
		}
	}
	return by
}

// peersOf is a random subset of the gossiped vectors, without node i.
func (s *Sim) peersOf(i int) []Node {
	n := len(s.seen)
	k := min(s.cfg.Peers, n-1)
	peers := make([]Node, 0, k)
	if 2*k >= n {
		for _, j := range s.rng.Perm(n) {
			if j != i && len(peers) < k {
				peers = append(peers, s.seen[j])
			}
		}
		return peers
	}
	picked := map[int]bool{i: true}
	for len(peers) < k {
		if j := s.rng.IntN(n); !picked[j] {
			picked[j] = true
			peers = append(peers, s.seen[j])
		}
	}
	return peers
}

// inputProcs are the processes idx as their node's balancer sees them.
func (s *Sim) inputProcs(idx []int) []Proc {
	ps := make([]Proc, 0, len(idx))
	for _, i := range idx {
		p := &s.procs[i]
		since := -1.0
		if p.moved >= 0 {
			since = float64(s.t) - p.moved
		}
		ps = append(ps, Proc{CPID: int64(i + 1), CPU: p.cpu, Threads: 1, Age: float64(s.t), RSS: p.RSS,
			DirtyRate: p.DirtyRate, Moves: p.moves, SinceMove: since, Pinned: p.Pinned, CantMove: p.CantMove})
	}
	return ps
}

// apply lets each target admit or refuse the moves decided (the deciders
// taken in a random order, as their requests would arrive) and makes
// those admitted. A target judges with its vector of this round and what
// it admitted since the vector its peers hold: its guests are the
// arrivals of this round and the last, which no decider has seen yet.
func (s *Sim) apply(now []Node, ds []SimDecision) []SimMove {
	live := make([]Node, len(now))
	copy(live, now)
	for i := range live {
		live[i].Guests = s.prevGuests[i]
	}
	var out []SimMove
	for _, di := range s.rng.Perm(len(ds)) {
		d := ds[di]
		for _, m := range d.Out.Moves {
			sm := SimMove{Move: m, From: d.Node + 1}
			to := m.To - 1
			switch {
			case m.CPID < 1 || m.CPID > int64(len(s.procs)) || s.procs[m.CPID-1].node != d.Node || s.procs[m.CPID-1].finish >= 0:
				sm.Refused = "not a running process of the node"
			case to < 0 || to >= len(live) || to == d.Node:
				sm.Refused = "no such target"
			default:
				sm.Refused = Admit(live[to], s.procs[m.CPID-1].RSS, m.Reason, s.cfg.Params)
			}
			if sm.Refused == "" {
				s.move(&s.procs[m.CPID-1], to, live)
			}
			out = append(out, sm)
		}
	}
	for i := range live {
		s.prevGuests[i] = live[i].Guests - s.prevGuests[i]
	}
	return out
}

// move makes a migration of p to node to: it stalls for the freeze and
// the copy of its memory, and the live vectors of both nodes follow it.
func (s *Sim) move(p *simProc, to int, live []Node) {
	from := &live[p.node]
	from.RunQueue -= p.Demand
	from.MemFree += p.RSS
	t := &live[to]
	t.RunQueue += p.Demand
	t.MemFree -= min(t.MemFree, p.RSS)
	t.Guests++
	p.stall += s.cfg.Params.Freeze + float64(p.RSS)/math.Max(s.cfg.Params.TransferRate, 1)
	p.node, p.moves, p.moved = to, p.moves+1, float64(s.t)
	s.moves++
}
