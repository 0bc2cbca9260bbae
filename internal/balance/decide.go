package balance

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// Decide is one round of the node in.Self: memory ushering if it is short
// of memory, its drain if it is draining, else load balancing; and a
// verdict for every process.
func Decide(in Input) Decision {
	r := newRound(in)
	var d Decision
	d.Short = short(in.Self, in.Params)
	switch {
	case in.Self.Draining:
		r.drain()
	case d.Short != "":
		r.usher(d.Short)
	default:
		r.level()
	}
	d.Moves = r.moves
	for _, p := range in.Procs {
		v := Verdict{CPID: p.CPID, Stay: r.stay[p.CPID]}
		if m, ok := r.moved[p.CPID]; ok {
			v.Move, v.Stay = &m, ""
		}
		d.Verdicts = append(d.Verdicts, v)
	}
	return d
}

// round is one decision in progress: the vectors as the moves decided so
// far leave them.
type round struct {
	p     Params
	self  Node
	orig  Node   // self as the round began (demand is judged on it)
	peers []Node // shuffled by the seed: equal targets are taken in this order
	procs []Proc
	moves []Move
	moved map[int64]Move
	stay  map[int64]string
	// quiet: reasons are not formatted (the search for the round's
	// moves; a last pass says why each process stays).
	quiet bool
}

// why records why the process cpid stays, unless the round is quiet.
func (r *round) why(cpid int64, format string, args ...any) {
	if !r.quiet {
		r.stay[cpid] = fmt.Sprintf(format, args...)
	}
}

func newRound(in Input) *round {
	r := &round{p: in.Params, self: in.Self, orig: in.Self, procs: in.Procs, moved: map[int64]Move{}, stay: map[int64]string{}}
	rng := rand.New(rand.NewPCG(in.Seed, uint64(in.Self.Number)))
	seen := map[int]bool{in.Self.Number: true}
	for _, n := range in.Peers {
		if !seen[n.Number] { // a peer given twice is one node
			seen[n.Number] = true
			r.peers = append(r.peers, n)
		}
	}
	slices.SortFunc(r.peers, func(a, b Node) int { return cmp.Compare(a.Number, b.Number) })
	rng.Shuffle(len(r.peers), func(i, j int) { r.peers[i], r.peers[j] = r.peers[j], r.peers[i] })
	return r
}

// candidate reports whether p may move at all this round (ignoring
// residency when fresh is false), else sets why it stays.
func (r *round) candidate(p Proc, fresh bool) bool {
	switch {
	case p.Pinned:
		r.why(p.CPID, "pinned (--no-migrate or ssi pin)")
	case p.CantMove != "":
		r.why(p.CPID, "cannot move: %s", p.CantMove)
	case fresh && p.SinceMove >= 0 && p.SinceMove < r.p.MinResidency:
		r.why(p.CPID, "moved %.0f s ago: stays at least %.0f s after a move", p.SinceMove, r.p.MinResidency)
	default:
		return true
	}
	return false
}

// takes says why peer n takes no process of rss bytes sent for reason
// now, or "" (as Admit judges it).
func (r *round) takes(n Node, rss uint64, reason Reason) string {
	switch {
	case n.Draining:
		return "draining"
	case !n.AcceptGuests:
		return "does not accept guests"
	case short(n, r.p) != "":
		return "short of memory"
	case !roomFor(n, rss, r.p):
		return "would be left short of memory"
	case reason == ForLoad && n.Guests >= r.maxGuests(n):
		return "took processes whose load is not measured yet"
	}
	return ""
}

func (r *round) maxGuests(n Node) int {
	if r.p.MaxGuests > 0 {
		return r.p.MaxGuests
	}
	return max(n.Cores, 1)
}

// cost is the seconds a move of p costs it: the freeze, and the pre-copy
// (its resident memory at the transfer rate less what it dirties
// meanwhile) at PreCopySlowdown.
func (r *round) cost(p Proc) float64 {
	rate := math.Max(r.p.TransferRate, 1)
	copyTime := float64(p.RSS) / rate
	if left := rate - p.DirtyRate; left > 0.2*rate {
		copyTime = float64(p.RSS) / left
	} else {
		copyTime *= 5 // it dirties nearly as fast as it is sent: rounds repeat
	}
	return r.p.Freeze + r.p.PreCopySlowdown*copyTime
}

// take records the move of p (demand d) to peers[i].
func (r *round) take(p Proc, d float64, i int, m Move) {
	r.self.RunQueue = math.Max(0, r.self.RunQueue-math.Min(d, 1))
	r.self.MemFree += p.RSS
	t := &r.peers[i]
	t.RunQueue++
	t.Guests++
	t.MemFree -= min(t.MemFree, p.RSS)
	r.moves = append(r.moves, m)
	r.moved[p.CPID] = m
	delete(r.stay, p.CPID)
}

// best is the peer that gives p (demand d) the highest rate and takes it
// ("" why), or the reason none does.
func (r *round) best(p Proc, d float64, reason Reason) (int, float64, string) {
	bi, br, why := -1, 0.0, "no peer known"
	for i, n := range r.peers {
		if w := r.takes(n, p.RSS, reason); w != "" {
			if bi < 0 && !r.quiet {
				why = fmt.Sprintf("no peer takes it (node %d: %s)", n.Number, w)
			}
			continue
		}
		if rt := rate(n, n.RunQueue+1, d); bi < 0 || rt > br {
			bi, br = i, rt
		}
	}
	return bi, br, why
}
