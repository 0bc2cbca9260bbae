package balance

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

const mib = 1 << 20

// clusterKind is a family of random clusters for the property tests.
type clusterKind struct {
	name     string
	clusters int
	drain    bool // some nodes draining
	tight    bool // some nodes short of memory, or near it
	refuse   bool // some nodes take no guests or send nothing away
	forever  bool // processes never end (the steady state)
}

var clusterKinds = []clusterKind{
	{name: "mixed", clusters: 80, drain: true, tight: true, refuse: true},
	{name: "drain", clusters: 40, drain: true},
	{name: "memory", clusters: 40, tight: true},
	{name: "settings", clusters: 40, refuse: true},
	{name: "steady", clusters: 40, forever: true},
}

// randomCluster is a cluster of 2-16 nodes of unequal cores and speeds
// with 0-60 processes, half of them started on node 1.
func randomCluster(rng *rand.Rand, k clusterKind) SimConfig {
	cfg := SimConfig{Params: Defaults(), Peers: 2 + rng.IntN(7)}
	for range 2 + rng.IntN(15) {
		n := SimNode{Cores: []int{1, 2, 4, 8}[rng.IntN(4)], Speed: []int{250, 500, 1000, 1500, 2000}[rng.IntN(5)],
			MemTotal: uint64(4+rng.IntN(13)) << 30, AcceptGuests: true, SendAway: true,
			Aggressiveness: []float64{0.25, 0.5, 0.5, 1}[rng.IntN(4)]}
		n.BaseUse = n.MemTotal / 8
		if k.tight && rng.IntN(3) == 0 {
			n.BaseUse = n.MemTotal * uint64(80+rng.IntN(12)) / 100
		}
		if k.refuse {
			n.AcceptGuests = rng.IntN(4) != 0
			n.SendAway = rng.IntN(5) != 0
			if rng.IntN(8) == 0 {
				n.Aggressiveness = 0
			}
		}
		n.Draining = k.drain && rng.IntN(5) == 0
		cfg.Nodes = append(cfg.Nodes, n)
	}
	for range rng.IntN(61) {
		p := SimProc{Node: rng.IntN(len(cfg.Nodes)), Work: heavyTail(rng, 5, 2000), RSS: uint64(1+rng.IntN(300)) * mib,
			DirtyRate: float64(rng.IntN(50)) * mib, Pinned: rng.IntN(10) == 0}
		if rng.IntN(2) == 0 {
			p.Node = 0
		}
		if rng.IntN(20) == 0 {
			p.CantMove = "holds a device open"
		}
		if rng.IntN(7) == 0 {
			p.Demand = 0.01 + 0.8*rng.Float64()
		}
		if k.forever {
			p.Work = math.Inf(1)
		}
		cfg.Procs = append(cfg.Procs, p)
	}
	return cfg
}

// heavyTail is a Pareto length (shape 1.5) of at least lo, cut at hi.
func heavyTail(rng *rand.Rand, lo, hi float64) float64 {
	return math.Min(hi, lo/math.Pow(1-rng.Float64(), 1/1.5))
}

// TestSimProperties runs the policy over random clusters and checks
// every decision and every move of every round.
func TestSimProperties(t *testing.T) {
	const rounds, drainBy, quietFrom = 150, 60, 100
	for ki, k := range clusterKinds {
		t.Run(k.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(ki), 14))
			for c := range k.clusters {
				cfg := randomCluster(rng, k)
				sim := NewSim(cfg, uint64(c))
				w := watch{t: t, cfg: cfg, name: fmt.Sprintf("%s cluster %d", k.name, c), left: map[int64]leave{}}
				for r := 0; r < rounds && !sim.Done(); r++ {
					rd := sim.Step()
					w.round(rd, sim.Vectors())
					if k.forever && r >= quietFrom && len(rd.Moves) > 0 {
						t.Errorf("%s: %d moves at %d s in a steady state (first %v)", w.name, len(rd.Moves), rd.T, rd.Moves[0])
					}
					if r == drainBy {
						w.drained(sim)
					}
				}
				if st := sim.Stats(); k.forever && st.MostOne > 3 {
					t.Errorf("%s: a process moved %d times in a steady state", w.name, st.MostOne)
				}
			}
		})
	}
}

// watch checks a run's rounds against the properties the policy promises.
type watch struct {
	t    *testing.T
	cfg  SimConfig
	name string
	left map[int64]leave // each process's last move
}

// leave is a process's last move: the node it left and when.
type leave struct{ from, at int }

