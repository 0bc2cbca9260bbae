package commit

import (
	"fmt"
	"testing"
)

// The model: the two sides of one migration from the source's freeze
// on, the agreed state, the messages between them, and faults: either
// agent crashing (and restarting), either node crashing for good, the
// link between the sides or from either side to the agreed state cut
// (and healed), a message or an answer lost. Every interleaving is
// explored up to maxFaults faults; in every reachable state at most one
// copy runs, and from every one, once the faults are gone, the sides
// reach a state where exactly one copy runs (none only when a node died
// with the copy that was to run).

// copyState is a copy of the process on one node.
type copyState uint8

const (
	cNone    copyState = iota // nothing (yet) on the target
	cFrozen                   // under its agent, stopped
	cStopped                  // its agent died: group-stopped by the guard
	cRunning
	cDead
)

type msgs uint8 // messages in flight, a set

const (
	mRestored msgs = 1 << iota // T->S
	mCommit                    // S->T
	mAbort                     // S->T
)

type world struct {
	s        Source
	t        Target
	sCopy    copyState
	tCopy    copyState
	sAlive   bool // the source's agent runs
	tAlive   bool
	sNode    bool // the source's node is alive (false: crashed for good)
	tNode    bool
	sJournal bool // the source's journal holds the frozen copy
	tJournal bool
	agreed   Outcome
	inFlight msgs
	cutST    bool // S and T cannot talk
	cutS     bool // S cannot reach the agreed state
	cutT     bool
	faults   int
}

const maxFaults = 4

func start() world {
	return world{s: Source{Phase: Sending}, t: Target{Phase: Receiving}, sCopy: cFrozen,
		sAlive: true, tAlive: true, sNode: true, tNode: true, sJournal: true}
}

func (w world) String() string {
	return fmt.Sprintf("S{%v %v copy=%d alive=%v node=%v j=%v} T{%v copy=%d alive=%v node=%v j=%v} agreed=%v msgs=%03b cut(st=%v s=%v t=%v) faults=%d",
		w.s.Phase, w.s.Known, w.sCopy, w.sAlive, w.sNode, w.sJournal, w.t.Phase, w.tCopy, w.tAlive, w.tNode, w.tJournal,
		w.agreed, w.inFlight, w.cutST, w.cutS, w.cutT, w.faults)
}

// step is one event: its name and the world after it.
type step struct {
	name string
	w    world
}

// sDo calls f on the source's side, then carries out what it returns
// (in that order: the action sees the side's new phase).
func (w world) sDo(f func(*Source) Action, answerLost bool) world {
	a := f(&w.s)
	return w.sAct(a, answerLost)
}

func (w world) tDo(f func(*Target) Action, answerLost bool) world {
	a := f(&w.t)
	return w.tAct(a, answerLost)
}

// sAct carries out a source action; answerLost: a proposal reached the
// agreed state but its answer did not come back.
func (w world) sAct(a Action, answerLost bool) world {
	switch a {
	case ProposeCommit, ProposeAbort:
		if w.cutS {
			return w.sDo(func(s *Source) Action { return s.NoAnswer() }, false)
		}
		p := Commit
		if a == ProposeAbort {
			p = Abort
		}
		w.agreed = Arbitrate(w.agreed, p)
		if answerLost {
			return w.sDo(func(s *Source) Action { return s.NoAnswer() }, false)
		}
		return w.sDo(func(s *Source) Action { return s.Decided(w.agreed) }, false)
	case ResumeCopy:
		if w.sCopy == cFrozen || w.sCopy == cStopped {
			w.sCopy = cRunning
		}
		w.sJournal = false
		if !w.cutST {
			w.inFlight |= mAbort
		}
	case KillCopy:
		if w.sCopy != cDead && w.sCopy != cNone {
			w.sCopy = cDead
		}
		w.sJournal = false
		if !w.cutST {
			w.inFlight |= mCommit
		}
	}
	return w
}

func (w world) tAct(a Action, answerLost bool) world {
	switch a {
	case AskSource:
		ans := Undecided
		if w.sAlive && !w.cutST {
			ans = w.s.Answer()
		}
		return w.tDo(func(t *Target) Action { return t.SourceSaid(ans) }, answerLost)
	case ProposeAbort:
		if w.cutT {
			return w.tDo(func(t *Target) Action { return t.NoAnswer() }, false)
		}
		w.agreed = Arbitrate(w.agreed, Abort)
		if answerLost {
			return w.tDo(func(t *Target) Action { return t.NoAnswer() }, false)
		}
		return w.tDo(func(t *Target) Action { return t.Decided(w.agreed) }, false)
	case ReleaseCopy:
		if w.tCopy == cFrozen || w.tCopy == cStopped {
			w.tCopy = cRunning
		}
		w.tJournal = false
	case DropCopy:
		if w.tCopy != cNone {
			w.tCopy = cDead
		}
		w.tJournal = false
	}
	return w
}

