package itest

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ssi-cluster/ssi/internal/api"
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

// TestRunFalseDown (issue 12, finding 3): the node running a process
// for a deputy on another node is cut off long enough to be committed
// down, then comes back. Suspected is not dead: the deputy re-attaches,
// the process keeps its cluster pid and pid, not a byte of its output is
// lost or repeated, and the deputy ends with its exit status.
func TestRunFalseDown(t *testing.T) {
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
	if err := c.Isolate(2); err != nil {
		t.Fatal(err)
	}
	waitState(t, ctx, c, []int{1, 3}, "node2", api.StateDown)
	time.Sleep(time.Second) // down and staying so: the deputy has noticed
	if err := c.Heal(2); err != nil {
		t.Fatal(err)
	}
	waitState(t, ctx, c, []int{1, 2, 3}, "node2", api.StateUp)
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
	if b, _ := os.ReadFile(c.Nodes[0].Log); !strings.Contains(string(b), "run re-attached to its process") {
		t.Error("node 1's log does not say the run re-attached")
	}
}