// round checks one round: each decision against what its node saw, then
// the moves made against the truth after them (now).
func (w *watch) round(rd SimRound, now []Node) {
	p := w.cfg.Params
	for _, d := range rd.Decisions {
		w.decision(rd.T, d)
	}
	for _, m := range rd.Moves {
		if m.Refused != "" {
			continue
		}
		if l, ok := w.left[m.CPID]; ok && l.from == m.To && float64(rd.T-l.at) < p.MinResidency {
			w.t.Errorf("%s: at %d s process %d moves back to node %d, which it left at %d s", w.name, rd.T, m.CPID, m.To, l.at)
		}
		w.left[m.CPID] = leave{from: m.From, at: rd.T}
		if n := now[m.To-1]; float64(n.MemFree) < floor(n, p) {
			w.t.Errorf("%s: at %d s node %d took process %d and has %d B free, under its floor", w.name, rd.T, m.To, m.CPID, n.MemFree)
		}
	}
}

// decision checks one node's decision of the round at time t.
func (w *watch) decision(t int, d SimDecision) {
	in, p := d.In, w.cfg.Params
	fail := func(m Move, format string, args ...any) {
		w.t.Errorf("%s: at %d s node %d moves process %d to node %d for %s: %s", w.name, t, in.Self.Number, m.CPID, m.To, m.Reason, fmt.Sprintf(format, args...))
	}
	procs, peers, took := map[int64]Proc{}, map[int]Node{}, map[int]uint64{}
	for _, pr := range in.Procs {
		procs[pr.CPID] = pr
	}
	for _, n := range in.Peers {
		peers[n.Number] = n
	}
	if len(d.Out.Verdicts) != len(in.Procs) {
		w.t.Errorf("%s: at %d s node %d gave %d verdicts for %d processes", w.name, t, in.Self.Number, len(d.Out.Verdicts), len(in.Procs))
	}
	for _, v := range d.Out.Verdicts {
		if v.Move == nil && v.Stay == "" {
			w.t.Errorf("%s: at %d s node %d keeps process %d without a reason", w.name, t, in.Self.Number, v.CPID)
		}
	}
	for _, m := range d.Out.Moves {
		pr, mine := procs[m.CPID]
		to, known := peers[m.To]
		switch {
		case !mine:
			fail(m, "not a process of the node")
		case !known:
			fail(m, "a node it holds no vector of")
		case pr.Pinned || pr.CantMove != "":
			fail(m, "pinned %v, cannot move %q", pr.Pinned, pr.CantMove)
		case to.Draining || !to.AcceptGuests:
			fail(m, "the target is draining (%v) or takes no guests (%v)", to.Draining, !to.AcceptGuests)
		}
		took[m.To] += pr.RSS
		if to.MemTotal > 0 && float64(to.MemFree) < float64(took[m.To])+floor(to, p) {
			fail(m, "it leaves the target %d B free of %d, under its floor", int64(to.MemFree)-int64(took[m.To]), to.MemTotal)
		}
		if m.Reason != ForLoad {
			continue
		}
		here, there := coreRate(in.Self, in.Self.RunQueue), coreRate(to, to.RunQueue+1)
		switch {
		case !in.Self.SendAway || in.Self.Aggressiveness <= 0:
			fail(m, "its node sends nothing away for load")
		case pr.SinceMove >= 0 && pr.SinceMove < p.MinResidency:
			fail(m, "it moved %.0f s ago", pr.SinceMove)
		case there < here:
			fail(m, "the target gives it %.3f of a reference core, its node %.3f", there, here)
		}
	}
}

// drained checks that a draining node holds only processes that cannot
// move or that no node could take (as the cluster is now).
func (w *watch) drained(sim *Sim) {
	now := sim.Vectors()
	for i, n := range w.cfg.Nodes {
		if !n.Draining {
			continue
		}
		for _, cpid := range sim.On(i) {
			if p := w.cfg.Procs[cpid-1]; !p.Pinned && p.CantMove == "" && anyTakes(now, p.RSS, w.cfg.Params) {
				w.t.Errorf("%s: draining node %d still holds process %d", w.name, i+1, cpid)
			}
		}
	}
}

// anyTakes reports whether some node would take a process of rss bytes.
func anyTakes(ns []Node, rss uint64, p Params) bool {
	for _, n := range ns {
		if !n.Draining && n.AcceptGuests && float64(n.MemFree) >= float64(rss)+floor(n, p) {
			return true
		}
	}
	return false
}

// floor is the free memory a target keeps after a move.
func floor(n Node, p Params) float64 {
	return p.MemLow * (1 + p.MemMargin) * float64(n.MemTotal)
}

// coreRate is what one CPU-bound process gets on n among tasks runnable
// ones, in reference cores: written here apart from the policy's own.
func coreRate(n Node, tasks float64) float64 {
	return float64(n.Speed) / 1000 * math.Min(1, float64(n.Cores)/math.Max(tasks, 1))
}
