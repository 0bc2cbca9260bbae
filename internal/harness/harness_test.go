package harness

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/ssi-cluster/ssi/internal/api"
)

var (
	buildOnce sync.Once
	binDir    string
	ssiBin    string
	buildErr  error
)

// TestMain lets the test binary stand in for the programs the plumbing
// tests put in nodes (see helper), and removes the ssi binary it built.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 {
		if code, ok := helper(os.Args[1], os.Args[2:]); ok {
			os.Exit(code)
		}
	}
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// helper runs the test binary as __nodeinit, as a stand-in agent that
// accepts TCP connections (__listen ADDR), or as a client of one
// (__dial ADDR: exit 0 if it connects within 300 ms).
func helper(name string, args []string) (int, bool) {
	switch name {
	case "__nodeinit":
		if err := NodeInit(args); err != nil {
			fmt.Fprintln(os.Stderr, "nodeinit:", err)
			return 1, true
		}
		return 0, true
	case "__listen":
		l, err := net.Listen("tcp", args[0])
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1, true
		}
		fmt.Fprintln(os.Stderr, "listening on", args[0])
		for {
			conn, err := l.Accept()
			if err != nil {
				return 1, true
			}
			conn.Close()
		}
	case "__dial":
		conn, err := net.DialTimeout("tcp", args[0], 300*time.Millisecond)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1, true
		}
		conn.Close()
		return 0, true
	case "init", "agent": // a harness given the test binary as ssi
		fmt.Fprintln(os.Stderr, "the test binary is not ssi")
		return 2, true
	}
	return 0, false
}

// ssiBinary builds the ssi binary once for the tests that run real agents.
func ssiBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		if binDir, buildErr = os.MkdirTemp("", "ssi-harness-test-"); buildErr == nil {
			ssiBin, buildErr = BuildBinary(context.Background(), binDir)
		}
	})
	if buildErr != nil {
		t.Fatalf("building the ssi binary: %v", buildErr)
	}
	return ssiBin
}

func needRoot(t *testing.T) {
	t.Helper()
	if !Root() {
		t.Skip("namespace mode needs root; run as root (CI does)")
	}
}

// start starts a cluster that Cleanup closes, checking that nothing of it
// is left behind.
func start(t *testing.T, ctx context.Context, o Options) *Cluster {
	t.Helper()
	if o.Log == nil {
		o.Log = testLog{t}
	}
	c, err := Start(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		checkGone(t, c)
	})
	return c
}

// checkGone fails t if anything of the closed cluster c is left.
func checkGone(t *testing.T, c *Cluster) {
	t.Helper()
	if names, err := clusterNetns(c.ID); err != nil || len(names) > 0 {
		t.Errorf("after Close, network namespaces %v are left (%v)", names, err)
	}
	if base, _, err := cgroupBase(); err == nil {
		if _, err := os.Stat(base + "/" + cgroupName(c.ID)); err == nil {
			t.Errorf("after Close, cgroup %s/%s is left", base, cgroupName(c.ID))
		}
	}
	for _, path := range []string{c.Dir, c.devFile} {
		if _, err := os.Stat(path); path != "" && err == nil {
			t.Errorf("after Close, %s is left", path)
		}
	}
	for i := range c.run {
		for _, p := range []*proc{c.run[i].init, c.run[i].agent} {
			if p != nil && alive(p.pid()) {
				t.Errorf("after Close, process %d of node %d is alive", p.pid(), i+1)
			}
		}
	}
}

// testLog sends the agents' output to the test log.
type testLog struct{ t *testing.T }

func (l testLog) Write(b []byte) (int, error) {
	l.t.Logf("%s", b)
	return len(b), nil
}

// nodeState is node j's state as node i's agent sees it.
func nodeState(ctx context.Context, c *Cluster, i, j int) (string, error) {
	nodes, err := c.ListNodes(ctx, i)
	if err != nil {
		return "", err
	}
	for _, n := range nodes {
		if n.Name == nodeName(j) {
			return n.State, nil
		}
	}
	return "", fmt.Errorf("node%d does not list node%d", i, j)
}

// waitState waits until node i's agent sees node j in state.
func waitState(t *testing.T, ctx context.Context, c *Cluster, i, j int, state string) {
	t.Helper()
	err := c.WaitFor(ctx, fmt.Sprintf("node%d to see node%d %s", i, j, state), func() (bool, error) {
		s, err := nodeState(ctx, c, i, j)
		return s == state, err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func testCluster(t *testing.T, namespaces bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	share := 0.0
	if Root() {
		share = 0.5 // cgroups need root too
	}
	c := start(t, ctx, Options{Nodes: 3, Binary: ssiBinary(t), Namespaces: namespaces, CPUShare: share})
	if err := c.WaitFormed(ctx); err != nil {
		t.Fatal(err)
	}
	out, err := c.CLI(ctx, 2, "cluster", "name", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var info api.Cluster
	if err := json.Unmarshal(out, &info); err != nil {
		t.Fatalf("cluster name -o json: %v: %s", err, out)
	}
	if info.Name != "dev" || info.Nodes != 3 {
		t.Errorf("cluster name -o json = %+v, want name dev and 3 nodes", info)
	}
	nodes, err := c.ListNodes(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		if n.Name != nodeName(n.Number) || n.Address != c.Nodes[n.Number-1].Addr {
			t.Errorf("node %d is %s at %s, want %s at %s", n.Number, n.Name, n.Address, nodeName(n.Number), c.Nodes[n.Number-1].Addr)
		}
	}

	if err := c.KillNode(3); err != nil {
		t.Fatal(err)
	}
	waitState(t, ctx, c, 1, 3, api.StateDown)
	if err := c.StartAgent(ctx, 3); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitFormed(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.StopAgent(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if err := c.StartAgent(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitFormed(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.KillAgent(1); err != nil {
		t.Fatal(err)
	}
	waitState(t, ctx, c, 2, 1, api.StateDown)
	if err := c.StartAgent(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitFormed(ctx); err != nil {
		t.Fatal(err)
	}
	if !namespaces {
		if err := c.Isolate(2); !errors.Is(err, ErrNeedNamespaces) {
			t.Errorf("Isolate in loopback mode = %v, want ErrNeedNamespaces", err)
		}
		return
	}
	if err := c.Isolate(3); err != nil {
		t.Fatal(err)
	}
	waitState(t, ctx, c, 1, 3, api.StateDown)
	if err := c.Heal(3); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitFormed(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Partition([]int{1}); err != nil {
		t.Fatal(err)
	}
	waitState(t, ctx, c, 2, 1, api.StateDown)
	if err := c.HealAll(); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitFormed(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestLoopbackCluster(t *testing.T) { testCluster(t, false) }

func TestNamespaceCluster(t *testing.T) {
	needRoot(t)
	testCluster(t, true)
}
