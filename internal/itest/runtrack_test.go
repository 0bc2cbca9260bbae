package itest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ssi-cluster/ssi/internal/api"
	"github.com/ssi-cluster/ssi/internal/harness"
)

// bgDeputy is an `ssi run` started in the background inside a node.
type bgDeputy struct {
	cmd            *exec.Cmd
	stdout, stderr lockedBuffer
	done           chan struct{}
}

// lockedBuffer is a bytes.Buffer that may be read while a command writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// lines counts the lines written so far, without copying them.
func (l *lockedBuffer) lines() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return bytes.Count(l.b.Bytes(), []byte("\n"))
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startDeputy starts `sh -c script` in node on, with ssi on PATH and the
// node's socket in SSI_SOCKET.
func startDeputy(t *testing.T, c *harness.Cluster, on int, script string) *bgDeputy {
	t.Helper()
	d := &bgDeputy{done: make(chan struct{})}
	d.cmd = c.Command(on, "sh", "-c", script)
	d.cmd.Env = []string{"PATH=" + filepath.Dir(c.Binary) + ":/usr/bin:/bin", "SSI_SOCKET=" + c.Nodes[on-1].Socket}
	d.cmd.Stdout, d.cmd.Stderr = &d.stdout, &d.stderr
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.cmd.Wait(); close(d.done) }()
	t.Cleanup(func() {
		syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
		<-d.done
	})
	return d
}

// wait waits for the deputy's shell to end and returns its exit status.
func (d *bgDeputy) wait(t *testing.T, limit time.Duration) int {
	t.Helper()
	select {
	case <-d.done:
		return d.cmd.ProcessState.ExitCode()
	case <-time.After(limit):
		t.Fatalf("deputy still running after %v; stderr: %s", limit, d.stderr.String())
		return -1
	}
}

