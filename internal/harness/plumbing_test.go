package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Tests of the harness's own plumbing, with the test binary standing in for
// the agent (a TCP listener on the node's address) and for __nodeinit.

// syncBuffer is a Log that the test reads while nodes write to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func startPlumbing(t *testing.T, ctx context.Context, o Options) (*Cluster, *syncBuffer) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	log := new(syncBuffer)
	o.Binary, o.Log = self, log
	o.testAgent = func(n *Node) []string { return []string{self, "__listen", n.Addr + ":7946"} }
	return start(t, ctx, o), log
}

// dial reports whether node from reaches node to's stand-in agent.
func dial(c *Cluster, from, to int) error {
	out, err := c.Command(from, c.Binary, "__dial", c.Nodes[to-1].Addr+":7946").CombinedOutput()
	if err != nil {
		return fmt.Errorf("node%d cannot reach node%d: %v: %s", from, to, err, bytes.TrimSpace(out))
	}
	return nil
}

func wantReach(t *testing.T, ctx context.Context, c *Cluster, from, to int) {
	t.Helper()
	what := fmt.Sprintf("node%d to reach node%d", from, to)
	if err := c.WaitFor(ctx, what, func() (bool, error) { return true, dial(c, from, to) }); err != nil {
		t.Fatal(err)
	}
}

func wantCut(t *testing.T, c *Cluster, from, to int) {
	t.Helper()
	if dial(c, from, to) == nil {
		t.Fatalf("node%d reaches node%d, want it cut off", from, to)
	}
}

func output(t *testing.T, c *Cluster, i int, name string, args ...string) string {
	t.Helper()
	out, err := c.Command(i, name, args...).Output()
	if err != nil {
		t.Fatalf("node%d: %s %v: %v", i, name, args, err)
	}
	return strings.TrimSpace(string(out))
}

