package balance

import (
	"reflect"
	"strings"
	"testing"
)

const gib = 1 << 30

// node is a node that accepts guests and sends away, at aggressiveness
// 0.5, with 16 GiB of which free is free.
func node(num int, runq float64, cores, speed int, free uint64) Node {
	return Node{Number: num, RunQueue: runq, Cores: cores, Speed: speed, MemTotal: 16 * gib, MemFree: free,
		AcceptGuests: true, SendAway: true, Aggressiveness: 0.5}
}

// cpuBound is a CPU-bound process of 100 MiB, an age old, on a node where
// it gets share of a core.
func cpuBound(cpid int64, share, age float64) Proc {
	return Proc{CPID: cpid, CPU: share, Age: age, RSS: 100 << 20, SinceMove: -1}
}

func TestDecideLoad(t *testing.T) {
	busy := node(1, 6, 2, 1000, 8*gib) // 6 runnable on 2 cores: a third of a core each
	idle := node(2, 0, 2, 1000, 8*gib)
	for _, tc := range []struct {
		name  string
		self  Node
		peers []Node
		procs []Proc
		edit  func(*Params)
		to    map[int64]int    // expected moves: process -> node
		stay  map[int64]string // expected reasons (a part of them)
	}{
		{name: "an overloaded node sends a CPU-bound process to an idle one",
			self: busy, peers: []Node{idle}, procs: []Proc{cpuBound(1, 1.0/3, 60)},
			to: map[int64]int{1: 2}},
		{name: "too young to judge",
			self: busy, peers: []Node{idle}, procs: []Proc{cpuBound(1, 1.0/3, 0.5)},
			stay: map[int64]string{1: "too young"}},
		{name: "pinned and unmovable stay, with their reasons",
			self: busy, peers: []Node{idle},
			procs: []Proc{{CPID: 1, CPU: 0.33, Age: 60, Pinned: true}, {CPID: 2, CPU: 0.33, Age: 60, CantMove: "socket: fd 3"}},
			stay:  map[int64]string{1: "pinned", 2: "cannot move: socket: fd 3"}},
		{name: "a process that just moved stays",
			self: busy, peers: []Node{idle}, procs: []Proc{{CPID: 1, CPU: 0.33, Age: 60, SinceMove: 3}},
			stay: map[int64]string{1: "moved 3 s ago"}},
		{name: "a peer that does not accept guests takes nothing",
			self: busy, peers: []Node{{Number: 2, Cores: 2, Speed: 1000, SendAway: true}}, procs: []Proc{cpuBound(1, 1.0/3, 60)},
			stay: map[int64]string{1: "does not accept guests"}},
		{name: "a draining peer takes nothing",
			self: busy, peers: []Node{func() Node { n := idle; n.Draining = true; return n }()}, procs: []Proc{cpuBound(1, 1.0/3, 60)},
			stay: map[int64]string{1: "draining"}},
		{name: "a peer hardly better is not worth the move",
			self: node(1, 3, 2, 1000, 8*gib), peers: []Node{node(2, 2, 2, 1000, 8*gib)}, procs: []Proc{cpuBound(1, 2.0/3, 60)},
			stay: map[int64]string{1: "no better node"}},
		{name: "a move that costs more than it saves is not made",
			self: busy, peers: []Node{idle}, procs: []Proc{{CPID: 1, CPU: 1.0 / 3, Age: 10, RSS: 4 * gib, SinceMove: -1}},
			stay: map[int64]string{1: "not worth it"}},
		{name: "a process that hardly uses the CPU stays",
			self: busy, peers: []Node{idle}, procs: []Proc{{CPID: 1, CPU: 0.01, Age: 600, SinceMove: -1}},
			stay: map[int64]string{1: "hardly uses the CPU"}},
		{name: "speed counts: a node twice as fast, busier, gives more",
			self: node(1, 2, 2, 1000, 8*gib), peers: []Node{node(2, 2, 2, 2000, 8*gib)}, procs: []Proc{cpuBound(1, 1, 100)},
			to: map[int64]int{1: 2}},
		{name: "send-away off: nothing moves for load",
			self: func() Node { n := busy; n.SendAway = false; return n }(), peers: []Node{idle}, procs: []Proc{cpuBound(1, 1.0/3, 60)},
			stay: map[int64]string{1: "send-away off"}},
		{name: "aggressiveness 0: nothing moves for load",
			self: func() Node { n := busy; n.Aggressiveness = 0; return n }(), peers: []Node{idle}, procs: []Proc{cpuBound(1, 1.0/3, 60)},
			stay: map[int64]string{1: "aggressiveness 0"}},
		{name: "the round counts its own moves: an idle 2-core peer takes 2 of 6, not 6",
			self: func() Node { n := busy; n.Aggressiveness = 1; return n }(), peers: []Node{idle},
			procs: []Proc{cpuBound(1, 1.0/3, 60), cpuBound(2, 1.0/3, 70), cpuBound(3, 1.0/3, 80), cpuBound(4, 1.0/3, 90), cpuBound(5, 1.0/3, 100), cpuBound(6, 1.0/3, 110)},
			edit:  func(p *Params) { p.MaxMoves = 6 },
			to:    map[int64]int{6: 2, 5: 2}},
		{name: "the oldest process (the most work left) moves first",
			self: node(1, 4, 2, 1000, 8*gib), peers: []Node{idle}, procs: []Proc{cpuBound(1, 0.5, 20), cpuBound(2, 0.5, 500)},
			to: map[int64]int{2: 2}, stay: map[int64]string{1: ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := Defaults()
			if tc.edit != nil {
				tc.edit(&p)
			}
			d := Decide(Input{Self: tc.self, Peers: tc.peers, Procs: tc.procs, Params: p, Seed: 1})
			got := map[int64]int{}
			for _, m := range d.Moves {
				got[m.CPID] = m.To
				if m.Reason != ForLoad || m.Gain <= 0 || !strings.Contains(m.Detail, "expected to save") {
					t.Errorf("move %+v: want a load move with a gain and its figures", m)
				}
			}
			if len(got) != len(tc.to) || !reflect.DeepEqual(got, tc.to) && len(tc.to) > 0 {
				t.Errorf("moves %v, want %v; verdicts %+v", got, tc.to, d.Verdicts)
			}
			for cpid, want := range tc.stay {
				if why := d.Why(cpid); !strings.Contains(why, want) || got[cpid] != 0 {
					t.Errorf("process %d: %q, want it to stay: %q", cpid, why, want)
				}
			}
		})
	}
}

