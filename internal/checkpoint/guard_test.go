package checkpoint

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// abandon ends p's tracer thread without detaching anything, as the
// agent's death does.
func (p *Process) abandon() {
	p.spent = true
	p.t.close()
}

// abandon ends the tracer thread of a held restore without detaching.
func (r *Restored) abandon() {
	h := r.held
	r.held = nil
	h.t.close()
}

// states returns the state letter of every thread of pid, the leader
// first ("" if it is gone).
func states(pid int) string {
	dir := "/proc/" + strconv.Itoa(pid) + "/task/"
	ents, _ := os.ReadDir(dir)
	var s []byte
	for _, e := range ents {
		b, err := os.ReadFile(dir + e.Name() + "/stat")
		if err != nil {
			continue
		}
		st := string(b)
		s = append(s, st[strings.LastIndexByte(st, ')')+2])
	}
	return string(s)
}

// waitStates waits until every thread of pid is in state want.
func waitStates(t *testing.T, pid int, want byte) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s := states(pid)
		if s != "" && strings.Count(s, string(want)) == len(s) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pid %d: thread states %q, want all %c", pid, s, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// still checks that pid, whose output file out has n lines, writes
// nothing more for a while and stays in state T.
func still(t *testing.T, pid int, out string, n int) {
	t.Helper()
	time.Sleep(100 * time.Millisecond)
	if m := len(readLines(out)); m != n {
		t.Errorf("stopped, it wrote on: %d lines, %d before", m, n)
	}
	if s := states(pid); strings.Count(s, "T") != len(s) {
		t.Errorf("thread states %q, want all T", s)
	}
}

// contCounts checks the lines of testdata/contcount.c (N counts with no
// gap or repeat, from the first line's N) and returns the last line's
// signal counts (SIGCONT, SIGUSR1, SIGUSR2).
func contCounts(t *testing.T, lines []string) [3]int {
	t.Helper()
	var last [3]int
	var first int
	for i, l := range lines {
		f := strings.Fields(l)
		if len(f) != 4 {
			t.Fatalf("line %d: %q", i, l)
		}
		n, _ := strconv.Atoi(f[0])
		if i == 0 {
			first = n
		}
		if n != first+i {
			t.Fatalf("line %d is %q, want %d first", i, l, first+i)
		}
		for j := range last {
			last[j], _ = strconv.Atoi(f[j+1])
		}
	}
	return last
}

// frozenDumped starts bin (writing to out), freezes it and dumps it;
// before are signals to send it while frozen, before the dump.
func frozenDumped(t *testing.T, bin string, before ...syscall.Signal) (pid int, out string, p *Process, img *Image) {
	t.Helper()
	out = filepath.Join(t.TempDir(), "out")
	cmd, _ := start(t, bin, out)
	waitLines(t, out, 5)
	pid = cmd.Process.Pid
	p, err := Freeze(pid)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range before {
		syscall.Kill(pid, s)
	}
	if img, err = p.Dump(); err != nil {
		t.Fatal(err)
	}
	return pid, out, p, img
}

// frozenGuarded is frozenDumped and guards the process (twice: Guard is
// idempotent).
func frozenGuarded(t *testing.T, bin string, before ...syscall.Signal) (pid int, out string, p *Process) {
	t.Helper()
	pid, out, p, _ = frozenDumped(t, bin, before...)
	for range 2 {
		if err := p.Guard(); err != nil {
			t.Fatal(err)
		}
	}
	if s := states(pid); strings.Count(s, "t") != len(s) {
		t.Errorf("guarded: thread states %q, want all t (traced)", s)
	}
	if _, err := p.Dump(); err == nil {
		t.Error("Dump of a guarded process: no error")
	}
	return pid, out, p
}

