package checkpoint

import (
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// checkThreadLines checks the lines of testdata/mtcount.c: every check
// "ok", and every counter and the total never decreasing.
func checkThreadLines(t *testing.T, lines []string) [5]int64 {
	t.Helper()
	var prev [5]int64
	for i, l := range lines {
		f := strings.Fields(l)
		if len(f) != 6 || f[5] != "ok" {
			t.Fatalf("line %d: %q", i, l)
		}
		for j := range prev {
			v, err := strconv.ParseInt(f[j], 10, 64)
			if err != nil || v < prev[j] {
				t.Fatalf("line %d: %q after %v", i, l, prev)
			}
			prev[j] = v
		}
	}
	return prev
}

func testThreads(t *testing.T, extra ...string) {
	needTracing(t)
	stub := buildC(t, "stub")
	bin := buildC(t, "mtcount", append(extra, "-pthread")...)
	out := filepath.Join(t.TempDir(), "out")
	cmd, _ := start(t, bin, out)
	waitLines(t, out, 5)
	pid := cmd.Process.Pid
	for round := range 2 {
		img, npid := migrate(t, pid, stub)
		if len(img.Threads) != 4 {
			t.Fatalf("image has %d threads besides the leader, want 4", len(img.Threads))
		}
		before := readLines(out)
		at := checkThreadLines(t, before)
		lines := waitLines(t, out, len(before)+10)
		if !running(npid) {
			t.Fatalf("restored process %d not running", npid)
		}
		last := checkThreadLines(t, lines)
		for j := range 4 {
			if last[j] <= at[j] {
				t.Fatalf("thread %d counter stuck at %d (at dump %d)", j, last[j], at[j])
			}
		}
		t.Logf("round %d: pid %d -> %d, counters %v -> %v", round, pid, npid, at, last)
		pid = npid
	}
}

// TestRestoreThreads migrates a static program with five threads, twice.
func TestRestoreThreads(t *testing.T) { testThreads(t) }

// TestRestoreThreadsDynamic does the same with the program dynamically
// linked.
func TestRestoreThreadsDynamic(t *testing.T) { testThreads(t, "-dynamic") }

// TestFreezeResumeThreads dumps a multi-threaded process and lets it go on.
func TestFreezeResumeThreads(t *testing.T) {
	needTracing(t)
	out := filepath.Join(t.TempDir(), "out")
	cmd, _ := start(t, buildC(t, "mtcount", "-pthread"), out)
	waitLines(t, out, 5)
	img := dumpResume(t, cmd.Process.Pid)
	for _, th := range img.Threads {
		if th.TIDAddress == 0 || th.RobustList.Head == 0 || th.Regs.FSBase == 0 {
			t.Errorf("thread %d: tid address %#x, robust list %#x, fs_base %#x", th.Tid, th.TIDAddress, th.RobustList.Head, th.Regs.FSBase)
		}
	}
	at := checkThreadLines(t, readLines(out))
	last := checkThreadLines(t, waitLines(t, out, len(readLines(out))+10))
	for j := range 4 {
		if last[j] <= at[j] {
			t.Fatalf("thread %d counter stuck at %d after Resume", j, last[j])
		}
	}
}