func TestDecideUsher(t *testing.T) {
	self := node(1, 1, 2, 1000, gib/2) // 0.5 of 16 GiB free: under 10%
	big := Proc{CPID: 1, CPU: 0.5, Age: 30, RSS: 3 * gib, SinceMove: -1}
	dirty := Proc{CPID: 2, CPU: 0.5, Age: 30, RSS: 3 * gib, DirtyRate: 500 << 20, SinceMove: -1}
	small := Proc{CPID: 3, CPU: 0.5, Age: 30, RSS: 64 << 20, SinceMove: 2} // just moved: memory does not wait
	roomy := node(2, 4, 2, 1000, 12*gib)
	tight := node(3, 0, 2, 1000, 3*gib) // 3 GiB more would leave it under its floor
	d := Decide(Input{Self: self, Peers: []Node{tight, roomy}, Procs: []Proc{small, dirty, big}, Params: Defaults(), Seed: 7})
	if d.Short == "" {
		t.Fatal("the node is not seen short of memory")
	}
	if len(d.Moves) == 0 || d.Moves[0].CPID != 1 || d.Moves[0].To != 2 || d.Moves[0].Reason != ForMemory {
		t.Fatalf("moves %+v; want process 1 (the most memory for the least dirtying) to node 2 first, for memory", d.Moves)
	}
	for _, m := range d.Moves {
		if m.To == 3 && m.CPID != 3 {
			t.Errorf("move %+v leaves node 3 under its floor", m)
		}
	}
	// A peer without room for anything: the process stays, saying so.
	d = Decide(Input{Self: self, Peers: []Node{node(2, 0, 2, 1000, gib)}, Procs: []Proc{big}, Params: Defaults()})
	if len(d.Moves) != 0 || !strings.Contains(d.Why(1), "no peer has room") {
		t.Errorf("moves %+v, why %q; want none, no peer has room", d.Moves, d.Why(1))
	}
	// Pressure alone (PSI) moves one process.
	p := node(1, 1, 2, 1000, 8*gib)
	p.PSI = 35
	d = Decide(Input{Self: p, Peers: []Node{roomy}, Procs: []Proc{big, small}, Params: Defaults()})
	if len(d.Moves) != 1 || !strings.Contains(d.Short, "pressure") {
		t.Errorf("moves %+v (short %q); want one move for memory pressure", d.Moves, d.Short)
	}
}

// TestLoadMoves: a node far over its cores sheds more than MaxMoves*a a
// round.
func TestLoadMoves(t *testing.T) {
	p := Defaults()
	for _, tc := range []struct {
		runq float64
		want int
	}{{2, 1}, {4, 1}, {6, 2}, {64, 5}, {1000, 9}} {
		r := round{p: p, self: node(1, tc.runq, 2, 1000, 8*gib)}
		if got := r.loadMoves(0.5); got != tc.want {
			t.Errorf("run queue %.0f on 2 cores: %d moves a round, want %d", tc.runq, got, tc.want)
		}
	}
}