func TestNamespacePlumbing(t *testing.T) {
	needRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, log := startPlumbing(t, ctx, Options{Nodes: 3, Namespaces: true, CPUShare: 0.5})

	for _, n := range c.Nodes {
		if got := output(t, c, n.Index, "hostname"); got != n.Name {
			t.Errorf("hostname in %s = %q", n.Name, got)
		}
	}
	// The node's /proc shows the node's processes only: its init as pid 1,
	// the stand-in agent, and the shell with its commands.
	ps := output(t, c, 2, "sh", "-c", `tr '\0' ' ' </proc/1/cmdline; echo; ls /proc | grep -c '^[0-9]'`)
	lines := strings.Split(ps, "\n")
	if !strings.Contains(lines[0], "__nodeinit --hostname node2") {
		t.Errorf("pid 1 of node2 is %q, want __nodeinit", lines[0])
	}
	if len(lines) != 2 || len(lines[1]) != 1 || lines[1] > "6" {
		t.Errorf("node2's /proc lists %q processes, want its own few", lines[1:])
	}
	pid, err := c.AgentPID(2)
	if err != nil {
		t.Fatal(err)
	}
	if cg, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid)); !bytes.Contains(cg, []byte("/ssi-"+c.ID+"/node2\n")) {
		t.Errorf("node2's agent is in cgroups\n%s\nwant ssi-%s/node2", cg, c.ID)
	}
	wantReach(t, ctx, c, 1, 2)
	t.Setenv("SSI_DEV_FILE", filepath.Join(t.TempDir(), "dev.json"))
	if _, err := c.WriteDevFile(); err != nil {
		t.Fatal(err)
	}
	d, err := LookupDev()
	if err != nil {
		t.Fatal(err)
	}
	sh, err := d.Shell(3)
	if err != nil {
		t.Fatal(err)
	}
	sh.Stdin = strings.NewReader(`echo "$(hostname) $SSI_SOCKET"`)
	if out, err := sh.Output(); err != nil || strings.TrimSpace(string(out)) != "node3 "+c.Nodes[2].Socket {
		t.Errorf("dev shell 3 says %q (%v), want node3 and its socket", out, err)
	}
	if !strings.Contains(log.String(), "node 2: listening on "+c.Nodes[1].Addr) {
		t.Errorf("Log lacks node 2's line; it has:\n%s", log)
	}

	if err := c.Isolate(2); err != nil {
		t.Fatal(err)
	}
	wantCut(t, c, 1, 2)
	wantCut(t, c, 2, 3)
	if err := c.Heal(2); err != nil {
		t.Fatal(err)
	}
	wantReach(t, ctx, c, 1, 2)

	if err := c.Partition([]int{1}); err != nil {
		t.Fatal(err)
	}
	wantCut(t, c, 1, 2)
	wantCut(t, c, 3, 1)
	wantReach(t, ctx, c, 2, 3)
	if err := c.HealAll(); err != nil {
		t.Fatal(err)
	}
	wantReach(t, ctx, c, 1, 2)

	if err := c.LinkDown(3); err != nil {
		t.Fatal(err)
	}
	wantCut(t, c, 1, 3)
	if err := c.LinkUp(3); err != nil {
		t.Fatal(err)
	}
	wantReach(t, ctx, c, 1, 3)

	// An agent's death leaves the rest of the node running; the node's
	// death takes everything.
	sleeper := c.Command(2, "sleep", "600")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	slept := make(chan error, 1)
	go func() { slept <- sleeper.Wait() }()
	if err := c.KillAgent(2); err != nil {
		t.Fatal(err)
	}
	if c.KilledAt(2).IsZero() {
		t.Error("KilledAt(2) is zero after KillAgent")
	}
	select {
	case err := <-slept:
		t.Fatalf("a process of node2 died with its agent: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	if err := c.KillNode(2); err != nil {
		t.Fatal(err)
	}
	select {
	case <-slept:
	case <-time.After(5 * time.Second):
		t.Fatal("a process of node2 survived KillNode")
	}
	if err := c.Command(2, "true").Run(); err == nil {
		t.Error("a command ran in node2 after KillNode")
	}
	if err := c.StartAgent(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if got := output(t, c, 2, "hostname"); got != "node2" {
		t.Errorf("hostname in rebooted node2 = %q", got)
	}
	wantReach(t, ctx, c, 3, 2)
	if err := c.StopAgent(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AgentPID(2); err == nil {
		t.Error("node2's agent runs after StopAgent")
	}
}

func TestSweep(t *testing.T) {
	needRoot(t)
	id := "zz" + randomID()
	hub, n1 := hubNetns(id), nodeNetns(id, 1)
	for _, ns := range []string{hub, n1} {
		if err := ip(context.Background(), "netns", "add", ns); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { deleteNetns(n1, hub) })
	busy := exec.Command("ip", "netns", "exec", n1, "sleep", "600")
	if err := busy.Start(); err != nil {
		t.Fatal(err)
	}
	// ip netns exec enters the namespace a moment after it starts: wait
	// until the namespace holds the process, or the sweep rightly sees it idle.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if held, err := netnsBusy(n1); err == nil && held {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the sleep never entered the namespace")
		}
	}
	if err := sweepCluster(id); err != nil {
		t.Fatal(err)
	}
	if names, _ := clusterNetns(id); len(names) != 2 {
		t.Fatalf("sweepCluster deleted namespaces that held a process: %v left", names)
	}
	busy.Process.Kill()
	busy.Wait()
	if err := sweepCluster(id); err != nil {
		t.Fatal(err)
	}
	if names, _ := clusterNetns(id); len(names) > 0 {
		t.Errorf("sweepCluster left %v", names)
	}
}

func TestLoopbackPlumbing(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, _ := startPlumbing(t, ctx, Options{Nodes: 2})
	wantReach(t, ctx, c, 1, 2)
	if err := c.Partition([]int{1}); !errors.Is(err, ErrNeedNamespaces) {
		t.Errorf("Partition in loopback mode = %v, want ErrNeedNamespaces", err)
	}
	if err := c.LinkDown(1); !errors.Is(err, ErrNeedNamespaces) {
		t.Errorf("LinkDown in loopback mode = %v, want ErrNeedNamespaces", err)
	}
	if err := c.KillNode(2); err != nil {
		t.Fatal(err)
	}
	wantCut(t, c, 1, 2)
	if err := c.StartAgent(ctx, 2); err != nil {
		t.Fatal(err)
	}
	wantReach(t, ctx, c, 1, 2)
	sh := c.Shell(1)
	sh.Stdin = strings.NewReader(`echo "$SSI_SOCKET"`)
	out, err := sh.Output()
	if err != nil || strings.TrimSpace(string(out)) != c.Nodes[0].Socket {
		t.Errorf("SSI_SOCKET in node1's shell = %q (%v), want %s", out, err, c.Nodes[0].Socket)
	}
}

func TestStartFailureCleansUp(t *testing.T) {
	dir := t.TempDir()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// The test binary is no ssi: `ssi init` fails in it.
	o := Options{Nodes: 2, Binary: self, Dir: dir + "/c", Namespaces: Root(), ID: "zz" + randomID()}
	if _, err := Start(ctx, o); err == nil {
		t.Fatal("Start with a binary that is not ssi succeeded")
	}
	if names, _ := clusterNetns(o.ID); len(names) > 0 {
		t.Errorf("failed Start left namespaces %v", names)
	}
}
