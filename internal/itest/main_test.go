package itest

import (
	"context"
	"fmt"
	"os"
	"reflect"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/ssi-cluster/ssi/internal/api"
	"github.com/ssi-cluster/ssi/internal/harness"
)

// binary is the ssi binary built once for every test.
var binary string

func TestMain(m *testing.M) {
	// This binary run again as an attacker (localapi_test.go).
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(runHelper(mode))
	}
	// Inherited descriptors go to no node: a stray pipe in a process
	// would keep it from migrating.
	ents, _ := os.ReadDir("/proc/self/fd")
	for _, e := range ents {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd > 2 {
			syscall.CloseOnExec(fd)
		}
	}
	dir, err := os.MkdirTemp("", "ssi-itest-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// Other users run the binary in some tests.
	if err := os.Chmod(dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	binary, err = harness.BuildBinary(ctx, dir)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "building ssi:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// needRoot skips a test that needs namespace mode.
func needRoot(t *testing.T) {
	t.Helper()
	if !harness.Root() {
		t.Skip("multi-node namespace clusters need root (CI runs as root); skipping")
	}
}

// startCluster starts an n-node namespace cluster, waits until it is formed
// and closes it at the end of the test.
func startCluster(t *testing.T, n int, args ...string) (*harness.Cluster, context.Context) {
	t.Helper()
	needRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	c, err := harness.Start(ctx, harness.Options{Nodes: n, Binary: binary, Namespaces: true, AgentArgs: args})
	if err != nil {
		t.Fatalf("start %d-node cluster: %v", n, err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, nd := range c.Nodes {
				b, _ := os.ReadFile(nd.Log)
				if len(b) > 6000 {
					b = b[len(b)-6000:]
				}
				t.Logf("---- %s log (end) ----\n%s", nd.Name, b)
			}
		}
		if err := c.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	if err := c.WaitFormed(ctx); err != nil {
		t.Fatalf("cluster did not form: %v", err)
	}
	return c, ctx
}

// registryView is the agreed part of `ssi nodes`: what must be identical on
// every node (load figures are gossiped and may differ).
type registryView struct {
	Number      int
	ID, Name    string
	Address     string
	State       string
	Incarnation uint64
	Epoch       uint64
}

func agreed(nodes []api.Node) []registryView {
	out := make([]registryView, len(nodes))
	for i, n := range nodes {
		out[i] = registryView{n.Number, n.ID, n.Name, n.Address, n.State, n.Incarnation, n.Epoch}
	}
	return out
}

// nodeState returns the committed state of the node named name as node i sees it.
func nodeState(ctx context.Context, c *harness.Cluster, i int, name string) (api.Node, error) {
	nodes, err := c.ListNodes(ctx, i)
	if err != nil {
		return api.Node{}, err
	}
	for _, n := range nodes {
		if n.Name == name {
			return n, nil
		}
	}
	return api.Node{}, fmt.Errorf("node %d does not list %s", i, name)
}

// waitState waits until every node in observers sees name in state want.
func waitState(t *testing.T, ctx context.Context, c *harness.Cluster, observers []int, name, want string) {
	t.Helper()
	for _, i := range observers {
		err := c.WaitFor(ctx, fmt.Sprintf("node %d to see %s %s", i, name, want), func() (bool, error) {
			n, err := nodeState(ctx, c, i, name)
			if err != nil {
				return false, err
			}
			return check(n.State == want, "%s is %s", name, n.State)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// waitMember waits until node i says it is a member of the cluster (or,
// with want false, that it fenced itself).
func waitMember(t *testing.T, ctx context.Context, c *harness.Cluster, i int, want bool) {
	t.Helper()
	cl, err := c.Client(i)
	if err != nil {
		t.Fatal(err)
	}
	what := map[bool]string{true: "to be a member", false: "to fence itself"}[want]
	err = c.WaitFor(ctx, fmt.Sprintf("node %d %s", i, what), func() (bool, error) {
		self, err := cl.Self(ctx)
		if err != nil {
			return false, err
		}
		return check(self.Member == want, "member=%v, fenced: %q", self.Member, self.Fenced)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// sameEverywhere waits until `ssi nodes` (agreed part) and the transition
// lists are identical on the given nodes.
func sameEverywhere(t *testing.T, ctx context.Context, c *harness.Cluster, nodes []int) {
	t.Helper()
	err := c.WaitFor(ctx, "every node to agree on nodes and transitions", func() (bool, error) {
		var first []registryView
		var firstT []api.Transition
		for k, i := range nodes {
			ns, err := c.ListNodes(ctx, i)
			if err != nil {
				return false, err
			}
			cl, err := c.Client(i)
			if err != nil {
				return false, err
			}
			ts, err := cl.Transitions(ctx, 0, false)
			if err != nil {
				return false, err
			}
			for j := range ts {
				ts[j].Seen = time.Time{}
			}
			if k == 0 {
				first, firstT = agreed(ns), ts
				continue
			}
			if !reflect.DeepEqual(first, agreed(ns)) {
				return false, fmt.Errorf("node %d lists %+v, node %d lists %+v", nodes[0], first, i, agreed(ns))
			}
			if !reflect.DeepEqual(firstT, ts) {
				return false, fmt.Errorf("node %d has %d transitions, node %d has %d (or they differ)", nodes[0], len(firstT), i, len(ts))
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// masterOf returns the index of the node that is master, as node i sees it.
func masterOf(ctx context.Context, c *harness.Cluster, i int) (int, error) {
	cl, err := c.ClusterInfo(ctx, i)
	if err != nil {
		return 0, err
	}
	if cl.Master == 0 {
		return 0, fmt.Errorf("node %d knows no master", i)
	}
	nodes, err := c.ListNodes(ctx, i)
	if err != nil {
		return 0, err
	}
	for _, n := range nodes {
		if n.Number == cl.Master {
			return indexOf(c, n.Name), nil
		}
	}
	return 0, fmt.Errorf("master %d not listed", cl.Master)
}

func indexOf(c *harness.Cluster, name string) int {
	for _, n := range c.Nodes {
		if n.Name == name {
			return n.Index
		}
	}
	return 0
}

func others(c *harness.Cluster, except ...int) []int {
	var out []int
outer:
	for _, n := range c.Nodes {
		for _, e := range except {
			if n.Index == e {
				continue outer
			}
		}
		out = append(out, n.Index)
	}
	return out
}

// check turns a condition into WaitFor's answer: the error says why it is
// not met yet.
func check(ok bool, format string, args ...any) (bool, error) {
	if ok {
		return true, nil
	}
	return false, fmt.Errorf(format, args...)
}
