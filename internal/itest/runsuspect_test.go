package itest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ssi-cluster/ssi/internal/api"
	"github.com/ssi-cluster/ssi/internal/harness"
)

// continuous checks that out is the lines 0, 1, ... k-1 then "done"
// (k > 0), and returns k.
func continuous(out string) (int, error) {
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) < 2 || lines[len(lines)-1] != "done" {
		return 0, fmt.Errorf("does not end with done: %s", clipTail(out))
	}
	for i, l := range lines[:len(lines)-1] {
		if l != strconv.Itoa(i) {
			return 0, fmt.Errorf("line %d is %q, want %d (a gap or a repeat): %s", i, l, i, clipTail(out))
		}
	}
	return len(lines) - 1, nil
}

// falseDown cuts node i off until the others commit it down, keeps it so
// a second, heals it and waits until it is up again.
func falseDown(t *testing.T, ctx context.Context, c *harness.Cluster, i int) {
	t.Helper()
	if err := c.Isolate(i); err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("node%d", i)
	waitState(t, ctx, c, others(c, i), name, api.StateDown)
	time.Sleep(time.Second) // down and staying so: the deputy has noticed
	if err := c.Heal(i); err != nil {
		t.Fatal(err)
	}
	waitState(t, ctx, c, others(c), name, api.StateUp)
}

// TestRunFalseDown (issue 12, finding 3): the node running a process
// for a deputy on another node, or the deputy's own (home) node, is cut
// off long enough to be committed down, then comes back. Suspected is not
// dead: the deputy re-attaches, the process keeps its cluster pid and
// pid, not a byte of its output is lost or repeated, and the deputy ends
// with its exit status.
func TestRunFalseDown(t *testing.T) {
	for _, tc := range []struct {
		name string
		cut  int
	}{{"executing node", 2}, {"home node", 1}} {
		t.Run(tc.name, func(t *testing.T) { testRunFalseDown(t, tc.cut) })
	}
}

func testRunFalseDown(t *testing.T, cut int) {
	c, ctx := startCluster(t, 3, "--allow-remote-root", "true")
	mark := filepath.Join(shortTemp(t), "stop")
	script := fmt.Sprintf(`i=0; while [ ! -e %s ]; do echo $i; i=$((i+1)); sleep 0.01; done; echo done; exit 7`, mark)
	d := startDeputy(t, c, 1, fmt.Sprintf("ssi run --node 2 sh -c '%s' </dev/null", script))
	p := findRun(t, ctx, c, 1, "sh -c "+script)
	if err := c.WaitFor(ctx, "output", func() (bool, error) {
		return check(strings.Contains(d.stdout.String(), "\n50\n"), "%d bytes", len(d.stdout.String()))
	}); err != nil {
		t.Fatal(err)
	}
	falseDown(t, ctx, c, cut)
	// Output flows again, through the same deputy.
	n := len(d.stdout.String())
	if err := c.WaitFor(ctx, "output after the heal", func() (bool, error) {
		select {
		case <-d.done:
			t.Fatalf("the deputy ended (exit %d): %q", d.cmd.ProcessState.ExitCode(), d.stderr.String())
		default:
		}
		return check(len(d.stdout.String()) > n+100, "%d bytes, %d before", len(d.stdout.String()), n)
	}); err != nil {
		t.Fatalf("%v; deputy said %q", err, d.stderr.String())
	}
	for _, from := range []int{1, 3} {
		w, err := whereJSON(ctx, c, from, p.CPID)
		if err != nil || w.Node != 2 || w.Pid != p.Pid {
			t.Errorf("where %d from node %d after the heal: %+v, %v; want node 2 pid %d", p.CPID, from, w, err, p.Pid)
		}
	}
	if err := os.WriteFile(mark, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if code := d.wait(t, time.Minute); code != 7 {
		t.Errorf("deputy exited %d, want 7; it said %q", code, d.stderr.String())
	}
	if k, err := continuous(d.stdout.String()); err != nil {
		t.Error(err)
	} else {
		t.Logf("%d lines, none lost; the deputy said %q", k, d.stderr.String())
	}
	reattached(t, c.Nodes[0].Log)
}

// reattached checks that the home's log (at path) says a run was
// suspected and re-attached, and logs those lines (their times show how
// long the run waited).
func reattached(t *testing.T, path string) {
	t.Helper()
	b, _ := os.ReadFile(path)
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, "run suspected") || strings.Contains(l, "run re-attached") {
			t.Log(l)
		}
	}
	if !strings.Contains(string(b), "run re-attached to its process") {
		t.Error("the home's log does not say the run re-attached")
	}
}

// TestRunFalseDownStreams: the same with input and output streaming at
// several MB/s through the run (`producer | ssi run --node 2 cat |
// checker`): while node 2 is cut off, more than the 8 MiB windows are
// offered both ways, so the producer and cat are made to wait; after the
// heal the stream goes on with no byte lost or repeated either way.
func TestRunFalseDownStreams(t *testing.T) {
	c, ctx := startCluster(t, 3, "--allow-remote-root", "true")
	dir := shortTemp(t)
	mark := filepath.Join(dir, "stop")
	producer := filepath.Join(dir, "produce.py")
	// About 7 MB/s of numbered lines until the mark exists.
	prog := fmt.Sprintf(`import os, sys, time
i = 0
while not os.path.exists(%q):
    sys.stdout.write("".join("%%d\n" %% k for k in range(i, i + 20000)))
    sys.stdout.flush()
    i += 20000
    time.sleep(0.02)
print("done")
`, mark)
	if err := os.WriteFile(producer, []byte(prog), 0o644); err != nil {
		t.Fatal(err)
	}
	checker := `awk '$0 == "done" { print "ok", e; exit 0 } $0 != e+0 { print "gap at", e, ":", $0; exit 1 } { e++ }'`
	d := startDeputy(t, c, 1, fmt.Sprintf("python3 %s | ssi run --node 2 cat | %s", producer, checker))
	p := findRun(t, ctx, c, 1, "cat")
	time.Sleep(time.Second) // streaming
	falseDown(t, ctx, c, 2)
	time.Sleep(time.Second) // streaming again
	if w, err := whereJSON(ctx, c, 1, p.CPID); err != nil || w.Node != 2 || w.Pid != p.Pid {
		t.Errorf("where %d after the heal: %+v, %v; want node 2 pid %d", p.CPID, w, err, p.Pid)
	}
	if err := os.WriteFile(mark, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if code := d.wait(t, 2*time.Minute); code != 0 || !strings.HasPrefix(d.stdout.String(), "ok ") {
		t.Fatalf("checker exited %d: %q; the deputy said %q", code, d.stdout.String(), d.stderr.String())
	}
	t.Logf("checker: %s", strings.TrimSpace(d.stdout.String()))
	reattached(t, c.Nodes[0].Log)
}
