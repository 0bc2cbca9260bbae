package agent

import (
	"fmt"
	"testing"
	"time"

	"github.com/ssi-cluster/ssi/internal/rexec"
)

func TestEndedRuns(t *testing.T) {
	at := time.Date(2026, 12, 7, 12, 3, 4, 0, time.UTC)
	for _, tc := range []struct {
		st   rexec.Status
		want string
	}{
		{rexec.Status{Code: 3}, "ended at 12:03:04 with exit status 3"},
		{rexec.Status{Signal: 9}, "ended at 12:03:04, killed by signal 9"},
		{rexec.Status{Code: rexec.ExitLost, Lost: true}, "was lost at 12:03:04"},
	} {
		if got := endedText(at, tc.st); got != tc.want {
			t.Errorf("endedText(%+v) = %q, want %q", tc.st, got, tc.want)
		}
	}
	tr := newTracker()
	for i := range maxEnded + 10 {
		tr.noteEnded(int64(i), fmt.Sprint(i))
	}
	if tr.endedHow(5) != "" || tr.endedHow(maxEnded+9) == "" || len(tr.ended.by) != maxEnded {
		t.Errorf("the oldest are not forgotten first: %d kept", len(tr.ended.by))
	}
}
