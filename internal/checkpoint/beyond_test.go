package checkpoint

import (
	"path/filepath"
	"syscall"
	"testing"
)

// TestRestoreBeyondEOF migrates a process with a private file mapping
// longer than its file (the pages past the end read as EIO through
// /proc/PID/mem: the dump failed with "input/output error"), plainly and
// pre-copied: it moves, counts on, and finds the page it wrote intact.
func TestRestoreBeyondEOF(t *testing.T) {
	needTracing(t)
	stub := buildC(t, "stub")
	bin := buildC(t, "beyond")
	for _, how := range []string{"plain", "pre-copied"} {
		t.Run(how, func(t *testing.T) {
			dir := t.TempDir()
			out := filepath.Join(dir, "out")
			cmd, _ := start(t, bin, filepath.Join(dir, "f"), out)
			waitLines(t, out, 5)
			pid := cmd.Process.Pid
			var res *Restored
			for range 2 {
				if how == "plain" {
					_, res = migrateWith(t, pid, stub, migration{})
				} else {
					res = precopyMigrate(t, pid, stub)
				}
				pid = res.Pid
				checkCount(t, waitLines(t, out, len(readLines(out))+5))
			}
			res.Process.Signal(syscall.SIGUSR1)
			if st, err := res.Process.Wait(); err != nil || !st.Success() {
				t.Fatalf("the restored program ended with %v (%v): its written page changed", st, err)
			}
		})
	}
}
