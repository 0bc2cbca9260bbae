package checkpoint

import (
	"path/filepath"
	"testing"
)

// TestRestoreKeepsSigtrapHandler migrates, three times, a program that
// raises SIGTRAP every 20 ms and counts in its handler: the handler
// survives the single steps of the dump and of the restore, with SIGTRAP
// unblocked and with SIGTRAP blocked while the program is frozen (a
// forced SIGTRAP that is blocked resets its handler).
func TestRestoreKeepsSigtrapHandler(t *testing.T) {
	needTracing(t)
	stub := buildC(t, "stub")
	bin := buildC(t, "sigtrap")
	for _, mode := range []string{"unblocked", "blocked"} {
		t.Run(mode, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			cmd, _ := start(t, bin, out, mode)
			waitLines(t, out, 10)
			pid := cmd.Process.Pid
			for round := range 3 {
				img, res := migrateWith(t, pid, stub, migration{})
				if !hasAction(img, 5) {
					t.Fatalf("round %d: no SIGTRAP handler in the image", round)
				}
				before := len(readLines(out))
				checkCount(t, waitLines(t, out, before+10))
				if !running(res.Pid) {
					t.Fatalf("round %d: the restored process died (its SIGTRAP handler was lost)", round)
				}
				pid = res.Pid
			}
		})
	}
}

func hasAction(img *Image, sig int) bool {
	for _, a := range img.SigActions {
		if a.Sig == sig && a.Handler > 1 {
			return true
		}
	}
	return false
}
