package state

import (
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

func TestRaftLogFilter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 7, 6, 0, 0, 0, time.UTC)
	f := newRaftLogFilter()
	f.now = func() time.Time { return now }
	const vote = "failed to make requestVote RPC"
	for _, step := range []struct {
		what    string
		after   time.Duration // advance the clock first
		msg     string
		args    []any
		exclude bool
	}{
		{"first election timeout logged", 0, "Election timeout reached, restarting election", nil, false},
		{"the next one, 300 ms later, left out", 300 * time.Millisecond, "Election timeout reached, restarting election", nil, true},
		{"a failed vote to peer a logged", 0, vote, []any{"target", "a", "error", "x"}, false},
		{"a failed vote to peer b logged", 0, vote, []any{"target", "b", "error", "x"}, false},
		{"again to peer a left out", time.Second, vote, []any{"target", "a", "error", "y"}, true},
		{"a line that does not repeat always logged", 0, "raft configuration changed", nil, false},
		{"and again", 0, "raft configuration changed", nil, false},
		{"a minute later logged again", time.Minute, "Election timeout reached, restarting election", nil, false},
	} {
		now = now.Add(step.after)
		if got := f.exclude(hclog.Warn, step.msg, step.args...); got != step.exclude {
			t.Errorf("%s: exclude = %v, want %v", step.what, got, step.exclude)
		}
	}
}