// findRun waits until node `from`'s `ssi ps` lists exactly one process
// run from another node whose command is cmd, and returns it.
func findRun(t *testing.T, ctx context.Context, c *harness.Cluster, from int, cmd string) api.Proc {
	t.Helper()
	var found api.Proc
	err := c.WaitFor(ctx, "ps to list "+cmd, func() (bool, error) {
		procs, err := psJSON(ctx, c, from)
		if err != nil {
			return false, err
		}
		n := 0
		for _, p := range procs {
			// Run from another node: its origin is not where it runs (a
			// child it forks shows the same command until it execs).
			if p.Command == cmd && int(p.CPID>>22) != p.Node {
				found = p
				n++
			}
		}
		return check(n == 1, "%d processes named %q", n, cmd)
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

func whereJSON(ctx context.Context, c *harness.Cluster, from int, cpid int64) (api.Proc, error) {
	var p api.Proc
	out, err := c.CLI(ctx, from, "where", "-o", "json", strconv.FormatInt(cpid, 10))
	if err != nil {
		return p, err
	}
	return p, json.Unmarshal(out, &p)
}

// TestRunProcessSpace: a process run from node 1 on node 2 has a cluster
// pid of node 1 (its deputy's pid), is listed once with its parent across
// nodes, found by where from any node, signalled only by its owner, and
// its deputy dies of the signal it died of.
func TestRunProcessSpace(t *testing.T) {
	c, ctx := startCluster(t, 3)
	d := startDeputy(t, c, 1, `echo $$; exec setpriv --reuid 65534 --regid 65534 --clear-groups sh -c 'ssi run --node 2 sleep 301; echo status=$?'`)
	p := findRun(t, ctx, c, 3, "sleep 301")
	shPid, _ := strconv.Atoi(strings.TrimSpace(strings.SplitN(d.stdout.String(), "\n", 2)[0]))
	if p.Node != 2 || p.CPID>>22 != 1 || p.User != "nobody" {
		t.Errorf("ps: %+v; want node 2, a cluster pid of node 1, user nobody", p)
	}
	if want := int64(1)<<22 | int64(shPid); p.PCPID != want {
		t.Errorf("parent %d, want the deputy's shell on node 1 (%d)", p.PCPID, want)
	}
	// The deputy is not listed beside it.
	out, _ := c.CLI(ctx, 1, "ps", "-o", "json")
	if strings.Contains(string(out), `"command": "ssi run`) {
		t.Errorf("the deputy is listed:\n%s", out)
	}
	for _, from := range []int{1, 2, 3} {
		w, err := whereJSON(ctx, c, from, p.CPID)
		if err != nil || w.Node != 2 || w.Pid != p.Pid {
			t.Errorf("where from node %d: %+v, %v; want node 2 pid %d", from, w, err, p.Pid)
		}
	}
	// Another user may not signal it; its owner may, from any node.
	o := execIn(t, c, runSpec{on: 3, user: "1000:1000", dir: "/", argv: []string{c.Binary, "--socket", c.Nodes[2].Socket, "kill", strconv.FormatInt(p.CPID, 10)}})
	if o.code == 0 || !strings.Contains(o.stderr, "belongs to uid 65534") {
		t.Errorf("kill by uid 1000: %v; want a refusal naming the owner", o)
	}
	o = execIn(t, c, runSpec{on: 3, user: "65534:65534", dir: "/", argv: []string{c.Binary, "--socket", c.Nodes[2].Socket, "kill", strconv.FormatInt(p.CPID, 10)}})
	if o.code != 0 {
		t.Fatalf("kill by its owner: %v", o)
	}
	d.wait(t, 20*time.Second)
	if !strings.Contains(d.stdout.String(), "status=143") {
		t.Errorf("deputy's shell printed %q, want status=143 (death by SIGTERM)", d.stdout.String())
	}
	// Asked for afterwards, from any node: it ended, and how (its home
	// keeps the note).
	for from := 1; from <= 3; from++ {
		_, err := c.CLI(ctx, from, "where", strconv.FormatInt(p.CPID, 10))
		if err == nil || !strings.Contains(err.Error(), "killed by signal 15") {
			t.Errorf("where from node %d after the end: %v; want it to say it was killed by signal 15", from, err)
		}
	}
}

// TestRunDetached: run -d prints the cluster pid and returns; the process
// is listed and controllable; its output goes to the named file.
func TestRunDetached(t *testing.T) {
	c, ctx := startCluster(t, 2, "--allow-remote-root", "true")
	out := filepath.Join(shortTemp(t), "out")
	o := execIn(t, c, runSpec{on: 1, dir: "/", env: []string{"PATH=/usr/bin:/bin"}, argv: []string{c.Binary, "--socket", c.Nodes[0].Socket,
		"run", "-d", "--out", out, "--node", "2", "sh", "-c", "echo started; exec sleep 302"}})
	if o.code != 0 {
		t.Fatalf("run -d: %v", o)
	}
	cpid, err := strconv.ParseInt(strings.Fields(o.stdout)[0], 10, 64)
	if err != nil {
		t.Fatalf("run -d printed %q, not a cluster pid", o.stdout)
	}
	w, err := whereJSON(ctx, c, 2, cpid)
	if err != nil || w.Node != 2 || w.Command != "sleep 302" {
		t.Fatalf("where %d: %+v, %v", cpid, w, err)
	}
	err = c.WaitFor(ctx, "output in "+out, func() (bool, error) {
		b, err := os.ReadFile(out)
		return check(err == nil && string(b) == "started\n", "%q, %v", b, err)
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CLI(ctx, 1, "kill", "-KILL", strconv.FormatInt(cpid, 10)); err != nil {
		t.Fatal(err)
	}
	err = c.WaitFor(ctx, "the process to go", func() (bool, error) {
		_, err := whereJSON(ctx, c, 1, cpid)
		return err != nil, nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestRunNodeDeath: the executing node dies; once the grace (run_grace,
// 2 s here) has passed without it coming back, the deputy says the
// process is lost and exits 255.
func TestRunNodeDeath(t *testing.T) {
	c, ctx := startCluster(t, 3, "--allow-remote-root", "true", "--run-grace", "2s")
	d := startDeputy(t, c, 1, "ssi run --node 3 sleep 303")
	findRun(t, ctx, c, 1, "sleep 303")
	if err := c.KillNode(3); err != nil {
		t.Fatal(err)
	}
	if code := d.wait(t, 30*time.Second); code != 255 {
		t.Errorf("deputy exited %d, want 255", code)
	}
	if msg := d.stderr.String(); !strings.Contains(msg, "node 3 went down") || !strings.Contains(msg, "did not come back within 2s") ||
		!strings.Contains(msg, "lost") {
		t.Errorf("deputy said %q; want it to name node 3 going down, not back within the grace, and the process lost", msg)
	}
}

// TestRunOriginDeath: the home node dies; the remote process gets SIGHUP
// once the grace (2 s here) has passed, stays visible and signalable
// through the surrogate; when the home node returns it answers for the
// process again.
func TestRunOriginDeath(t *testing.T) {
	c, ctx := startCluster(t, 3, "--allow-remote-root", "true", "--run-grace", "2s")
	mark := filepath.Join(shortTemp(t), "hup")
	startDeputy(t, c, 1, fmt.Sprintf(`ssi run --node 2 sh -c 'trap "echo hup >%s" HUP; while :; do sleep 0.1; done' </dev/null`, mark))
	p := findRun(t, ctx, c, 3, fmt.Sprintf(`sh -c trap "echo hup >%s" HUP; while :; do sleep 0.1; done`, mark))
	if err := c.KillNode(1); err != nil {
		t.Fatal(err)
	}
	err := c.WaitFor(ctx, "SIGHUP to reach the remote process", func() (bool, error) {
		b, err := os.ReadFile(mark)
		return check(err == nil && string(b) == "hup\n", "%q, %v", b, err)
	})
	if err != nil {
		t.Fatal(err)
	}
	waitState(t, ctx, c, []int{2, 3}, "node1", api.StateDown)
	for _, from := range []int{2, 3} {
		w, err := whereJSON(ctx, c, from, p.CPID)
		if err != nil || w.Node != 2 || w.Pid != p.Pid {
			t.Fatalf("where from node %d with the origin down: %+v, %v", from, w, err)
		}
	}
	// The origin returns and takes the tracking back.
	if err := c.StartAgent(ctx, 1); err != nil {
		t.Fatal(err)
	}
	waitState(t, ctx, c, []int{1, 2, 3}, "node1", api.StateUp)
	err = c.WaitFor(ctx, "the returned origin to answer", func() (bool, error) {
		w, err := whereJSON(ctx, c, 1, p.CPID)
		if err != nil {
			return false, err
		}
		return check(w.Node == 2 && w.Pid == p.Pid, "%+v", w)
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CLI(ctx, 3, "kill", "-KILL", strconv.FormatInt(p.CPID, 10)); err != nil {
		t.Fatalf("kill through the returned origin: %v", err)
	}
}

// TestRunDeputyKilled: the deputy dies (kill -9): its command is hung up
// (SIGHUP), keeps running if it ignores that, stays listed and
// controllable by its cluster pid.
func TestRunDeputyKilled(t *testing.T) {
	c, ctx := startCluster(t, 2, "--allow-remote-root", "true")
	mark := filepath.Join(shortTemp(t), "hup")
	script := fmt.Sprintf(`trap "echo hup >%s" HUP; while :; do sleep 0.1; done`, mark)
	d := startDeputy(t, c, 1, fmt.Sprintf("exec ssi run --node 2 sh -c '%s' </dev/null", script))
	p := findRun(t, ctx, c, 1, "sh -c "+script)
	if err := d.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	// nsenter forked the deputy: kill the whole group, deputy included.
	syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
	err := c.WaitFor(ctx, "SIGHUP to reach the command", func() (bool, error) {
		b, err := os.ReadFile(mark)
		return check(err == nil && string(b) == "hup\n", "%q, %v", b, err)
	})
	if err != nil {
		t.Fatal(err)
	}
	w, err := whereJSON(ctx, c, 1, p.CPID)
	if err != nil || w.Node != 2 || w.Pid != p.Pid {
		t.Fatalf("where after the deputy died: %+v, %v", w, err)
	}
	if _, err := c.CLI(ctx, 1, "kill", "-KILL", strconv.FormatInt(p.CPID, 10)); err != nil {
		t.Fatalf("kill after the deputy died: %v", err)
	}
}
