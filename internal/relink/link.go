package relink

import (
	"fmt"
	"time"
)

// State is a link's state.
type State int

// The states of a Link.
const (
	Attached  State = iota // a stream to the process's node carries the run
	Suspected              // the stream broke or the node was committed down: waiting for it
	Lost                   // the process is known gone, or the grace ran out
)

func (s State) String() string {
	switch s {
	case Attached:
		return "attached"
	case Suspected:
		return "suspected"
	case Lost:
		return "lost"
	}
	return fmt.Sprintf("state(%d)", int(s))
}

// Link is the home's view of one run's link to its process's node.
type Link struct {
	grace    time.Duration
	state    State
	since    time.Time // when the suspicion began
	why      string    // what began it, or why the process is lost
	reattach int       // re-attachments so far
}

// New returns an attached link that waits grace for a suspected node.
func New(grace time.Duration) *Link { return &Link{grace: grace} }

// State is the link's state.
func (l *Link) State() State { return l.state }

// Why is what the suspicion began with, or why the process is lost.
func (l *Link) Why() string { return l.why }

// Reattachments counts the re-attachments so far.
func (l *Link) Reattachments() int { return l.reattach }

// Broken notes at now that the stream broke or the node was committed
// down (why). A suspicion that began already keeps its start: a node
// that flaps does not extend the grace.
func (l *Link) Broken(now time.Time, why string) {
	if l.state != Attached {
		return
	}
	l.state, l.since, l.why = Suspected, now, why
}

// Recause replaces why a suspected link is suspected (what is known
// now: the node was committed down after its stream broke, say); the
// grace keeps its start.
func (l *Link) Recause(why string) {
	if l.state == Suspected {
		l.why = why
	}
}

// Reattached notes that a new stream carries the run; false if it came
// too late (the process was declared lost: the caller drops the stream).
func (l *Link) Reattached() bool {
	switch l.state {
	case Lost:
		return false
	case Suspected:
		l.reattach++
	}
	l.state, l.why = Attached, ""
	return true
}

// Gone notes that the process is known gone (its node answered that it
// has it no more).
func (l *Link) Gone(why string) {
	l.state, l.why = Lost, why
}

// Left is how much of the grace is left at now (0 when it ran out; the
// whole grace while attached).
func (l *Link) Left(now time.Time) time.Duration {
	if l.state != Suspected {
		if l.state == Lost {
			return 0
		}
		return l.grace
	}
	return max(0, l.grace-now.Sub(l.since))
}

// Expire declares the process lost if the grace ran out at now, and
// reports whether the link is lost.
func (l *Link) Expire(now time.Time) bool {
	if l.state == Suspected && now.Sub(l.since) >= l.grace {
		l.state = Lost
		l.why = fmt.Sprintf("%s, and did not come back within %s", l.why, l.grace)
	}
	return l.state == Lost
}
