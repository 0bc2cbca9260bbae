package balance

import "fmt"

// drain moves every process that can move off the draining node,
// whatever the gain, each to the peer that gives it the highest rate and
// takes it, at most MaxDrainMoves a round.
func (r *round) drain() {
	for _, p := range r.procs {
		if !r.candidate(p, false) {
			r.stay[p.CPID] += "; its node is draining, and it stays"
			continue
		}
		if len(r.moves) >= r.p.MaxDrainMoves {
			r.stay[p.CPID] = "its node is draining: it moves in a later round"
			continue
		}
		d := p.demand(r.orig)
		i, _, why := r.best(p, d, ForDrain)
		if i < 0 {
			r.stay[p.CPID] = "its node is draining, but " + why
			continue
		}
		t := r.peers[i]
		r.take(p, d, i, Move{CPID: p.CPID, To: t.Number, Reason: ForDrain,
			Detail: fmt.Sprintf("node %d is draining; node %d gives it the highest rate", r.self.Number, t.Number)})
	}
}
