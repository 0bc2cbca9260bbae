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

	"github.com/ssi-cluster/ssi/internal/harness"
)

// countLines waits until file holds at least n lines of a count with no
// gap or repeat (0, 1, 2...) and returns how many it holds.
func countLines(t *testing.T, ctx context.Context, c *harness.Cluster, file string, n int) int {
	t.Helper()
	var got int
	var broken error
	err := c.WaitFor(ctx, "the count in "+file+" to reach "+strconv.Itoa(n), func() (bool, error) {
		b, err := os.ReadFile(file)
		if err != nil {
			return false, err
		}
		lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
		for i, l := range lines {
			if i == len(lines)-1 && !strings.HasSuffix(string(b), "\n") {
				break // a line being written
			}
			if l != strconv.Itoa(i) {
				broken = fmt.Errorf("line %d of %s is %q: the count broke", i, file, l)
				return true, nil
			}
			got = i + 1
		}
		return check(got >= n, "%d lines", got)
	})
	if err == nil {
		err = broken
	}
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// TestMigrateNativeAndVerbs: a process not run by ssi (native) moves with
// its cluster pid and comes home; ssi freeze and continue stop and
// continue a run wherever it is, and a frozen run moves frozen; ssi
// checkpoint --kill and ssi restore start a process again on another
// node where it was saved, and an image is restored only by its owner; a
// run that ends on its new node before its deputy re-attaches there still
// gives the deputy its last output and its exit status.
func TestMigrateNativeAndVerbs(t *testing.T) {
	c, ctx := startCluster(t, 2)
	dir := shortTempX(t)
	os.Chmod(dir, 0o777)
	bins := buildProgs(t, dir, "counter", "hostwatch")
	nobody := "65534:65534"

	t.Run("native", func(t *testing.T) {
		out := filepath.Join(dir, "native.out")
		// Its file is its own, opened as nobody: a node takes in a user's
		// process only with files the user may open there.
		pid := startNative(t, c, 1, asNobody, "sh -c 'exec "+bins["counter"]+" 100000 >"+out+" </dev/null 2>/dev/null'", nil)
		cpid := strconv.FormatInt(int64(1)<<22|int64(pid), 10)
		countLines(t, ctx, c, out, 20)
		if o := ssiAs(t, c, 2, nobody, "migrate", cpid, "2"); o.code != 0 {
			t.Fatalf("migrate to node 2: %v", o)
		}
		id, _ := strconv.ParseInt(cpid, 10, 64)
		waitWhere(t, ctx, c, 1, id, 2)
		n := countLines(t, ctx, c, out, 0)
		countLines(t, ctx, c, out, n+20) // it counts on, over there
		if o := ssiAs(t, c, 2, nobody, "migrate", cpid, "home"); o.code != 0 {
			t.Fatalf("migrate home: %v", o)
		}
		waitWhere(t, ctx, c, 2, id, 1)
		n = countLines(t, ctx, c, out, 0)
		countLines(t, ctx, c, out, n+20)
		if o := ssiAs(t, c, 2, nobody, "kill", "-KILL", cpid); o.code != 0 {
			t.Fatalf("kill: %v", o)
		}
	})

	t.Run("freeze and continue", func(t *testing.T) {
		d := startDeputy(t, c, 2, asNobody+"ssi run --node 1 "+bins["counter"]+" 400")
		p := findRun(t, ctx, c, 2, bins["counter"]+" 400")
		cpid := strconv.FormatInt(p.CPID, 10)
		time.Sleep(300 * time.Millisecond)
		if o := ssiAs(t, c, 2, nobody, "freeze", cpid); o.code != 0 || o.stdout != cpid+": frozen\n" {
			t.Fatalf("freeze: %v", o)
		}
		waitProcState(t, ctx, c, p.CPID, "T")
		if o := ssiAs(t, c, 1, nobody, "migrate", cpid, "2"); o.code != 0 {
			t.Fatalf("migrate a frozen process: %v", o)
		}
		if w := waitWhere(t, ctx, c, 1, p.CPID, 2); w.State != "T" {
			t.Errorf("moved frozen, it is %s on node 2, not T", w.State)
		}
		if o := ssiAs(t, c, 1, nobody, "continue", cpid); o.code != 0 || o.stdout != cpid+": continued\n" {
			t.Fatalf("continue: %v", o)
		}
		if code := d.wait(t, time.Minute); code != 0 {
			t.Fatalf("deputy exited %d: %s", code, d.stderr.String())
		}
		if got := d.stdout.String(); got != counterOutput(400) {
			t.Errorf("the deputy printed %s", clipTail(got))
		}
	})

	t.Run("ends before its home re-attaches", func(t *testing.T) {
		// hostwatch exits within 100 microseconds of running on node 2
		// (its hostname changes), long before its deputy on node 2 has
		// been told it moved and opened a stream to it there.
		d := startDeputy(t, c, 2, asNobody+"ssi run --node 1 "+bins["hostwatch"])
		p := findRun(t, ctx, c, 2, bins["hostwatch"])
		cpid := strconv.FormatInt(p.CPID, 10)
		if o := ssiAs(t, c, 2, nobody, "migrate", cpid, "2"); o.code != 0 {
			t.Fatalf("migrate: %v", o)
		}
		if code := d.wait(t, time.Minute); code != 3 {
			t.Fatalf("deputy exited %d, want 3 (the process's status): %s", code, d.stderr.String())
		}
		if got, want := d.stdout.String(), "on node1\nnow on node2\n"; got != want {
			t.Errorf("the deputy printed %q, want %q", got, want)
		}
	})

	t.Run("checkpoint and restore", func(t *testing.T) {
		out, img := filepath.Join(dir, "saved.out"), filepath.Join(dir, "saved.img")
		// The file is the user's: opened by its shell, as nobody.
		pid := startNative(t, c, 1, asNobody, "sh -c 'exec "+bins["counter"]+" 100000 >"+out+" </dev/null 2>/dev/null'", nil)
		cpid := strconv.FormatInt(int64(1)<<22|int64(pid), 10)
		countLines(t, ctx, c, out, 20)
		o := ssiAs(t, c, 2, nobody, "checkpoint", "--kill", cpid, img)
		if o.code != 0 || !strings.Contains(o.stdout, "saved to "+img+"; it was killed") {
			t.Fatalf("checkpoint --kill: %v", o)
		}
		n := countLines(t, ctx, c, out, 0)
		time.Sleep(100 * time.Millisecond)
		if m := countLines(t, ctx, c, out, 0); m != n {
			t.Fatalf("the count went on after checkpoint --kill: %d, then %d lines", n, m)
		}
		if o := ssiAs(t, c, 2, "1000:1000", "restore", img); o.code == 0 || !strings.Contains(o.stderr, "permission denied") && !strings.Contains(o.stderr, "runs as uid 65534, you are uid 1000") &&
			!strings.Contains(o.stderr, "node 2 refuses restore for uid 1000 on this node: the process belongs to uid 65534, not to uid 1000") {
			t.Errorf("restore by another user: %v", o)
		}
		o = ssiAs(t, c, 2, nobody, "restore", img)
		if o.code != 0 || !strings.Contains(o.stdout, "restored on node 2") {
			t.Fatalf("restore: %v", o)
		}
		countLines(t, ctx, c, out, n+20) // the same count, on node 2
		id, _ := strconv.ParseInt(strings.SplitN(o.stdout, ":", 2)[0], 10, 64)
		ssiAs(t, c, 2, nobody, "kill", "-KILL", strconv.FormatInt(id, 10))
	})
}

// waitProcState waits until cpid's state (ps's letter) is state.
func waitProcState(t *testing.T, ctx context.Context, c *harness.Cluster, cpid int64, state string) {
	t.Helper()
	err := c.WaitFor(ctx, "process state "+state, func() (bool, error) {
		w, err := whereJSON(ctx, c, 2, cpid)
		if err != nil {
			return false, err
		}
		return check(w.State == state, "state %s", w.State)
	})
	if err != nil {
		t.Fatal(err)
	}
}
