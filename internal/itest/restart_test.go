package itest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
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

// counterScript prints numbered lines until the file stop exists, then
// "end", and exits 7.
func counterScript(stop string) string {
	return fmt.Sprintf(`i=0; while [ ! -e %s ]; do echo $i; i=$((i+1)); [ $((i %% 50)) = 0 ] && sleep 0.02; done; echo end; exit 7`, stop)
}

// counted checks that out is 0, 1, 2, ... n-1 then "end" (when ended),
// one a line, and returns n: every byte, in order, none twice.
func counted(out string, ended bool) (int, error) {
	lines := strings.Split(out, "\n")
	if len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	} else if len(lines) > 0 {
		lines = lines[:len(lines)-1] // a line being written
	}
	if ended {
		if len(lines) == 0 || lines[len(lines)-1] != "end" {
			return 0, fmt.Errorf("output does not end with \"end\"")
		}
		lines = lines[:len(lines)-1]
	}
	for i, l := range lines {
		if l != strconv.Itoa(i) {
			return i, fmt.Errorf("line %d is %q, want %d (output lost, repeated or out of order)", i, l, i)
		}
	}
	return len(lines), nil
}

// bounce stops node's agent (how: SIGTERM, as systemctl stop does) or
// kills it (SIGKILL), and starts it again.
func bounce(t *testing.T, ctx context.Context, c *harness.Cluster, node int, how string) {
	t.Helper()
	var err error
	if how == "SIGKILL" {
		err = c.KillAgent(node)
	} else {
		err = c.StopAgent(ctx, node)
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := c.StartAgent(ctx, node); err != nil {
		t.Fatal(err)
	}
}

// restartRun is a counter run for a deputy, followed through restarts.
type restartRun struct {
	d    *bgDeputy
	cpid int64
	node int
	stop string
}

// grows waits until the run's output has grown past what it had (the
// deputy gets output again) and checks it so far.
func (r *restartRun) grows(t *testing.T, ctx context.Context, c *harness.Cluster, what string) {
	t.Helper()
	n0, err := counted(r.d.stdout.String(), false)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	err = c.WaitFor(ctx, fmt.Sprintf("run %d's output to grow %s", r.cpid, what), func() (bool, error) {
		n, err := counted(r.d.stdout.String(), false)
		if err != nil {
			return false, err
		}
		return check(n > n0+100, "%d lines, had %d; deputy stderr %q", n, n0, r.d.stderr.String())
	})
	if err != nil {
		t.Fatal(err)
	}
	p, err := whereJSON(ctx, c, 3, r.cpid)
	if err != nil || p.CPID != r.cpid || p.Node != r.node {
		t.Fatalf("%s: ssi where %d = %+v, %v; want it on node %d under the same cluster pid", what, r.cpid, p, err, r.node)
	}
}

// TestRunSurvivesAgentRestart: processes run from node 3 on node 2 and
// on node 1 (the master) live through their agent's SIGTERM and restart,
// then SIGKILL and restart, and through their home's (node 3's): same
// cluster pid, every byte of output in order, the right exit status.
func TestRunSurvivesAgentRestart(t *testing.T) {
	c, ctx := startCluster(t, 3, "--allow-remote-root", "true")
	dir := t.TempDir()
	var runs []*restartRun
	for _, node := range []int{2, 1} {
		r := &restartRun{node: node, stop: filepath.Join(dir, fmt.Sprintf("stop%d", node))}
		r.d = startDeputy(t, c, 3, fmt.Sprintf("ssi run --node %d sh -c '%s'", node, counterScript(r.stop)))
		r.cpid = findRunOn(t, ctx, c, node, "sh -c i=0")
		runs = append(runs, r)
		r.grows(t, ctx, c, "at the start")
	}
	for i, r := range runs {
		for _, how := range []string{"SIGTERM", "SIGKILL"} {
			bounce(t, ctx, c, r.node, how)
			for _, rr := range runs[i:] {
				rr.grows(t, ctx, c, fmt.Sprintf("after node %d's agent got %s and restarted", r.node, how))
			}
		}
	}
	// The home's agent: its deputies re-attach through the next one.
	for _, how := range []string{"SIGTERM", "SIGKILL"} {
		bounce(t, ctx, c, 3, how)
		for _, r := range runs {
			r.grows(t, ctx, c, fmt.Sprintf("after the home's agent (node 3) got %s and restarted", how))
		}
	}
	for _, r := range runs {
		if err := os.WriteFile(r.stop, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if code := r.d.wait(t, 30*time.Second); code != 7 {
			t.Errorf("deputy of the run on node %d exited %d, want 7; stderr %q", r.node, code, r.d.stderr.String())
		}
		n, err := counted(r.d.stdout.String(), true)
		if err != nil {
			t.Errorf("run on node %d: %v", r.node, err)
		}
		t.Logf("run on node %d: %d lines, every one once and in order", r.node, n)
	}
	for _, i := range []int{1, 2, 3} {
		b, _ := os.ReadFile(c.Nodes[i-1].Log)
		for _, l := range strings.Split(string(b), "\n") {
			if strings.Contains(l, "re-adopted") || strings.Contains(l, "re-attached") {
				t.Logf("node %d: %s", i, l[:min(len(l), 220)])
			}
		}
	}
}

// findRunOn waits until node 3's `ssi ps` lists a process of node 3
// running on node as cmd, and returns its cluster pid.
func findRunOn(t *testing.T, ctx context.Context, c *harness.Cluster, node int, cmd string) int64 {
	t.Helper()
	var cpid int64
	err := c.WaitFor(ctx, "ps to list "+cmd, func() (bool, error) {
		procs, err := psJSON(ctx, c, 3)
		if err != nil {
			return false, err
		}
		for _, p := range procs {
			if strings.HasPrefix(p.Command, cmd) && p.Node == node && int(p.CPID>>22) == 3 {
				cpid = p.CPID
				return true, nil
			}
		}
		return check(false, "no %q of node 3 on node %d", cmd, node)
	})
	if err != nil {
		t.Fatal(err)
	}
	return cpid
}

// psJSON is node from's `ssi ps -o json` with args.
func psJSON(ctx context.Context, c *harness.Cluster, from int, args ...string) ([]api.Proc, error) {
	out, err := c.CLI(ctx, from, append([]string{"ps", "-o", "json"}, args...)...)
	if err != nil {
		return nil, err
	}
	var reply api.ProcsReply
	err = json.Unmarshal(out, &reply)
	return reply.Procs, err
}

// TestRestartAfterMigration: a native process of node 1 moved to node 2
// is found by its cluster pid after node 1's agent (its origin) restarts;
// after node 2's agent is killed and restarted, node 2's log says what
// became of the process restored there (it is not held: not lost without
// a word).
func TestRestartAfterMigration(t *testing.T) {
	c, ctx := startCluster(t, 2)
	dir := shortTempX(t)
	os.Chmod(dir, 0o777)
	bins := buildProgs(t, dir, "counter")
	out := filepath.Join(dir, "native.out")
	pid := startNative(t, c, 1, asNobody, "sh -c 'exec "+bins["counter"]+" 100000 >"+out+" </dev/null 2>/dev/null'", nil)
	cpid := int64(1)<<22 | int64(pid)
	countLines(t, ctx, c, out, 20)
	if o := ssiAs(t, c, 2, "65534:65534", "migrate", strconv.FormatInt(cpid, 10), "2"); o.code != 0 {
		t.Fatalf("migrate to node 2: %v", o)
	}
	waitWhere(t, ctx, c, 1, cpid, 2)
	if err := c.StopAgent(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if err := c.StartAgent(ctx, 1); err != nil {
		t.Fatal(err)
	}
	waitWhere(t, ctx, c, 1, cpid, 2) // its origin restarted: found all the same
	if err := c.KillAgent(2); err != nil {
		t.Fatal(err)
	}
	if err := c.StartAgent(ctx, 2); err != nil {
		t.Fatal(err)
	}
	err := c.WaitFor(ctx, "node 2's log to say what became of the restored process", func() (bool, error) {
		b, _ := os.ReadFile(c.Nodes[1].Log)
		for _, l := range strings.Split(string(b), "\n") {
			if strings.Contains(l, "restored here") && strings.Contains(l, strconv.FormatInt(cpid, 10)) {
				t.Logf("node 2: %s", l)
				return true, nil
			}
		}
		return check(false, "no line")
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestRunInputSurvivesAgentRestart: a stream of input into `ssi run
// sha256sum` goes on through a SIGKILL and a SIGTERM of the executing
// agent: not a byte lost or passed twice (the holder keeps the count of
// input passed on for the next agent, and the home sends the rest).
func TestRunInputSurvivesAgentRestart(t *testing.T) {
	c, ctx := startCluster(t, 2, "--allow-remote-root", "true")
	dir := shortTempX(t)
	bins := buildProgs(t, dir, "slowcat")
	data := filepath.Join(dir, "data")
	content := bytes.Repeat([]byte("input through two restarts\n"), 1<<20) // 27 MiB
	if err := os.WriteFile(data, content, 0o644); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("%x  -\n", sha256.Sum256(content))
	sum := startDeputy(t, c, 1, bins["slowcat"]+" "+data+" 64 20 | ssi run --node 2 sha256sum")
	findRun(t, ctx, c, 1, "sha256sum")
	for k, how := range []string{"SIGKILL", "SIGTERM"} {
		time.Sleep(time.Second) // input flows meanwhile
		bounce(t, ctx, c, 2, how)
		err := c.WaitFor(ctx, "the home to re-attach after the "+how, func() (bool, error) {
			b, _ := os.ReadFile(c.Nodes[0].Log)
			n := strings.Count(string(b), `msg="run re-attached to its process"`)
			return check(n > k, "%d re-attachments", n)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if code := sum.wait(t, 2*time.Minute); code != 0 || sum.stdout.String() != want {
		t.Fatalf("exit %d, printed %q; want 0 and %q; stderr %q", code, sum.stdout.String(), want, sum.stderr.String())
	}
	for i := range 2 {
		b, _ := os.ReadFile(c.Nodes[i].Log)
		for _, l := range strings.Split(string(b), "\n") {
			if strings.Contains(l, "re-adopted") || strings.Contains(l, "re-attached") {
				t.Logf("node %d: %s", i+1, l)
			}
		}
	}
}
