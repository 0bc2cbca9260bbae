// Package commit is the migration commit protocol, pure: what the source
// and the target of a migration do at each event, so that after any
// crash of either agent, partition or lost message, at most one copy of
// the process runs, and once the faults are gone exactly one does.
//
// A migration has two copies once the target has restored the process:
// the source's, frozen (and guarded: an agent that dies leaves it
// stopped, package checkpoint's Guard), and the target's, held stopped.
// Each copy runs only on a decision: the target's on commit, the
// source's on abort.
//
// The source decides alone while it can: until the target says it has
// restored the process, nothing can commit, so a source that meets a
// stall, a broken stream or a refusal aborts on its own and resumes its
// copy at once (the freeze is bounded). Once the target has restored the
// process, the commit is not the source's alone: it is proposed to the
// agreed state (raft, through the master), where the first proposal of a
// migration wins. Either side that loses the other proposes an abort
// there and learns the outcome, which is the same for both. A side that
// cannot reach the agreed state (it is cut off from the majority) keeps
// its copy stopped until it can: the one case in which a freeze outlasts
// its bound, and it is a node that the cluster fences anyway.
//
// The agent drives Source and Target with the events it sees and does
// what they return; the model test explores every interleaving of
// messages, crashes and partitions up to a bound.
package commit

// Outcome is what the agreed state says of a migration.
type Outcome uint8

// The outcomes.
const (
	Undecided Outcome = iota // nothing recorded (or the side does not know)
	Commit                   // the target's copy runs
	Abort                    // the source's copy runs
)

func (o Outcome) String() string {
	return [...]string{"undecided", "commit", "abort"}[o]
}

// Action is what a side must do next.
type Action uint8

// The actions.
const (
	None          Action = iota
	ProposeCommit        // source: propose commit to the agreed state
	ProposeAbort         // either: propose abort (and learn the outcome)
	AskSource            // target: ask the source what was decided
	ResumeCopy           // source: let its copy run on, tell the target Abort
	KillCopy             // source: kill its copy, tell the target Commit
	ReleaseCopy          // target: let its copy run
	DropCopy             // target: kill its copy
	Wait                 // keep the copy stopped; try again later
)

var actionNames = [...]string{"none", "propose-commit", "propose-abort", "ask-source",
	"resume-copy", "kill-copy", "release-copy", "drop-copy", "wait"}

func (a Action) String() string { return actionNames[a] }

// SourcePhase is where the source is, once its copy is frozen.
type SourcePhase uint8

// The source's phases.
const (
	Sending  SourcePhase = iota // the image is going; the target has not restored it
	Proposed                    // a proposal went to the agreed state: the outcome is not ours alone
	Resolved                    // the copy is killed or resumed
)

// Source is the source's side of one migration, from the freeze on.
type Source struct {
	Phase SourcePhase
	Known Outcome // once Resolved: what it did (Abort for a local abort)
}

// Recover is the source after its agent restarted and found, in its
// journal, a copy it had frozen: whether it proposed is unknown, so it
// asks the agreed state as if it had.
func Recover() Source { return Source{Phase: Proposed} }

// Restored: the target has restored the process and holds it.
func (s *Source) Restored() Action {
	if s.Phase != Sending {
		return None // resolved already (a local abort): the target learns it
	}
	s.Phase = Proposed
	return ProposeCommit
}

// Stalled: nothing came for the bound, the stream broke, or the target
// failed. Before any proposal the source aborts alone; after one, only
// the agreed state can say.
func (s *Source) Stalled() Action {
	switch s.Phase {
	case Sending:
		s.Phase, s.Known = Resolved, Abort
		return ResumeCopy
	case Proposed:
		return ProposeAbort
	}
	return None
}

// Decided: the agreed state answered a proposal with o (Commit or Abort).
func (s *Source) Decided(o Outcome) Action {
	if s.Phase == Resolved {
		return None
	}
	switch o {
	case Commit:
		s.Phase, s.Known = Resolved, Commit
		return KillCopy
	case Abort:
		s.Phase, s.Known = Resolved, Abort
		return ResumeCopy
	}
	return Wait
}

// NoAnswer: the agreed state could not be reached (or did not answer in
// time). The copy stays frozen; the source proposes abort again later.
func (s *Source) NoAnswer() Action {
	if s.Phase == Proposed {
		return Wait
	}
	return None
}

// Answer is what the source tells a target that asks: only what it knows
// for sure (a local abort, or the agreed outcome it acted on).
func (s *Source) Answer() Outcome {
	if s.Phase == Resolved {
		return s.Known
	}
	return Undecided
}

// TargetPhase is where the target is.
type TargetPhase uint8

// The target's phases.
const (
	Receiving TargetPhase = iota // staging and restoring: nothing held yet
	Held                         // restored and held; the source was told
	Done                         // released or dropped
)

// Target is the target's side of one migration.
type Target struct{ Phase TargetPhase }

// RecoverTarget is the target after its agent restarted and found, in
// its journal, a copy it held.
func RecoverTarget() Target { return Target{Phase: Held} }

// Restored: the copy is restored and held (guarded); tell the source.
func (t *Target) Restored() { t.Phase = Held }

// Failed: the restore failed before anything was held: there is no copy
// to release, ever.
func (t *Target) Failed() Action {
	if t.Phase == Receiving {
		t.Phase = Done
		return DropCopy
	}
	return None
}

// Told: the source's message (Commit only after the agreed state
// committed; Abort after a local abort or an agreed one).
func (t *Target) Told(o Outcome) Action { return t.Decided(o) }

// Lost: no decision came within the bound, or the stream broke: ask the
// source first (cheap, and it knows in the common case).
func (t *Target) Lost() Action {
	if t.Phase == Held {
		return AskSource
	}
	return None
}

// SourceSaid: the source's answer to AskSource (Undecided also when it
// could not be reached or did not know the migration: a restarted agent).
func (t *Target) SourceSaid(o Outcome) Action {
	if t.Phase != Held {
		return None
	}
	if o == Undecided {
		return ProposeAbort
	}
	return t.Decided(o)
}

// Decided: the outcome, from the agreed state or the source.
func (t *Target) Decided(o Outcome) Action {
	if t.Phase != Held {
		if t.Phase == Receiving && o == Abort {
			t.Phase = Done
			return DropCopy
		}
		return None
	}
	switch o {
	case Commit:
		t.Phase = Done
		return ReleaseCopy
	case Abort:
		t.Phase = Done
		return DropCopy
	}
	return Wait
}

// NoAnswer: the agreed state could not be reached: keep holding.
func (t *Target) NoAnswer() Action {
	if t.Phase == Held {
		return Wait
	}
	return None
}

// Arbitrate is the agreed state's rule: the first proposal wins.
func Arbitrate(recorded, proposed Outcome) Outcome {
	if recorded != Undecided {
		return recorded
	}
	return proposed
}
