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
	r.quiet = true
	for range r.loadMoves(a) {
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
			break
		}
		r.quiet = false
		if m, _, _ := r.loadMove(bp, minSpeedup); m != nil {
			best = m // the same move, its figures said
		}
		r.quiet = true
		r.take(bp, bd, bi, *best)
	}
	// Why each of the others stays, said once.
	r.quiet = false
	for _, p := range r.procs {
		if _, done := r.moved[p.CPID]; done || !r.candidate(p, true) {
			continue
		}
		if m, _, _ := r.loadMove(p, minSpeedup); m != nil {
			r.why(p.CPID, "others moved first this round (it would gain %.1f s on node %d)", m.Gain, m.To)
		}
	}
}

// loadMove is p's best move for load (its target's index and p's
// demand), or nil with the reason it stays recorded.
func (r *round) loadMove(p Proc, minSpeedup float64) (*Move, int, float64) {
	if p.Age < r.p.MinAge {
		r.why(p.CPID, "too young to judge (%.1f s; %.0f s at least)", p.Age, r.p.MinAge)
		return nil, -1, 0
	}
	d := p.demand(r.orig)
	if d < 0.05 {
		r.why(p.CPID, "it hardly uses the CPU (%.2f of a core)", p.CPU)
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
		r.why(p.CPID, "no better node: node %d would give it %.2f, here %.2f (%.0f%% more needed)", to, there, here, 100*minSpeedup)
		return nil, -1, 0
	}
	saved := p.Age * (1 - here/there)
	cost := r.cost(p)
	if gain := saved - cost; gain < r.p.MinGain {
		r.why(p.CPID, "not worth it: node %d would save it %.1f s, a move costs %.1f s (%.0f s needed)", to, saved, cost, r.p.MinGain)
		return nil, -1, 0
	}
	return &Move{CPID: p.CPID, To: to, Reason: ForLoad, Gain: saved - cost,
		Detail: r.detail(here, there, saved, p.Age, cost)}, i, d
}

// loadMoves is how many moves for load a round may make at aggressiveness
// a: MaxMoves*a, times log2 of how many times over its cores the node's
// queue is (a node with hundreds of runnable processes sheds more than
// one or two a second; in-round accounting and the targets' admission
// keep that from flooding anyone).
func (r *round) loadMoves(a float64) int {
	n := float64(r.p.MaxMoves) * a
	if over := r.self.RunQueue / float64(max(r.self.Cores, 1)); over > 2 {
		n *= math.Log2(over)
	}
	return int(math.Ceil(n))
}

// detail is a load move's figures, for the log (not formatted while the
// round is quiet: the move found may not be the one made).
func (r *round) detail(here, there, saved, age, cost float64) string {
	if r.quiet {
		return ""
	}
	return fmt.Sprintf("rate %.2f -> %.2f; expected to save %.1f s of %.0f s left, a move costs %.1f s", here, there, saved, age, cost)
}
