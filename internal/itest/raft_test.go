package itest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ssi-cluster/ssi/internal/api"
	"github.com/ssi-cluster/ssi/internal/client"
	"github.com/ssi-cluster/ssi/internal/pki"
)

// voters returns the numbers of the raft voters in a node list.
func voters(nodes []api.Node) (out []int) {
	for _, n := range nodes {
		if n.Voter {
			out = append(out, n.Number)
		}
	}
	return out
}

// TestVoterReplaced: 7 nodes, 5 of them voters. A voter down longer than
// voter_replace_after leaves the voters and a non-voter takes its seat, as
// Consul's autopilot does; when it returns it is a member again.
func TestVoterReplaced(t *testing.T) {
	c, ctx := startCluster(t, 7, "--voter-replace-after", "2s")
	nodes, err := c.ListNodes(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if v := voters(nodes); len(v) != 5 {
		t.Fatalf("voters %v, want 5 of 7", v)
	}
	master, err := masterOf(ctx, c, 1)
	if err != nil {
		t.Fatal(err)
	}
	victim := 0
	for _, n := range nodes {
		if i := indexOf(c, n.Name); n.Voter && i != master {
			victim = i
		}
	}
	name := c.Nodes[victim-1].Name
	if err := c.KillNode(victim); err != nil {
		t.Fatal(err)
	}
	observer := others(c, victim)[0]
	waitState(t, ctx, c, []int{observer}, name, api.StateDown)
	err = c.WaitFor(ctx, "a non-voter to take the dead voter's seat", func() (bool, error) {
		nodes, err := c.ListNodes(ctx, observer)
		if err != nil {
			return false, err
		}
		v := voters(nodes)
		for _, n := range nodes {
			if n.Name == name && n.Voter {
				return false, fmt.Errorf("%s is still a voter (voters %v)", name, v)
			}
		}
		return check(len(v) == 5, "voters %v", v)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.StartAgent(ctx, victim); err != nil {
		t.Fatal(err)
	}
	waitState(t, ctx, c, others(c), name, api.StateUp)
	sameEverywhere(t, ctx, c, others(c))
}

// TestJoinByNodesFile: a node joins through a static node list (one address
// a line, like openMosix's mosix.map) instead of --join; a dead address in
// the list does not matter.
func TestJoinByNodesFile(t *testing.T) {
	c, ctx := loopbackCluster(t, 2)
	dir := shortTemp(t)
	list := filepath.Join(dir, "nodes")
	addr1, addr2 := c.Nodes[0].Addr, c.Nodes[1].Addr
	dead := addr1[:strings.LastIndexByte(addr1, '.')] + ".249"
	self := addr1[:strings.LastIndexByte(addr1, '.')] + ".250"
	body := fmt.Sprintf("# the cluster's nodes\n%s   # gone\n%s\n%s\n", dead, addr1, addr2)
	if err := os.WriteFile(list, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "s")
	cmd := exec.Command(binary, "agent", "--config", os.DevNull, "--state-dir", filepath.Join(dir, "state"),
		"--socket", sock, "--bind", self, "--http", "", "--name", "listed", "--load-scope", "agent",
		"--nodes-file", list, "--token-file", filepath.Join(c.Nodes[0].StateDir, pki.TokenFile))
	cmd.Env = cleanEnv()
	logf, err := os.Create(filepath.Join(dir, "agent.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	cl := client.New(sock)
	defer cl.Close()
	err = c.WaitFor(ctx, "the listed node to become a member", func() (bool, error) {
		if cmd.ProcessState != nil {
			return false, fmt.Errorf("agent exited")
		}
		s, err := cl.Self(ctx)
		if err != nil {
			return false, err
		}
		return check(s.Member, "not a member: %s", s.Fenced)
	})
	if err != nil {
		b, _ := os.ReadFile(filepath.Join(dir, "agent.log"))
		t.Fatalf("%v\n%s", err, b)
	}
	waitState(t, ctx, c, []int{1, 2}, "listed", api.StateUp)
}
