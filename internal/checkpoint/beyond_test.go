package checkpoint

import (
	"path/filepath"
	"testing"
)

// TestRestoreBeyondEOF migrates a process with a private file mapping
// longer than its file (the pages past the end read as EIO through
// /proc/PID/mem: the dump failed with "input/output error"), plainly and
// pre-copied: it moves, counts on, and finds the page it wrote intact.
func TestRestoreBeyondEOF(t *testing.T) {
	needTracing(t)
	stub, bin := buildC(t, "stub"), buildC(t, "beyond")
	for _, how := range []string{"plain", "pre-copied"} {
		t.Run(how, func(t *testing.T) {
			moveAndCheck(t, stub, bin, how, "its written page changed", 2, func(out string) []string {
				return []string{filepath.Join(filepath.Dir(out), "f"), out}
			}, nil)
		})
	}
}