// TestGuardTracerDeath kills the tracer of a guarded process: it stops
// (group-stop) instead of running on; SIGCONT lets it go on, the signal
// held back during the dump delivered once.
func TestGuardTracerDeath(t *testing.T) {
	needTracing(t)
	t.Run("single", func(t *testing.T) {
		pid, out, p := frozenGuarded(t, buildC(t, "contcount"), syscall.SIGUSR1)
		p.abandon()
		waitStates(t, pid, 'T')
		n := len(readLines(out))
		still(t, pid, out, n)
		syscall.Kill(pid, syscall.SIGCONT)
		got := contCounts(t, waitLines(t, out, n+10))
		if got != [3]int{1, 1, 0} {
			t.Errorf("SIGCONT, SIGUSR1, SIGUSR2 seen %v times, want 1, 1, 0", got)
		}
	})
	t.Run("threads", func(t *testing.T) {
		pid, out, p := frozenGuarded(t, buildC(t, "mtcount", "-pthread"))
		p.abandon()
		waitStates(t, pid, 'T')
		if s := states(pid); len(s) != 5 {
			t.Fatalf("%d threads, want 5", len(s))
		}
		before := readLines(out)
		still(t, pid, out, len(before))
		at := checkThreadLines(t, before)
		syscall.Kill(pid, syscall.SIGCONT)
		last := checkThreadLines(t, waitLines(t, out, len(before)+10))
		for j := range 4 {
			if last[j] <= at[j] {
				t.Errorf("thread %d counter stuck at %d after SIGCONT", j, last[j])
			}
		}
	})
}

// TestGuardResume resumes guarded processes: they go on, never stopped;
// a signal held back during the dump and one pending in a thread's own
// queue are each delivered once, and no SIGCONT comes.
func TestGuardResume(t *testing.T) {
	needTracing(t)
	t.Run("single", func(t *testing.T) {
		pid, out, p := frozenGuarded(t, buildC(t, "contcount"), syscall.SIGUSR1)
		// Sent to the thread after the guard: pending in its own queue,
		// after the guard's SIGSTOP.
		unix.Tgkill(pid, pid, unix.SIGUSR2)
		n := len(readLines(out))
		if err := p.Resume(); err != nil {
			t.Fatal(err)
		}
		got := contCounts(t, waitLines(t, out, n+20))
		if got != [3]int{0, 1, 1} {
			t.Errorf("SIGCONT, SIGUSR1, SIGUSR2 seen %v times, want 0, 1, 1", got)
		}
		if !running(pid) {
			t.Errorf("resumed: state %q", states(pid))
		}
	})
	t.Run("threads", func(t *testing.T) {
		pid, out, p := frozenGuarded(t, buildC(t, "mtcount", "-pthread"))
		at := checkThreadLines(t, readLines(out))
		if err := p.Resume(); err != nil {
			t.Fatal(err)
		}
		last := checkThreadLines(t, waitLines(t, out, len(readLines(out))+10))
		for j := range 4 {
			if last[j] <= at[j] {
				t.Errorf("thread %d counter stuck at %d after Resume", j, last[j])
			}
		}
		if s := states(pid); strings.ContainsAny(s, "Tt") {
			t.Errorf("resumed: thread states %q", s)
		}
	})
}

// TestGuardDelivered guards a process with a signal pending in its own
// queue before the guard's SIGSTOP: the guard delivers it (the handler
// runs once the process runs), tracer's death or not.
func TestGuardDelivered(t *testing.T) {
	needTracing(t)
	pid, out, p, _ := frozenDumped(t, buildC(t, "contcount"))
	unix.Tgkill(pid, pid, unix.SIGUSR1)
	if err := p.Guard(); err != nil {
		t.Fatal(err)
	}
	p.abandon()
	waitStates(t, pid, 'T')
	n := len(readLines(out))
	still(t, pid, out, n)
	syscall.Kill(pid, syscall.SIGCONT)
	if got := contCounts(t, waitLines(t, out, n+10)); got != [3]int{1, 1, 0} {
		t.Errorf("SIGCONT, SIGUSR1, SIGUSR2 seen %v times, want 1, 1, 0", got)
	}
}

// TestGuardKill kills a guarded process.
func TestGuardKill(t *testing.T) {
	needTracing(t)
	pid, _, p := frozenGuarded(t, buildC(t, "contcount"))
	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}
	if s := states(pid); s != "" && s != "Z" {
		t.Errorf("killed: state %q", s)
	}
}

