package balance

import (
	"cmp"
	"fmt"
	"math"
	"slices"
)

// usher is memory ushering: the node is short of memory (why), and moves
// processes away until it has its floor back with the margin: those that
// free the most for the least copying first, each to the peer with the
// most free memory that keeps its own floor after it.
func (r *round) usher(why string) {
	floor := r.p.MemLow * (1 + r.p.MemMargin) * float64(r.self.MemTotal)
	need := floor - float64(r.self.MemFree)
	if need <= 0 {
		need = 1 // pressure without a low free figure: one process at least
	}
	var order []Proc
	for _, p := range r.procs {
		switch {
		case !r.candidate(p, false):
		case p.RSS == 0:
			r.stay[p.CPID] = "its node is short of memory (" + why + "), but it holds none: moving it frees nothing"
		default:
			order = append(order, p)
		}
	}
	// Relief per byte copied: what it frees over what a move sends (its
	// memory, and what it dirties while that is sent).
	perByte := func(p Proc) float64 {
		sent := float64(p.RSS) + p.DirtyRate*float64(p.RSS)/math.Max(r.p.TransferRate, 1)
		return float64(p.RSS) / sent
	}
	slices.SortStableFunc(order, func(a, b Proc) int {
		if c := cmp.Compare(perByte(b), perByte(a)); c != 0 {
			return c
		}
		if c := cmp.Compare(b.RSS, a.RSS); c != 0 {
			return c
		}
		return cmp.Compare(a.CPID, b.CPID)
	})
	for _, p := range order {
		if need <= 0 {
			r.stay[p.CPID] = "its node is short of memory (" + why + "), but enough is freed by other moves"
			continue
		}
		if len(r.moves) >= r.p.MaxUsherMoves {
			r.stay[p.CPID] = "its node is short of memory (" + why + "): it may move in a later round"
			continue
		}
		i, reason := r.roomiest(p)
		if i < 0 {
			r.stay[p.CPID] = fmt.Sprintf("its node is short of memory (%s), but no peer has room for its %s (%s)", why, bytes(p.RSS), reason)
			continue
		}
		t := r.peers[i]
		r.take(p, p.demand(r.orig), i, Move{CPID: p.CPID, To: t.Number, Reason: ForMemory, Gain: float64(p.RSS),
			Detail: fmt.Sprintf("its node is short of memory (%s); frees %s; node %d has %s free", why, bytes(p.RSS), t.Number, bytes(t.MemFree))})
		need -= float64(p.RSS)
	}
}

// roomiest is the peer with the most free memory that takes p and keeps
// its own floor after it (ties: the one that gives it the higher rate),
// or -1 and why not.
func (r *round) roomiest(p Proc) (int, string) {
	bi, why := -1, "no peer known"
	d := p.demand(r.orig)
	for i, n := range r.peers {
		if w := r.takes(n, p.RSS, ForMemory); w != "" {
			why = fmt.Sprintf("node %d: %s", n.Number, w)
			continue
		}
		if bi < 0 {
			bi = i
			continue
		}
		b := r.peers[bi]
		if n.MemFree > b.MemFree || n.MemFree == b.MemFree && rate(n, n.RunQueue+1, d) > rate(b, b.RunQueue+1, d) {
			bi = i
		}
	}
	return bi, why
}
