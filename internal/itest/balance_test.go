package itest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBalanceSpreadsJobs: with balance = true on every node, six
// CPU-bound jobs started on node 1 (six busy loops, at nice 19, on its
// two cores)
// spread over the three nodes by themselves within seconds, each node
// ending with at most three, and every job's output goes on, not a line
// lost or repeated (each counts to a file). The moves are logged as
// "balanced" on node 1 with their reason.
func TestBalanceSpreadsJobs(t *testing.T) {
	needRoot(t)
	// Equal speeds: each node measures its own under whatever load the machine has.
	c, ctx := startCluster(t, 3, "--allow-remote-root", "true", "--balance", "true", "--speed", "1000")
	dir := shortTempX(t)
	stop := filepath.Join(dir, "stop")
	var ds []*bgDeputy
	for i := range 6 {
		out := filepath.Join(dir, fmt.Sprintf("job%d", i))
		// Busy: a count kept in the shell, written out every 20000 loops.
		script := fmt.Sprintf(`i=0; n=0; while [ ! -e %s ]; do i=$((i+1)); if [ $i -ge 20000 ]; then echo $n >>%s; n=$((n+1)); i=0; fi; done; echo end >>%s`, stop, out, out)
		// At nice 19, as batch jobs are run: the agents and the test's
		// ssi ps keep the CPU they need on this machine, which all three
		// nodes share.
		ds = append(ds, startDeputy(t, c, 1, fmt.Sprintf("ssi run --node 1 nice -n 19 sh -c '%s' </dev/null", script)))
	}
	var where map[int]int
	wctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	err := c.WaitFor(wctx, "the jobs to spread over the nodes", func() (bool, error) {
		pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		procs, err := psJSON(pctx, c, 1)
		if err != nil {
			return false, err
		}
		where = map[int]int{}
		for _, p := range procs {
			// The jobs, not their deputies and the shells that started them.
			if strings.HasPrefix(p.Command, "sh -c i=0; n=0; while [ ! -e") && int(p.CPID>>22) == 1 {
				where[p.Node]++
			}
		}
		n := 0
		for _, k := range where {
			n += k
		}
		return check(n == 6 && len(where) == 3 && where[1] <= 3 && where[2] <= 3 && where[3] <= 3, "jobs by node %v", where)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("jobs by node: %v", where)
	b, _ := os.ReadFile(c.Nodes[0].Log)
	if n := strings.Count(string(b), `msg=balanced`); n < 2 {
		t.Errorf("node 1's log has %d balanced moves, want at least 2", n)
	} else if !strings.Contains(string(b), "reason=load") {
		t.Error("node 1's log does not give the moves' reason")
	}
	if err := os.WriteFile(stop, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for i, d := range ds {
		if code := d.wait(t, 2*time.Minute); code != 0 {
			t.Errorf("job %d exited %d; stderr %q", i, code, d.stderr.String())
		}
		out, _ := os.ReadFile(filepath.Join(dir, fmt.Sprintf("job%d", i)))
		if n, err := counted(string(out), true); err != nil {
			t.Errorf("job %d: %v", i, err)
		} else if n == 0 {
			t.Errorf("job %d counted nothing", i)
		}
	}
}
