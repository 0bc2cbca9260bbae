package itest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ssi-cluster/ssi/internal/harness"
	"github.com/ssi-cluster/ssi/internal/migrate"
	"github.com/ssi-cluster/ssi/internal/vproc"
)

// The fault matrix of the migration commit protocol (docs/migration.md):
// a native counter on node 2, appending its count to a file, is moved to
// node 3 while a fault strikes at one step of the migration: either
// agent killed (kill -9) there, or either node cut off the network for
// longer than it takes the cluster to commit it down (then healed), or
// both. Whatever the fault, once the dust settles exactly one copy of the
// counter runs (on node 2 or node 3), its file counts on without a
// number repeated (two copies never ran) and without a gap (no count
// lost), and no node keeps a copy stopped or a journal entry.

// commitCase is one fault at one step.
type commitCase struct {
	name string
	hook string // SIDE:ACTION@STEP for migrate.StepEnv
	// during, for a pause: what happens while the agent waits at the
	// step (it goes on once during returns); it returns what undoes it,
	// called after hold.
	during func(t *testing.T, c *harness.Cluster) func()
	hold   time.Duration
	// sourceLog, if set, must appear in the source's log (node 2).
	sourceLog string
}

func isolateFor(nodes ...int) func(t *testing.T, c *harness.Cluster) func() {
	return func(t *testing.T, c *harness.Cluster) func() {
		for _, n := range nodes {
			if err := c.Isolate(n); err != nil {
				t.Fatal(err)
			}
		}
		return func() {
			for _, n := range nodes {
				c.Heal(n)
			}
		}
	}
}

// commitCases: every step of each side with its agent killed, and the
// steps where a partition matters with either node cut off.
func commitCases(full bool) []commitCase {
	var cs []commitCase
	crashSteps := map[string][]string{
		"source": {"frozen", "sent", "restored", "decided", "committed"},
		"target": {"image", "held", "commit"},
	}
	for _, side := range []string{"source", "target"} {
		for _, step := range crashSteps[side] {
			cs = append(cs, commitCase{name: side + " agent killed at " + step, hook: side + ":crash@" + step})
		}
	}
	cuts := []struct {
		side, step string
		node       int
	}{
		{"source", "frozen", 2}, {"source", "sent", 2}, {"source", "restored", 2}, {"source", "decided", 2},
		{"target", "held", 3}, {"target", "commit", 3},
		{"source", "restored", 3}, {"target", "held", 2},
	}
	for _, cut := range cuts {
		cc := commitCase{name: fmt.Sprintf("node %d cut off with the %s at %s", cut.node, cut.side, cut.step),
			hook: cut.side + ":pause@" + cut.step, during: isolateFor(cut.node), hold: 3 * time.Second}
		if cut.side == "source" && cut.step == "frozen" {
			// Finding 7 of issue 12: a frozen transfer is bounded (once
			// the target has said restored, a cut-off source keeps its
			// copy frozen until it learns the outcome: docs/migration.md).
			cc.sourceLog = fmt.Sprintf("nothing moved for %v while the process was frozen", 2*time.Second)
		}
		cs = append(cs, cc)
	}
	// Finding 1 of issue 12: the target's agent stalls (SIGSTOP) for
	// 0.7 s at the freeze and the source is cut off 0.2 s later.
	cs = append(cs, commitCase{name: "target agent stalled, then source cut off", hook: "source:pause@sent", hold: 6 * time.Second,
		during: func(t *testing.T, c *harness.Cluster) func() {
			if err := c.PauseAgent(3); err != nil {
				t.Fatal(err)
			}
			time.Sleep(200 * time.Millisecond)
			c.Isolate(2)
			go func() { time.Sleep(500 * time.Millisecond); c.ResumeAgent(3) }()
			return func() { c.Heal(2) }
		}})
	if !full {
		// The integration suite runs a sample; SSITEST_FULL_MATRIX=1 all.
		var sample []commitCase
		for i, c := range cs {
			if i%3 == 0 || strings.HasPrefix(c.name, "target agent stalled") {
				sample = append(sample, c)
			}
		}
		return sample
	}
	return cs
}

