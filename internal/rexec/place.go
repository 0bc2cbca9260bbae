package rexec

import "sort"

// Candidate is a node as placement sees it: from its gossiped load vector.
type Candidate struct {
	Node     int
	RunQueue float64 // runnable tasks now
	Cores    int
	Speed    int // relative speed of one core; 1000 is the reference
	MemFree  uint64
	MemTotal uint64
}

// lowMemory is a node too short of memory to be chosen while another is
// not: under 64 MiB or 5% free.
func (c Candidate) lowMemory() bool {
	return c.MemTotal > 0 && (c.MemFree < 64<<20 || c.MemFree < c.MemTotal/20)
}

// share is the speed one more process would get on c with extra more
// processes already placed there: the node's capacity (cores times speed)
// divided among its runnable tasks and the newcomer, capped at one core.
func (c Candidate) share(extra int) float64 {
	cores, speed := max(c.Cores, 1), max(c.Speed, 1)
	tasks := c.RunQueue + float64(extra) + 1
	per := float64(cores*speed) / tasks
	return min(per, float64(speed))
}

// Spread places k processes one by one, each on the node where it would
// get the most speed given those already placed (ties: fewer placed, then
// the lower node number); nodes short of memory are used only if every
// node is. It returns a node number per process; nil if there is no node.
func Spread(k int, nodes []Candidate) []int {
	if len(nodes) == 0 || k <= 0 {
		return nil
	}
	pool := make([]Candidate, 0, len(nodes))
	for _, c := range nodes {
		if !c.lowMemory() {
			pool = append(pool, c)
		}
	}
	if len(pool) == 0 {
		pool = append(pool, nodes...)
	}
	sort.Slice(pool, func(i, j int) bool { return pool[i].Node < pool[j].Node })
	placed := make([]int, len(pool))
	out := make([]int, k)
	for i := range out {
		best := 0
		for j := 1; j < len(pool); j++ {
			sj, sb := pool[j].share(placed[j]), pool[best].share(placed[best])
			if sj > sb || (sj == sb && placed[j] < placed[best]) {
				best = j
			}
		}
		placed[best]++
		out[i] = pool[best].Node
	}
	return out
}

// Best is the node for one process (`ssi run --fast`), 0 if none.
func Best(nodes []Candidate) int {
	if p := Spread(1, nodes); p != nil {
		return p[0]
	}
	return 0
}
