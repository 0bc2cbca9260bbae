package balance

import (
	"fmt"
	"math"
)

// level is load balancing: the best move of the round, again and again,
// while one pays, up to the node's moves a round.
func (r *round) level() {
	a := r.self.Aggressiveness
	for _, p := range r.procs {
		switch {
		case !r.candidate(p, true):
		case !r.self.SendAway:
			r.stay[p.CPID] = "its node does not send processes away for load (send-away off)"
		case a <= 0:
			r.stay[p.CPID] = "balancing is off on its node (aggressiveness 0)"
		}
	}
	if !r.self.SendAway || a <= 0 {
		return
	}
	a = math.Min(a, 1)
	minSpeedup := r.p.MinSpeedup * 0.5 / a
	for range int(math.Ceil(float64(r.p.MaxMoves) * a)) {
		var best *Move
		var bp Proc
		var bd float64
		bi := -1
		for _, p := range r.procs {
			if _, done := r.moved[p.CPID]; done || !r.candidate(p, true) {
				continue
			}
			m, i, d := r.loadMove(p, minSpeedup)
			if m != nil && (best == nil || m.Gain > best.Gain) {
				best, bp, bd, bi = m, p, d, i
			}
		}
		if best == nil {
			return
		}
		r.take(bp, bd, bi, *best)
	}
	for _, p := range r.procs {
		if _, done := r.moved[p.CPID]; !done && r.stay[p.CPID] == "" {
			r.stay[p.CPID] = "others moved first this round"
		}
	}
}

// loadMove is p's best move for load (its target's index and p's
// demand), or nil with the reason it stays recorded.
func (r *round) loadMove(p Proc, minSpeedup float64) (*Move, int, float64) {
	if p.Age < r.p.MinAge {
		r.stay[p.CPID] = fmt.Sprintf("too young to judge (%.1f s; %.0f s at least)", p.Age, r.p.MinAge)
		return nil, -1, 0
	}
	d := p.demand(r.orig)
	if d < 0.05 {
		r.stay[p.CPID] = fmt.Sprintf("it hardly uses the CPU (%.2f of a core)", p.CPU)
		return nil, -1, 0
	}
	here := rate(r.self, r.self.RunQueue, d)
	i, there, why := r.best(p, d, ForLoad)
	if i < 0 {
		r.stay[p.CPID] = why
		return nil, -1, 0
	}
	to := r.peers[i].Number
	if there < here*(1+minSpeedup) {
		r.stay[p.CPID] = fmt.Sprintf("no better node: node %d would give it %.2f, here %.2f (%.0f%% more needed)", to, there, here, 100*minSpeedup)
		return nil, -1, 0
	}
	saved := p.Age * (1 - here/there)
	cost := r.cost(p)
	if gain := saved - cost; gain < r.p.MinGain {
		r.stay[p.CPID] = fmt.Sprintf("not worth it: node %d would save it %.1f s, a move costs %.1f s (%.0f s needed)", to, saved, cost, r.p.MinGain)
		return nil, -1, 0
	}
	return &Move{CPID: p.CPID, To: to, Reason: ForLoad, Gain: saved - cost,
		Detail: fmt.Sprintf("rate %.2f -> %.2f; expected to save %.1f s of %.0f s left, a move costs %.1f s", here, there, saved, p.Age, cost)}, i, d
}
