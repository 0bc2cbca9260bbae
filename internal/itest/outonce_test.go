package itest

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ssi-cluster/ssi/internal/harness"
	"github.com/ssi-cluster/ssi/internal/migrate"
)

// fastCounter prints numbered lines as fast as sh can until the file stop
// exists, then "end", and exits 7; with split, the odd lines go to stderr.
func fastCounter(stop string, split bool) string {
	odd := ""
	if split {
		odd = `[ $((i % 2)) = 1 ] && { echo $i >&2; i=$((i+1)); j=$((j+1)); continue; }; `
	}
	return fmt.Sprintf(`i=0; while :; do j=0; while [ $j -lt 100 ]; do %secho $i; i=$((i+1)); j=$((j+1)); done; [ -e %s ] && break; done; echo end; exit 7`, odd, stop)
}

// TestRunOutputOnceThroughHomeKills: the output of runs streaming as fast
// as they can is written exactly once, in order, while their home agent
// is killed (SIGKILL) or stopped (SIGTERM) at random moments and
// restarted, again and again:
// to a pipe, and to a file that is both stdout and stderr (2>&1, whose
// lines keep their order across the two streams).
func TestRunOutputOnceThroughHomeKills(t *testing.T) {
	c, ctx := startCluster(t, 2, "--allow-remote-root", "true")
	dir := t.TempDir()
	stop := filepath.Join(dir, "stop")
	file := filepath.Join(dir, "out")
	piped := startDeputy(t, c, 2, fmt.Sprintf("ssi run --node 1 sh -c '%s'", fastCounter(stop, false)))
	filed := startDeputy(t, c, 2, fmt.Sprintf("ssi run --node 1 sh -c '%s' >%s 2>&1", fastCounter(stop, true), file))
	fileOut := func() string { b, _ := os.ReadFile(file); return string(b) }
	// While it runs, lines are only counted (every line is checked at the
	// end): checking millions of lines every 20 ms cost this test more CPU
	// than the runs it watches, on a machine it shares.
	fileLines := func() int { b, _ := os.ReadFile(file); return bytes.Count(b, []byte("\n")) }
	grows := func(what string) {
		t.Helper()
		n0, f0 := piped.stdout.lines(), fileLines()
		err := c.WaitFor(ctx, "both outputs to grow "+what, func() (bool, error) {
			n, f := piped.stdout.lines(), fileLines()
			return check(n > n0+2000 && f > f0+2000, "pipe %d lines (had %d), file %d (had %d); stderr %q %q",
				n, n0, f, f0, piped.stderr.String(), filed.stderr.String())
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	grows("at the start")
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 2))
	for k, how := range []string{"SIGKILL", "SIGTERM", "SIGKILL", "SIGTERM", "SIGKILL"} {
		time.Sleep(time.Duration(rng.IntN(300)) * time.Millisecond)
		bounce(t, ctx, c, 2, how)
		grows(fmt.Sprintf("after the home's agent got %s and restarted (%d)", how, k+1))
	}
	if err := os.WriteFile(stop, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, d := range []*bgDeputy{piped, filed} {
		if code := d.wait(t, 30*time.Second); code != 7 {
			t.Errorf("deputy exited %d, want 7; stderr %q", code, d.stderr.String())
		}
	}
	for what, out := range map[string]string{"to a pipe": piped.stdout.String(), "to a file, 2>&1": fileOut()} {
		n, err := counted(out, true)
		if err != nil {
			t.Errorf("%s: %v", what, err)
		}
		t.Logf("%s: %d lines, every one once and in order", what, n)
	}
}

// checkedInput is a run of awk on node that checks its input, numbered
// lines streamed as fast as sh can from a deputy on home until the file
// stop exists.
type checkedInput struct {
	d    *bgDeputy
	cpid int64
	stop string
}

func startCheckedInput(t *testing.T, ctx context.Context, c *harness.Cluster, home, node int) *checkedInput {
	awk := `$1 == "end" { print "ok " e; exit 0 } $1 != e { print "line " e " is " $1; exit 3 } { e++ }`
	return startChecked(t, ctx, c, home, node, awk)
}

// startChecked is startCheckedInput with another awk program.
func startChecked(t *testing.T, ctx context.Context, c *harness.Cluster, home, node int, awk string) *checkedInput {
	t.Helper()
	r := &checkedInput{stop: filepath.Join(t.TempDir(), "stop")}
	r.d = startDeputy(t, c, home, fmt.Sprintf("sh -c '%s' | ssi run --node %d awk '%s'", fastCounter(r.stop, false), node, awk))
	err := c.WaitFor(ctx, "ps to list the awk", func() (bool, error) {
		procs, err := psJSON(ctx, c, home)
		for _, p := range procs {
			// Its cluster pid names the home (a process listed before it
			// is tracked as the run shows its node's own).
			if strings.HasPrefix(p.Command, "awk ") && p.Node == node && int(p.CPID>>22) == home {
				r.cpid = p.CPID
				return true, nil
			}
		}
		return check(false, "not listed (%v)", err)
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// rejoined waits until home's log says a deputy re-attached more than k
// times.
func (r *checkedInput) rejoined(t *testing.T, ctx context.Context, c *harness.Cluster, home, k int) {
	t.Helper()
	err := c.WaitFor(ctx, "the deputy to rejoin", func() (bool, error) {
		b, _ := os.ReadFile(c.Nodes[home-1].Log)
		n := strings.Count(string(b), `msg="deputy re-attached to its process"`)
		return check(n > k, "%d rejoins; deputy stderr %q", n, r.d.stderr.String())
	})
	if err != nil {
		t.Fatal(err)
	}
}

// end stops the stream and checks that awk saw every line once.
func (r *checkedInput) end(t *testing.T) {
	t.Helper()
	time.Sleep(time.Second)
	if err := os.WriteFile(r.stop, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	code := r.d.wait(t, 2*time.Minute)
	out := r.d.stdout.String()
	if code != 0 || !strings.HasPrefix(out, "ok ") {
		t.Fatalf("exit %d, printed %q; want 0 and ok; stderr %q", code, out, r.d.stderr.String())
	}
	t.Logf("awk: %s", strings.TrimSpace(out))
}

// TestRunInputOnceThroughHomeKills: numbered lines streamed as fast as sh
// can into `ssi run awk`, which checks that each is the one after the
// last, go on through SIGKILLs and SIGTERMs of the home agent (the one
// the deputy talks to): the deputy keeps what it sent until the process's
// node has it, and sends the rest again to the next agent; not a line
// lost or passed twice.
func TestRunInputOnceThroughHomeKills(t *testing.T) {
	c, ctx := startCluster(t, 2, "--allow-remote-root", "true")
	r := startCheckedInput(t, ctx, c, 2, 1)
	for k, how := range []string{"SIGKILL", "SIGTERM", "SIGKILL", "SIGKILL"} {
		time.Sleep(time.Second) // input flows meanwhile
		bounce(t, ctx, c, 2, how)
		r.rejoined(t, ctx, c, 2, k)
	}
	r.end(t)
}

// TestRunInputOnceThroughMovesAndHomeKills: the same line-checked input
// stream, its process moved between nodes and its home agent killed
// after each move: the deputy learns of each move's new session (node,
// pid, base) and the next agent maps what the new node has to the
// deputy's count. Not a line lost or passed twice.
func TestRunInputOnceThroughMovesAndHomeKills(t *testing.T) {
	c, ctx := startCluster(t, 3, "--allow-remote-root", "true")
	r := startCheckedInput(t, ctx, c, 3, 1)
	for k, to := range []int{2, 1} {
		time.Sleep(time.Second) // input flows meanwhile
		if out, err := c.CLI(ctx, 3, "migrate", strconv.FormatInt(r.cpid, 10), strconv.Itoa(to)); err != nil {
			t.Fatalf("migrate to node %d: %v: %s", to, err, out)
		}
		waitWhere(t, ctx, c, 3, r.cpid, to)
		time.Sleep(500 * time.Millisecond)
		bounce(t, ctx, c, 3, "SIGKILL")
		r.rejoined(t, ctx, c, 3, k)
	}
	r.end(t)
}

// TestRunMovedAsItsHomeDies: the home agent of a run is killed at the
// worst moment of a move, when its relay has read the process's Moved
// from the node it left and has not told the deputy of the new session.
// The deputy rejoins the next agent with what it knew: the next agent
// re-attaches to the node the process left, which kept the end of that
// session, follows the move from there, and resumes the input where the
// new session has it. Every line of input reaches the process once, and
// every line it echoes reaches the deputy once, in order.
func TestRunMovedAsItsHomeDies(t *testing.T) {
	needRoot(t)
	hookFile := filepath.Join(shortTemp(t), "step")
	t.Setenv(migrate.StepEnv, hookFile)
	c, ctx := startCluster(t, 3, "--allow-remote-root", "true")
	echo := `$1 == "end" { print "end"; exit 0 } $1 != e { print "line " e " is " $1; exit 3 } { print; e++ }`
	r := startChecked(t, ctx, c, 3, 1, echo)
	time.Sleep(time.Second) // input and output flow meanwhile
	if err := os.WriteFile(hookFile, []byte("home:crash@moved"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := c.CLI(ctx, 2, "migrate", strconv.FormatInt(r.cpid, 10), "2"); err != nil {
		t.Fatalf("migrate to node 2: %v: %s", err, out)
	}
	waitAgentGone(t, c, 3)
	if err := c.StartAgent(ctx, 3); err != nil {
		t.Fatal(err)
	}
	r.rejoined(t, ctx, c, 3, 0)
	waitWhere(t, ctx, c, 3, r.cpid, 2)
	time.Sleep(time.Second)
	if err := os.WriteFile(r.stop, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	code := r.d.wait(t, 2*time.Minute)
	n, err := counted(r.d.stdout.String(), true)
	if code != 0 || err != nil {
		t.Fatalf("exit %d (want 0), output: %v; stderr %q", code, err, r.d.stderr.String())
	}
	t.Logf("%d lines in and out, each once and in order, through a move whose home died at its Moved", n)
}
