package itest

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/ssi-cluster/ssi/internal/api"
	"github.com/ssi-cluster/ssi/internal/harness"
)

// TestCrashSeenByPresence: an agent that dies closes its presence stream to
// the master, which commits it down on that word (after its Ping is
// refused) rather than gossip's; a dead master's is taken up by a voter
// that stands for election at once, and the new master commits the old
// one down the same way. A node that falls silent without dying is still
// found by gossip's probes.
func TestCrashSeenByPresence(t *testing.T) {
	c, ctx := startCluster(t, 3)
	const byPresence, byGossip = "its connection to the master closed", "failure detected"
	master, err := masterOf(ctx, c, 1)
	if err != nil {
		t.Fatal(err)
	}
	follower := 3
	if follower == master {
		follower = 2
	}

	// A follower's agent is killed, once its stream is open.
	waitLinked(t, ctx, c, follower)
	if err := c.KillAgent(follower); err != nil {
		t.Fatal(err)
	}
	waitState(t, ctx, c, others(c, follower), c.Nodes[follower-1].Name, api.StateDown)
	checkDownReason(t, ctx, c, master, follower, byPresence)
	if err := c.StartAgent(ctx, follower); err != nil {
		t.Fatal(err)
	}
	waitState(t, ctx, c, others(c), c.Nodes[follower-1].Name, api.StateUp)

	// The master's agent is killed, once the others' streams are open.
	for _, i := range others(c, master) {
		waitLinked(t, ctx, c, i)
	}
	if err := c.KillAgent(master); err != nil {
		t.Fatal(err)
	}
	survivors := others(c, master)
	waitState(t, ctx, c, survivors, c.Nodes[master-1].Name, api.StateDown)
	checkDownReason(t, ctx, c, survivors[0], master, byPresence)
	if err := c.StartAgent(ctx, master); err != nil {
		t.Fatal(err)
	}
	waitState(t, ctx, c, others(c), c.Nodes[master-1].Name, api.StateUp)

	// A node whose agent hangs keeps its connections open: gossip finds it.
	now, err := masterOf(ctx, c, 1)
	if err != nil {
		t.Fatal(err)
	}
	silent := 1
	for silent == now {
		silent++
	}
	if err := c.PauseAgent(silent); err != nil {
		t.Fatal(err)
	}
	waitState(t, ctx, c, others(c, silent), c.Nodes[silent-1].Name, api.StateDown)
	checkDownReason(t, ctx, c, now, silent, byGossip)
	if err := c.ResumeAgent(silent); err != nil {
		t.Fatal(err)
	}
	waitState(t, ctx, c, others(c), c.Nodes[silent-1].Name, api.StateUp)
	sameEverywhere(t, ctx, c, others(c))
}

// waitLinked waits until node i's presence stream to the master is open.
func waitLinked(t *testing.T, ctx context.Context, c *harness.Cluster, i int) {
	t.Helper()
	err := c.WaitFor(ctx, fmt.Sprintf("node %d's presence stream to the master", i), func() (bool, error) {
		cl, err := c.Client(i)
		if err != nil {
			return false, err
		}
		m, err := cl.Metrics(ctx)
		return err == nil && strings.Contains(m, "\nssi_master_link 1\n"), nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// checkDownReason checks the reason of node victim's last down transition
// as node observer lists it.
func checkDownReason(t *testing.T, ctx context.Context, c *harness.Cluster, observer, victim int, want string) {
	t.Helper()
	cl, err := c.Client(observer)
	if err != nil {
		t.Fatal(err)
	}
	ts, err := cl.Transitions(ctx, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	got := ""
	for _, tr := range ts {
		if tr.Name == c.Nodes[victim-1].Name && tr.Kind == api.KindDown {
			got = tr.Reason
		}
	}
	if got != want {
		t.Errorf("node %d's down: reason %q, want %q", victim, got, want)
	}
}
