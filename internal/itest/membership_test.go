package itest

import (
	"fmt"
	"testing"

	"github.com/ssi-cluster/ssi/internal/api"
)

// TestFormation: 3 and 5 nodes form one cluster; `ssi nodes` and the
// transitions are identical on every node; numbers are 1..N, unique.
func TestFormation(t *testing.T) {
	for _, n := range []int{3, 5} {
		t.Run(fmt.Sprintf("%d nodes", n), func(t *testing.T) {
			c, ctx := startCluster(t, n)
			sameEverywhere(t, ctx, c, others(c))
			nodes, err := c.ListNodes(ctx, 1)
			if err != nil {
				t.Fatal(err)
			}
			seen := map[int]bool{}
			for _, nd := range nodes {
				if nd.Number < 1 || nd.Number > n || seen[nd.Number] {
					t.Errorf("bad or duplicate node number %d", nd.Number)
				}
				seen[nd.Number] = true
				if nd.State != api.StateUp {
					t.Errorf("%s is %s", nd.Name, nd.State)
				}
			}
			out, err := c.CLI(ctx, n, "cluster", "name")
			if err != nil || string(out) != "dev\n" {
				t.Errorf("cluster name from node %d = %q, %v", n, out, err)
			}
		})
	}
}

// TestKillAndReturn: kill -9 of a node gives a committed down transition on
// every survivor; its restart keeps its number and commits a return.
func TestKillAndReturn(t *testing.T) {
	c, ctx := startCluster(t, 3)
	victim := 3
	if m, err := masterOf(ctx, c, 1); err == nil && m == victim {
		victim = 2
	}
	name := c.Nodes[victim-1].Name
	before, err := nodeState(ctx, c, 1, name)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.KillNode(victim); err != nil {
		t.Fatal(err)
	}
	survivors := others(c, victim)
	waitState(t, ctx, c, survivors, name, api.StateDown)
	sameEverywhere(t, ctx, c, survivors)

	if err := c.StartAgent(ctx, victim); err != nil {
		t.Fatal(err)
	}
	waitState(t, ctx, c, others(c), name, api.StateUp)
	after, err := nodeState(ctx, c, victim, name)
	if err != nil {
		t.Fatal(err)
	}
	if after.Number != before.Number {
		t.Errorf("%s came back as node %d, was %d", name, after.Number, before.Number)
	}
	if after.Incarnation <= before.Incarnation {
		t.Errorf("incarnation %d after restart, %d before", after.Incarnation, before.Incarnation)
	}
	sameEverywhere(t, ctx, c, others(c))
	cl, err := c.Client(1)
	if err != nil {
		t.Fatal(err)
	}
	ts, err := cl.Transitions(ctx, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, tr := range ts {
		if tr.Name == name {
			kinds = append(kinds, tr.Kind)
		}
	}
	if want := []string{api.KindJoin, api.KindDown, api.KindReturn}; fmt.Sprint(kinds) != fmt.Sprint(want) {
		t.Errorf("transitions of %s: %v, want %v", name, kinds, want)
	}
}

// TestMasterFailover: kill the master; a new master is elected, the old one
// is marked down, and later transitions still commit.
func TestMasterFailover(t *testing.T) {
	c, ctx := startCluster(t, 5)
	master, err := masterOf(ctx, c, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.KillNode(master); err != nil {
		t.Fatal(err)
	}
	survivors := others(c, master)
	waitState(t, ctx, c, survivors, c.Nodes[master-1].Name, api.StateDown)
	newMaster, err := masterOf(ctx, c, survivors[0])
	if err != nil {
		t.Fatal(err)
	}
	if newMaster == master {
		t.Fatalf("master is still node %d", master)
	}
	// Transitions keep flowing: kill another (non-master) node.
	victim := survivors[len(survivors)-1]
	if victim == newMaster {
		victim = survivors[len(survivors)-2]
	}
	if err := c.KillNode(victim); err != nil {
		t.Fatal(err)
	}
	rest := others(c, master, victim)
	waitState(t, ctx, c, rest, c.Nodes[victim-1].Name, api.StateDown)
	sameEverywhere(t, ctx, c, rest)
}

// TestMinorityPartition: a minority commits nothing and fences itself; the
// majority marks it down; after healing it rejoins as a new incarnation.
func TestMinorityPartition(t *testing.T) {
	c, ctx := startCluster(t, 5)
	// Keep the master in the majority so the test is about the minority.
	master, err := masterOf(ctx, c, 1)
	if err != nil {
		t.Fatal(err)
	}
	var minority []int
	for _, i := range []int{5, 4, 3, 2, 1} {
		if i != master && len(minority) < 2 {
			minority = append(minority, i)
		}
	}
	majority := others(c, minority...)
	epochs := map[int]uint64{}
	for _, i := range minority {
		cl, err := c.ClusterInfo(ctx, i)
		if err != nil {
			t.Fatal(err)
		}
		epochs[i] = cl.Epoch
	}
	if err := c.Partition(minority); err != nil {
		t.Fatal(err)
	}
	for _, i := range minority {
		waitState(t, ctx, c, majority, c.Nodes[i-1].Name, api.StateDown)
	}
	sameEverywhere(t, ctx, c, majority)
	for _, i := range minority {
		waitMember(t, ctx, c, i, false)
		info, err := c.ClusterInfo(ctx, i)
		if err != nil {
			t.Fatal(err)
		}
		if info.Epoch != epochs[i] {
			t.Errorf("minority node %d committed epochs %d..%d while partitioned", i, epochs[i], info.Epoch)
		}
	}
	if err := c.HealAll(); err != nil {
		t.Fatal(err)
	}
	for _, i := range minority {
		waitState(t, ctx, c, others(c), c.Nodes[i-1].Name, api.StateUp)
	}
	for _, i := range minority {
		waitMember(t, ctx, c, i, true)
	}
	sameEverywhere(t, ctx, c, others(c))
}
