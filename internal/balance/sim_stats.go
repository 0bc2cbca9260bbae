package balance

import (
	"cmp"
	"math"
	"slices"
)

// work runs a second: each node shares its cores among its processes,
// those that want less than an equal share getting what they want and
// no process more than a core, and a process that still owes migration
// time makes no progress for that part of the second. A process that
// finishes ends at the moment its work runs out.
func (s *Sim) work() {
	for i, idx := range s.byNode() {
		n := s.cfg.Nodes[i]
		slices.SortFunc(idx, func(a, b int) int { return cmp.Compare(s.procs[a].Demand, s.procs[b].Demand) })
		cores, m := float64(max(n.Cores, 1)), float64(len(idx))
		for _, pi := range idx {
			p := &s.procs[pi]
			share := math.Min(p.Demand, cores/m)
			cores, m = cores-share, m-1
			runs := math.Max(0, 1-p.stall)
			p.stall = math.Max(0, p.stall-1)
			p.cpu = share * runs
			rate := share * float64(n.Speed) / 1000
			if rate > 0 && rate*runs >= p.left {
				p.finish = float64(s.t) + 1 - runs + p.left/rate
				s.makespan = math.Max(s.makespan, p.finish)
				s.left--
			}
			p.left -= rate * runs
		}
	}
}

// SimStats sum up a run so far.
type SimStats struct {
	Rounds   int
	Running  int     // processes still running
	Makespan float64 // seconds until the last process ended (when all have)
	Moves    int     // migrations made
	PerProc  float64 // migrations per process
	MostOne  int     // the most migrations of one process
}

// Stats are the figures of the run so far.
func (s *Sim) Stats() SimStats {
	st := SimStats{Rounds: s.t, Running: s.left, Moves: s.moves}
	if s.left == 0 {
		st.Makespan = s.makespan
	}
	if len(s.procs) > 0 {
		st.PerProc = float64(s.moves) / float64(len(s.procs))
	}
	for _, p := range s.procs {
		st.MostOne = max(st.MostOne, p.moves)
	}
	return st
}

// On is the cluster pids of the processes running on node i (an index).
func (s *Sim) On(i int) []int64 {
	var cpids []int64
	for j, p := range s.procs {
		if p.finish < 0 && p.node == i {
			cpids = append(cpids, int64(j+1))
		}
	}
	return cpids
}

// Loads are the nodes' loads: their runnable demand over their capacity
// (cores times relative speed).
func (s *Sim) Loads() []float64 {
	ls := make([]float64, len(s.cfg.Nodes))
	for i, n := range s.Vectors() {
		ls[i] = n.RunQueue / capacity(s.cfg.Nodes[i])
	}
	return ls
}

// Spread is how far the most uneven node's load is from even (the
// cluster's runnable demand over its capacity), relative to even: 0.1
// means every node is within 10% of even. It is the measure of a
// cluster with more processes than cores; 0 when nothing runs.
func (s *Sim) Spread() float64 {
	var demand, total float64
	for i, n := range s.Vectors() {
		demand += n.RunQueue
		total += capacity(s.cfg.Nodes[i])
	}
	if demand == 0 {
		return 0
	}
	even, worst := demand/total, 0.0
	for _, l := range s.Loads() {
		worst = math.Max(worst, math.Abs(l/even-1))
	}
	return worst
}

// capacity is n's reference-core seconds a second.
func capacity(n SimNode) float64 {
	return float64(max(n.Cores, 1)) * float64(max(n.Speed, 1)) / 1000
}
