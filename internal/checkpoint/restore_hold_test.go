package checkpoint

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// frozenCounter starts the counter with its stdout on a pipe (read by
// old) and its count also in out, and freezes it with external stdio.
func frozenCounter(t *testing.T) (cmd *exec.Cmd, old *lineReader, out string, p *Process) {
	t.Helper()
	out = filepath.Join(t.TempDir(), "out")
	r1, w1 := pipe(t)
	cmd = exec.Command(buildC(t, "counter"), out)
	cmd.Stdout = w1
	old = startReading(t, cmd, w1, r1)
	p, err := FreezeWith(cmd.Process.Pid, Options{External: stdio})
	if err != nil {
		t.Fatal(err)
	}
	return cmd, old, out, p
}

// dumpedCounter dumps and kills a counter started by frozenCounter and
// returns its image, the lines it wrote and its output file.
func dumpedCounter(t *testing.T) (img *Image, lines []string, out string) {
	t.Helper()
	cmd, old, out, p := frozenCounter(t)
	img, err := p.Dump()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	return img, old.all(t), out
}

// statFields returns the fields of /proc/PID/stat after the command name
// (state first).
func statFields(t *testing.T, pid int) []string {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
}

// TestRestoreHoldAndNewGroup restores a counter held (stopped under
// ptrace: it counts nothing until Release) in a process group of its own;
// released, it counts on; a second restore held and killed leaves nothing.
func TestRestoreHoldAndNewGroup(t *testing.T) {
	needTracing(t)
	stub := buildC(t, "stub")
	img, lines, out := dumpedCounter(t)

	r2, w2 := pipe(t)
	res, err := RestoreWith(img, stub, RestoreOptions{Files: nullStdio(t, w2), Hold: true, NewGroup: true})
	if err != nil {
		t.Fatal(err)
	}
	w2.Close()
	if f := statFields(t, res.Pid); f[0] != "t" || f[2] != strconv.Itoa(res.Pid) {
		t.Errorf("held: state %s, pgid %s; want t (traced), %d (a group of its own)", f[0], f[2], res.Pid)
	}
	time.Sleep(50 * time.Millisecond)
	if n := len(readLines(out)); n != len(lines) {
		t.Errorf("held, it counted on: %d lines, %d before", n, len(lines))
	}
	if err := res.Release(); err != nil {
		t.Fatal(err)
	}
	defer reap(t, res.Process)
	if res.Release() == nil || res.Kill() == nil {
		t.Error("Release or Kill after Release: no error")
	}
	checkCount(t, append(lines, readFrom(r2).wait(t, 10)...))

	// Held, then killed: no process is left.
	img.Pid = 0 // any pid: the first one still runs
	r3, w3 := pipe(t)
	res3, err := RestoreWith(img, stub, RestoreOptions{Files: nullStdio(t, w3), Hold: true, AnyPid: true})
	if err != nil {
		t.Fatal(err)
	}
	w3.Close()
	if err := res3.Kill(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat("/proc/" + strconv.Itoa(res3.Pid)); err == nil {
		t.Errorf("killed held process %d still exists", res3.Pid)
	}
	r3.Close()
}