func TestDecideDrain(t *testing.T) {
	self := node(1, 3, 2, 1000, 8*gib)
	self.Draining = true
	draining := node(2, 0, 2, 1000, 8*gib)
	draining.Draining = true
	procs := []Proc{
		{CPID: 1, CPU: 0.01, Age: 0.1, RSS: 1 << 20, SinceMove: 1}, // idle, young, just moved: all the same
		{CPID: 2, CPU: 1, Age: 100, RSS: 1 << 20, Pinned: true},
		{CPID: 3, CPU: 1, Age: 100, RSS: 1 << 20, SinceMove: -1},
	}
	d := Decide(Input{Self: self, Peers: []Node{draining, node(3, 5, 2, 1000, 8*gib)}, Procs: procs, Params: Defaults()})
	got := map[int64]int{}
	for _, m := range d.Moves {
		got[m.CPID] = m.To
		if m.Reason != ForDrain {
			t.Errorf("move %+v: want a drain move", m)
		}
	}
	if !reflect.DeepEqual(got, map[int64]int{1: 3, 3: 3}) {
		t.Errorf("moves %v; want 1 and 3 to node 3 (never the draining node 2)", got)
	}
	if why := d.Why(2); !strings.Contains(why, "pinned") || !strings.Contains(why, "draining") {
		t.Errorf("the pinned process: %q", why)
	}
}

func TestAdmit(t *testing.T) {
	p := Defaults()
	n := node(2, 0, 2, 1000, 8*gib)
	full := n
	full.Guests = 2
	for _, tc := range []struct {
		name   string
		n      Node
		rss    uint64
		reason Reason
		want   string
	}{
		{"takes it", n, gib, ForLoad, ""},
		{"no guests", Node{Number: 2, Cores: 2}, 0, ForLoad, "does not accept guests"},
		{"no room", n, 7 * gib, ForMemory, "would be left short of memory"},
		{"load not measured since its last guests", full, gib, ForLoad, "not measured yet"},
		{"a drain's move is taken all the same", full, gib, ForDrain, ""},
	} {
		if got := Admit(tc.n, tc.rss, tc.reason, p); !strings.Contains(got, tc.want) || tc.want == "" && got != "" {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestDecideDeterministic: the same input and seed give the same
// decision; equal targets are chosen by the seed.
func TestDecideDeterministic(t *testing.T) {
	in := Input{Self: node(1, 8, 2, 1000, 8*gib), Params: Defaults(),
		Procs: []Proc{cpuBound(1, 0.25, 100), cpuBound(2, 0.25, 90)}}
	for i := 2; i <= 9; i++ {
		in.Peers = append(in.Peers, node(i, 0, 2, 1000, 8*gib))
	}
	seen := map[int]bool{}
	for seed := range uint64(20) {
		in.Seed = seed
		a, b := Decide(in), Decide(in)
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("seed %d: two decisions differ:\n%+v\n%+v", seed, a, b)
		}
		if len(a.Moves) > 0 {
			seen[a.Moves[0].To] = true
		}
	}
	if len(seen) < 3 {
		t.Errorf("20 seeds chose among equal targets only %v", seen)
	}
}

// TestDecideEdges: cases the simulator's property tests found.
func TestDecideEdges(t *testing.T) {
	p := Defaults()
	// A process without resident memory on a node short of it gets a
	// reason too.
	short := Node{Number: 1, RunQueue: 2, Cores: 2, Speed: 1000, MemTotal: 1000 << 20, MemFree: 50 << 20, AcceptGuests: true, SendAway: true, Aggressiveness: 0.5}
	roomy := Node{Number: 2, Cores: 2, Speed: 1000, MemTotal: 1000 << 20, MemFree: 900 << 20, AcceptGuests: true}
	d := Decide(Input{Self: short, Peers: []Node{roomy}, Params: p,
		Procs: []Proc{{CPID: 1, CPU: 1, Age: 100, SinceMove: -1}, {CPID: 2, CPU: 1, Age: 100, RSS: 10 << 20, SinceMove: -1}}})
	if !strings.Contains(d.Why(1), "frees nothing") {
		t.Errorf("a process with no resident memory: %q", d.Why(1))
	}
	// A peer listed twice is one node: its memory is counted once.
	target := Node{Number: 2, Cores: 8, Speed: 1000, MemTotal: 1000 << 20, MemFree: 300 << 20, AcceptGuests: true}
	self := Node{Number: 1, RunQueue: 8, Cores: 2, Speed: 1000, MemTotal: 1000 << 20, MemFree: 900 << 20, AcceptGuests: true, SendAway: true, Aggressiveness: 1}
	var procs []Proc
	for i := range 8 {
		procs = append(procs, Proc{CPID: int64(i + 1), CPU: 0.25, Age: 100, RSS: 100 << 20, SinceMove: -1})
	}
	d = Decide(Input{Self: self, Peers: []Node{target, target}, Procs: procs, Params: p})
	if len(d.Moves) != 1 {
		t.Errorf("%d moves to a peer given twice with room for one; want 1", len(d.Moves))
	}
	// A drain is not held back by the admission control of load
	// balancing (Admit takes it).
	self.Draining = true
	busy := Node{Number: 2, Cores: 2, Speed: 1000, AcceptGuests: true, Guests: 2}
	d = Decide(Input{Self: self, Peers: []Node{busy}, Procs: procs[:1], Params: p})
	if len(d.Moves) != 1 || Admit(busy, 10<<20, ForDrain, p) != "" {
		t.Errorf("drain to a node with unmeasured guests: moves %+v, why %q", d.Moves, d.Why(1))
	}
}