// TestGuardStopped freezes a process stopped by SIGSTOP, with and
// without the guard, and resumes it: it stays stopped until SIGCONT.
func TestGuardStopped(t *testing.T) {
	needTracing(t)
	out := filepath.Join(t.TempDir(), "out")
	cmd, _ := start(t, buildC(t, "contcount"), out)
	waitLines(t, out, 5)
	pid := cmd.Process.Pid
	syscall.Kill(pid, syscall.SIGSTOP)
	waitStates(t, pid, 'T')
	for _, guard := range []bool{false, true} {
		p, err := Freeze(pid)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.Dump(); err != nil {
			t.Fatal(err)
		}
		if guard {
			if err := p.Guard(); err != nil {
				t.Fatal(err)
			}
		}
		if err := p.Resume(); err != nil {
			t.Fatal(err)
		}
		waitStates(t, pid, 'T')
		still(t, pid, out, len(readLines(out)))
	}
	n := len(readLines(out))
	syscall.Kill(pid, syscall.SIGCONT)
	if got := contCounts(t, waitLines(t, out, n+10)); got != [3]int{1, 0, 0} {
		t.Errorf("SIGCONT, SIGUSR1, SIGUSR2 seen %v times, want 1, 0, 0", got)
	}
}

// TestGuardRestoreHeld: a held restore is guarded; its tracer's death
// leaves it stopped, neither killed nor running, and SIGCONT lets it
// count on; Release and Kill of a held restore work as before.
func TestGuardRestoreHeld(t *testing.T) {
	needTracing(t)
	stub := buildC(t, "stub")
	img, lines, out := dumpedCounter(t)
	img.Pid = 0
	hold := func() (*Restored, *os.File) {
		t.Helper()
		r, w := pipe(t)
		res, err := RestoreWith(img, stub, RestoreOptions{Files: nullStdio(t, w), Hold: true, AnyPid: true})
		if err != nil {
			t.Fatal(err)
		}
		w.Close()
		if err := res.Guard(); err != nil {
			t.Fatal(err)
		}
		if s := states(res.Pid); strings.Count(s, "t") != len(s) {
			t.Errorf("held: thread states %q, want all t", s)
		}
		return res, r
	}

	res, r := hold()
	res.abandon()
	waitStates(t, res.Pid, 'T')
	still(t, res.Pid, out, len(lines))
	res.Process.Signal(syscall.SIGCONT)
	checkCount(t, append(lines, readFrom(r).wait(t, 10)...))
	reap(t, res.Process)

	res, r = hold()
	if err := res.Release(); err != nil {
		t.Fatal(err)
	}
	checkCount(t, append(lines, readFrom(r).wait(t, 10)...))
	if res.Guard() == nil {
		t.Error("Guard after Release: no error")
	}
	reap(t, res.Process)

	res, r = hold()
	if err := res.Kill(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat("/proc/" + strconv.Itoa(res.Pid)); err == nil {
		t.Errorf("killed held process %d still exists", res.Pid)
	}
	r.Close()
}

// TestGuardRestoreHeldThreads: the tracer of a held restore of a process
// with five threads dies: every thread stops; SIGCONT lets all count on.
func TestGuardRestoreHeldThreads(t *testing.T) {
	needTracing(t)
	stub := buildC(t, "stub")
	_, out, p, img := frozenDumped(t, buildC(t, "mtcount", "-pthread"))
	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}
	before := readLines(out)
	at := checkThreadLines(t, before)
	res, err := RestoreWith(img, stub, RestoreOptions{Hold: true})
	if err != nil {
		t.Fatal(err)
	}
	defer reap(t, res.Process)
	res.abandon()
	waitStates(t, res.Pid, 'T')
	if s := states(res.Pid); len(s) != 5 {
		t.Fatalf("%d threads, want 5", len(s))
	}
	still(t, res.Pid, out, len(before))
	res.Process.Signal(syscall.SIGCONT)
	last := checkThreadLines(t, waitLines(t, out, len(before)+10))
	for j := range 4 {
		if last[j] <= at[j] {
			t.Errorf("thread %d counter stuck at %d after SIGCONT", j, last[j])
		}
	}
}