func TestMigrateCommitFaults(t *testing.T) {
	needRoot(t)
	hookFile := filepath.Join(shortTemp(t), "step")
	t.Setenv(migrate.StepEnv, hookFile)
	c, ctx := startCluster(t, 3, "--allow-remote-root", "true")
	dir := shortTempX(t)
	bins := buildProgs(t, dir, "counter")
	t.Cleanup(func() {
		out, _ := exec.Command("sh", "-c", `ps -eo pid,ppid,stat,wchan:24,args | awk '$3 ~ /^(D|t|Z|T)/'`).Output()
		t.Logf("stopped, traced, dead or blocked processes at the end:\n%s", out)
	})
	for i, cc := range commitCases(os.Getenv("SSITEST_FULL_MATRIX") != "") {
		t.Run(strings.ReplaceAll(cc.name, " ", "_"), func(t *testing.T) {
			// The case before may have cut a node off: it must be back
			// (its down and return committed) before this one starts.
			if err := c.WaitFormed(ctx); err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(dir, fmt.Sprintf("count%d", i))
			pid := startNative(t, c, 2, "", fmt.Sprintf("%s 1000000 >>%s", bins["counter"], out), nil)
			cpid, _ := vproc.Make(2, pid)
			waitCount(t, out, 20)
			logAt := fileSize(c.Nodes[1].Log)
			if err := os.WriteFile(hookFile, []byte(cc.hook), 0o644); err != nil {
				t.Fatal(err)
			}
			moved := make(chan error, 1)
			go func() {
				mctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
				defer cancel()
				_, err := migrateCLI(mctx, c, 1, int64(cpid), "3")
				moved <- err
			}()
			side := 2
			if strings.HasPrefix(cc.hook, "target") {
				side = 3
			}
			if cc.during != nil {
				waitFile(t, hookFile+".paused")
				undo := cc.during(t, c)
				os.Remove(hookFile + ".paused")
				time.Sleep(cc.hold)
				undo()
			} else {
				waitAgentGone(t, c, side)
				if err := c.StartAgent(ctx, side); err != nil {
					t.Fatal(err)
				}
			}
			err := <-moved
			os.Remove(hookFile)
			t.Logf("ssi migrate: %v", err)
			checkOneCopy(t, ctx, c, bins["counter"], out)
			if b, _ := os.ReadFile(c.Nodes[1].Log); cc.sourceLog != "" && !strings.Contains(string(b[min(logAt, int64(len(b))):]), cc.sourceLog) {
				t.Errorf("node 2's log does not say %q", cc.sourceLog)
			}
		})
	}
}

func fileSize(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return st.Size()
}

// waitCount waits until file holds at least n lines.
func waitCount(t *testing.T, file string, n int) {
	t.Helper()
	for end := time.Now().Add(30 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if b, _ := os.ReadFile(file); strings.Count(string(b), "\n") >= n {
			return
		}
	}
	t.Fatalf("%s: fewer than %d lines after 30 s", file, n)
}

func waitFile(t *testing.T, path string) {
	t.Helper()
	for end := time.Now().Add(time.Minute); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(path); err == nil {
			return
		}
	}
	t.Fatalf("%s did not appear (the step was never reached)", path)
}

func waitAgentGone(t *testing.T, c *harness.Cluster, i int) {
	t.Helper()
	for end := time.Now().Add(time.Minute); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if _, err := c.AgentPID(i); err != nil {
			return
		}
	}
	t.Fatalf("node %d's agent did not crash at the step (was it reached?)", i)
}

// checkOneCopy waits until no node holds a copy in its journal, then
// checks that exactly one copy of prog runs, and that out counts on, one
// by one, with no number twice and none missing.
func checkOneCopy(t *testing.T, ctx context.Context, c *harness.Cluster, prog, out string) {
	t.Helper()
	err := c.WaitFor(ctx, "the migration journals to empty", func() (bool, error) {
		for _, n := range []int{2, 3} {
			es, _ := os.ReadDir(filepath.Join(c.Nodes[n-1].StateDir, "migrations"))
			if len(es) > 0 {
				return false, fmt.Errorf("node %d's journal holds %d entries", n, len(es))
			}
		}
		return true, nil
	})
	if err != nil {
		t.Error(err)
	}
	var where []string
	var running []int
	for _, n := range []int{2, 3} {
		b, _ := c.Command(n, "pgrep", "-f", prog).Output()
		for _, f := range strings.Fields(string(b)) {
			pid, _ := strconv.Atoi(f)
			st, _ := c.Command(n, "ps", "-o", "stat=", "-p", f).Output()
			where = append(where, fmt.Sprintf("node %d pid %d (%s)", n, pid, strings.TrimSpace(string(st))))
			running = append(running, n)
			t.Cleanup(func() { c.Command(n, "kill", "-9", f).Run() })
		}
	}
	if len(running) != 1 {
		t.Fatalf("%d copies of the counter: %v; want exactly one", len(running), where)
	}
	t.Logf("one copy runs: %s", where[0])
	b0, _ := os.ReadFile(out)
	time.Sleep(500 * time.Millisecond)
	b, _ := os.ReadFile(out)
	if len(b) <= len(b0) {
		t.Errorf("the copy (%v) does not count on", where)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	for i, l := range lines {
		if l != strconv.Itoa(i) {
			t.Fatalf("line %d of the count is %q, want %d (%s): two copies wrote, or a count was lost", i+1, l, i,
				strings.Join(lines[max(0, i-3):min(len(lines), i+3)], " "))
		}
	}
	c.Command(running[0], "pkill", "-9", "-f", prog).Run()
}