// steps lists every event that can happen in w; faults only while the
// budget lasts (with faults false: none).
func (w world) steps(faults bool) []step {
	var out []step
	add := func(name string, n world) { out = append(out, step{name, n}) }
	fault := faults && w.faults < maxFaults
	f := func(n world) world { n.faults++; return n }

	// The source's timers and proposals.
	if w.sAlive && w.s.Phase != Resolved {
		n := w
		add("S stalls", n.sDo(func(s *Source) Action { return s.Stalled() }, false))
		if fault && w.s.Phase == Proposed {
			n := w
			add("S stalls, answer lost", f(n.sDo(func(s *Source) Action { return s.Stalled() }, true)))
		}
	}
	// The target restores (or fails) while receiving.
	if w.tAlive && w.t.Phase == Receiving {
		n := w
		n.t.Restored()
		n.tCopy, n.tJournal = cFrozen, true
		if !n.cutST {
			n.inFlight |= mRestored
		}
		add("T restored", n)
		n = w
		add("T fails", n.tDo(func(t *Target) Action { return t.Failed() }, false))
	}
	if w.tAlive && w.t.Phase == Held {
		n := w
		add("T lost", n.tDo(func(t *Target) Action { return t.Lost() }, false))
		if fault {
			n := w
			add("T lost, answer lost", f(n.tDo(func(t *Target) Action { return t.Lost() }, true)))
		}
	}
	// Messages: delivered, or lost (a fault).
	for _, m := range []msgs{mRestored, mCommit, mAbort} {
		if w.inFlight&m == 0 {
			continue
		}
		n := w
		n.inFlight &^= m
		if fault {
			add(fmt.Sprintf("msg %03b lost", m), f(n))
		}
		if n.cutST {
			continue
		}
		switch m {
		case mRestored:
			if n.sAlive {
				n = n.sDo(func(s *Source) Action { return s.Restored() }, false)
				add("S gets restored", n)
				if fault && w.s.Phase == Sending {
					n := w
					n.inFlight &^= m
					add("S gets restored, answer lost", f(n.sDo(func(s *Source) Action { return s.Restored() }, true)))
				}
			}
		case mCommit:
			if n.tAlive {
				add("T gets commit", n.tDo(func(t *Target) Action { return t.Told(Commit) }, false))
			}
		case mAbort:
			if n.tAlive {
				add("T gets abort", n.tDo(func(t *Target) Action { return t.Told(Abort) }, false))
			}
		}
	}
	// Agents restart from their journals.
	if !w.sAlive && w.sNode {
		n := w
		n.sAlive = true
		if n.sJournal {
			n.s = Recover()
			n = n.sAct(ProposeAbort, false)
		} else {
			n.s = Source{Phase: Resolved} // forgot: answers undecided
		}
		add("S restarts", n)
	}
	if !w.tAlive && w.tNode {
		n := w
		n.tAlive = true
		if n.tJournal {
			n.t = RecoverTarget()
			n = n.tAct(ProposeAbort, false)
		} else {
			n.t = Target{Phase: Done}
		}
		add("T restarts", n)
	}
	if !fault {
		return out
	}
	if w.sAlive {
		n := f(w)
		n.sAlive = false
		if n.sCopy == cFrozen {
			n.sCopy = cStopped // the guard
		}
		add("S agent crashes", n)
	}
	if w.tAlive {
		n := f(w)
		n.tAlive = false
		if n.tCopy == cFrozen {
			n.tCopy = cStopped
		}
		if n.t.Phase == Receiving {
			n.t.Phase = Done // its half-restored copy dies with it
		}
		add("T agent crashes", n)
	}
	if w.sNode {
		n := f(w)
		n.sNode, n.sAlive = false, false
		if n.sCopy != cNone {
			n.sCopy = cDead
		}
		add("S node dies", n)
	}
	if w.tNode {
		n := f(w)
		n.tNode, n.tAlive = false, false
		if n.tCopy != cNone {
			n.tCopy = cDead
		}
		add("T node dies", n)
	}
	for i, cut := range []*bool{&w.cutST, &w.cutS, &w.cutT} {
		n := f(w)
		p := []*bool{&n.cutST, &n.cutS, &n.cutT}[i]
		*p = !*cut
		add(fmt.Sprintf("link %d %s", i, map[bool]string{true: "heals", false: "cut"}[*cut]), n)
	}
	return out
}

func (w world) running() int {
	k := 0
	for _, c := range []copyState{w.sCopy, w.tCopy} {
		if c == cRunning {
			k++
		}
	}
	return k
}

// settle heals every link, restarts the agents of live nodes and lets
// events happen without faults until nothing changes; it returns the
// final world (following each state's first enabled step, then checking
// that every continuation ends the same way is done by exploring all of
// them with faults off).
func settle(t *testing.T, w world, trace []string) {
	w.cutST, w.cutS, w.cutT = false, false, false
	seen := map[world]bool{}
	var walk func(w world, depth int)
	walk = func(w world, depth int) {
		if seen[w] {
			return
		}
		seen[w] = true
		if w.running() > 1 {
			t.Fatalf("two copies run after the faults: %v\n%v", w, trace)
		}
		next := w.steps(false)
		// A world where only timers fire without changing anything is final.
		moved := false
		for _, s := range next {
			if s.w != w {
				moved = true
				walk(s.w, depth+1)
			}
		}
		if moved {
			return
		}
		lost := w.running() == 0
		if lost && w.sNode && w.tNode {
			t.Fatalf("no copy runs at the end, no node died: %v\n%v", w, trace)
		}
		if lost && w.sNode && w.sCopy != cDead || lost && w.tNode && w.tCopy != cDead && w.tCopy != cNone {
			t.Fatalf("a copy is left stopped at the end: %v\n%v", w, trace)
		}
	}
	walk(w, 0)
}

// TestModel explores every interleaving with up to maxFaults faults.
func TestModel(t *testing.T) {
	type node struct {
		w     world
		trace []string
	}
	seen := map[world]bool{}
	queue := []node{{start(), nil}}
	seen[queue[0].w] = true
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		if cur.w.running() > 1 {
			t.Fatalf("two copies run: %v\nafter %v", cur.w, cur.trace)
		}
		settle(t, cur.w, cur.trace)
		for _, s := range cur.w.steps(true) {
			if seen[s.w] {
				continue
			}
			seen[s.w] = true
			queue = append(queue, node{s.w, append(append([]string(nil), cur.trace...), s.name)})
		}
	}
	t.Logf("%d reachable states with up to %d faults: one copy at most in each, exactly one once the faults end", len(seen), maxFaults)
}
