package itest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ssi-cluster/ssi/internal/api"
	"github.com/ssi-cluster/ssi/internal/harness"
	"github.com/ssi-cluster/ssi/internal/pki"
)

// The partition tests cut a node off for longer than voter_replace_after
// (5 s here, so that the master removes a cut voter from raft), and 10 s
// more (the leader's last try to tell a removed server of its removal has
// given up by then), heal, and wait for the node to come back by itself.
// SSI_HEAL_CUT (a duration) sets those 10 s, and SSI_HEAL_REPLACE_AFTER
// sets voter_replace_after ("default": the agent's default), for runs by
// hand with real figures (docs/design.md, "Partitions heal").

func healArgs(t *testing.T, extra ...string) (args []string, cut time.Duration) {
	replace, cut := "5s", 10*time.Second
	if s := os.Getenv("SSI_HEAL_REPLACE_AFTER"); s != "" {
		replace = s
	}
	if replace != "default" {
		args = append(args, "--voter-replace-after", replace)
	}
	if s := os.Getenv("SSI_HEAL_CUT"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("SSI_HEAL_CUT: %v", err)
		}
		cut = d
	}
	return append(args, extra...), cut
}

// phase is a context for one step of a long test (startCluster's context
// covers three minutes in all).
func phase(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func nodeOf(t *testing.T, ctx context.Context, c *harness.Cluster, from, i int) api.Node {
	t.Helper()
	n, err := nodeState(ctx, c, from, c.Nodes[i-1].Name)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// cutAndHeal isolates node victim until the others see it down and out of
// raft (or, for a node that does not vote, down), keeps it cut off for cut
// more, heals, and checks that it comes back by itself: up on every node,
// a member again, its process running on with the same cluster pid, and
// reachable by ssi run. during, if not nil, runs while the node is cut off
// and returns the nodes it took out of the cluster. cutAndHeal returns
// whether the node votes again.
func cutAndHeal(t *testing.T, c *harness.Cluster, victim int, cut time.Duration, during func() []int) bool {
	t.Helper()
	ctx := phase(t, 3*time.Minute)
	survivors := others(c, victim)
	name := c.Nodes[victim-1].Name
	pid := startNative(t, c, victim, "", "setsid sleep 3600 </dev/null >/dev/null 2>&1", nil)
	cpid := int64(victim)<<22 | int64(pid)
	stillRuns(t, ctx, c, cpid, victim, pid)
	before := nodeOf(t, ctx, c, survivors[0], victim)

	start := time.Now()
	if err := c.Isolate(victim); err != nil {
		t.Fatal(err)
	}
	waitState(t, ctx, c, survivors, name, api.StateDown)
	if before.Voter {
		err := c.WaitFor(ctx, name+" out of the voters", func() (bool, error) {
			n, err := nodeState(ctx, c, survivors[0], name)
			return check(err == nil && !n.Voter, "%s votes (%v)", name, err)
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: down and no longer a voter %.1f s after the cut", name, time.Since(start).Seconds())
	}
	waitMember(t, ctx, c, victim, false)
	if o := ssiAs(t, c, victim, "", "nodes"); o.code != 0 || !strings.Contains(o.stderr, "is fenced: no contact with a master since") {
		t.Errorf("ssi nodes on node %d, cut off: %v; want a word that it is fenced", victim, o)
	}
	var gone []int
	if during != nil {
		gone = during()
	}
	time.Sleep(cut)
	cutFor := time.Since(start)
	if err := c.Heal(victim); err != nil {
		t.Fatal(err)
	}
	healed := time.Now()

	ctx = phase(t, 3*time.Minute)
	survivors = others(c, append(gone, victim)...)
	all := others(c, gone...)
	waitState(t, ctx, c, all, name, api.StateUp)
	waitMember(t, ctx, c, victim, true)
	t.Logf("%s: cut off for %.1f s, a member again %.1f s after the heal", name, cutFor.Seconds(), time.Since(healed).Seconds())
	after := nodeOf(t, ctx, c, survivors[0], victim)
	if after.Number != before.Number || after.Incarnation <= before.Incarnation {
		t.Errorf("%s came back as node %d incarnation %d; was node %d incarnation %d, want the same number and a new incarnation",
			name, after.Number, after.Incarnation, before.Number, before.Incarnation)
	}
	if o := ssiAs(t, c, victim, "", "nodes"); o.code != 0 || o.stderr != "" {
		t.Errorf("ssi nodes on node %d, back: %v", victim, o)
	}
	stillRuns(t, ctx, c, cpid, victim, pid)
	for _, from := range all {
		if w, err := whereJSON(ctx, c, from, cpid); err != nil || w.Node != victim || w.Pid != pid {
			t.Errorf("where %d from node %d: %+v, %v; want node %d pid %d", cpid, from, w, err, victim, pid)
		}
	}
	for _, from := range survivors {
		if o := ssiAs(t, c, from, "", "run", "--node", strconv.Itoa(victim), "true"); o.code != 0 {
			t.Errorf("ssi run --node %d true from node %d: %v", victim, from, o)
		}
	}
	sameEverywhere(t, ctx, c, all)
	return after.Voter
}

// waitVoter waits until node from sees node i vote (or not).
func waitVoter(t *testing.T, c *harness.Cluster, from, i int, want bool) {
	t.Helper()
	ctx := phase(t, time.Minute)
	name := c.Nodes[i-1].Name
	err := c.WaitFor(ctx, fmt.Sprintf("%s voter=%v", name, want), func() (bool, error) {
		n, err := nodeState(ctx, c, from, name)
		return check(err == nil && n.Voter == want, "%s voter=%v (%v)", name, n.Voter, err)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestPartitionHeals: in a 3-node cluster (all voters, max_voters 5), a
// voter cut off long enough to be removed from raft, and then the master
// likewise, each come back by themselves after the heal, vote again (the
// cluster has fewer voters than it wants), and keep their processes.
func TestPartitionHeals(t *testing.T) {
	args, cut := healArgs(t, "--allow-remote-root", "true")
	c, ctx := startCluster(t, 3, args...)
	master, err := masterOf(ctx, c, 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("voter", func(t *testing.T) {
		victim := 3
		if victim == master {
			victim = 2
		}
		cutAndHeal(t, c, victim, cut, nil)
		waitVoter(t, c, master, victim, true)
	})
	t.Run("master", func(t *testing.T) {
		master, err := masterOf(phase(t, time.Minute), c, 1)
		if err != nil {
			t.Fatal(err)
		}
		cutAndHeal(t, c, master, cut, nil)
		waitVoter(t, c, others(c, master)[0], master, true)
	})
}

// TestPartitionHealsNonvoter: in a 4-node cluster with max_voters 3, a
// voter cut off is replaced by the fourth node; back, it stays a non-voter
// (the cluster has its three voters). A non-voter cut off comes back as a
// non-voter.
func TestPartitionHealsNonvoter(t *testing.T) {
	args, cut := healArgs(t, "--allow-remote-root", "true", "--max-voters", "3")
	c, ctx := startCluster(t, 4, args...)
	nonvoter := 0
	err := c.WaitFor(ctx, "three voters", func() (bool, error) {
		nodes, err := c.ListNodes(ctx, 1)
		if err != nil {
			return false, err
		}
		voters := 0
		for _, n := range nodes {
			if n.Voter {
				voters++
			} else {
				nonvoter = indexOf(c, n.Name)
			}
		}
		return check(voters == 3, "%d voters", voters)
	})
	if err != nil {
		t.Fatal(err)
	}
	master, err := masterOf(ctx, c, 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("replaced voter", func(t *testing.T) {
		victim := 1
		for victim == master || victim == nonvoter {
			victim++
		}
		if cutAndHeal(t, c, victim, cut, nil) {
			t.Errorf("node %d votes again; the cluster had its three voters", victim)
		}
		waitVoter(t, c, master, nonvoter, true)
		nonvoter = victim
	})
	t.Run("non-voter", func(t *testing.T) {
		if cutAndHeal(t, c, nonvoter, cut, nil) {
			t.Errorf("node %d votes; the cluster had its three voters", nonvoter)
		}
	})
}

// TestPartitionHealsMember: a member (admitted with a member token: it
// never votes) cut off comes back by itself, a member again.
func TestPartitionHealsMember(t *testing.T) {
	args, cut := healArgs(t, "--allow-remote-root", "true")
	c, _ := clusterWith(t, harness.Options{Nodes: 3, Members: true, Namespaces: true, AgentArgs: args})
	if cutAndHeal(t, c, 3, cut, nil) {
		t.Errorf("member node 3 votes")
	}
}

// TestPartitionHealsNewGossipKey: while a voter is cut off (and out of
// raft), another node is removed for good, so the gossip key changes: the
// cut-off node's gossip is unreadable when the network returns. The master
// finds it back over mutual TLS, the node receives the log and the new key,
// and comes back.
func TestPartitionHealsNewGossipKey(t *testing.T) {
	args, cut := healArgs(t, "--allow-remote-root", "true")
	// The others forget the old key 20 s after they take the new one
	// (agent.keyDropDelay): heal after that.
	cut = max(cut, 25*time.Second)
	c, ctx := startCluster(t, 4, args...)
	master, err := masterOf(ctx, c, 1)
	if err != nil {
		t.Fatal(err)
	}
	rest := others(c, master)
	victim, removed := rest[0], rest[1]
	keyFile := filepath.Join(c.Nodes[master-1].StateDir, pki.GossipKeyFile)
	old, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	cutAndHeal(t, c, victim, cut, func() []int {
		ctx := phase(t, time.Minute)
		if err := c.KillNode(removed); err != nil {
			t.Fatal(err)
		}
		cl, err := c.Client(master)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cl.RemoveNode(ctx, removed); err != nil {
			t.Fatalf("node remove %d: %v", removed, err)
		}
		err = c.WaitFor(ctx, "the new gossip key", func() (bool, error) {
			k, err := os.ReadFile(keyFile)
			return err == nil && !bytes.Equal(k, old), err
		})
		if err != nil {
			t.Fatal(err)
		}
		return []int{removed}
	})
}
