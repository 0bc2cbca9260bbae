package itest

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/ssi-cluster/ssi/internal/api"
)

// TestPsWhereKill: `ssi ps` from one node lists the processes of every node
// with cluster pids; `where` names the node; a user cannot signal another
// user's process, root can, and the signal reaches the process on its node.
func TestPsWhereKill(t *testing.T) {
	// Root signals from another node below: allowed by allow_remote_root.
	c, ctx := startCluster(t, 3, "--allow-remote-root", "true")
	// A process of user nobody on node 2.
	sleeper := c.Command(2, "su", "nobody", "-s", "/bin/sh", "-c", "exec sleep 300")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- sleeper.Wait() }()
	t.Cleanup(func() { sleeper.Process.Kill() })

	var target api.Proc
	err := c.WaitFor(ctx, "node 1's ps to list nobody's sleep", func() (bool, error) {
		procs, err := psJSON(ctx, c, 1, "-u", "nobody")
		if err != nil {
			return false, err
		}
		for _, p := range procs {
			if strings.HasPrefix(p.Command, "sleep 300") {
				target = p
				return true, nil
			}
		}
		return false, fmt.Errorf("not listed: %d processes", len(procs))
	})
	if err != nil {
		t.Fatal(err)
	}
	node2, err := nodeState(ctx, c, 1, c.Nodes[1].Name)
	if err != nil {
		t.Fatal(err)
	}
	if target.Node != node2.Number || target.User != "nobody" {
		t.Errorf("listed %+v, want on node %d as nobody", target, node2.Number)
	}
	// Every node's processes are listed, not only the asker's.
	out, err := c.CLI(ctx, 1, "ps", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var all api.ProcsReply
	json.Unmarshal(out, &all)
	nodes := map[int]bool{}
	for _, p := range all.Procs {
		nodes[p.Node] = true
	}
	if len(nodes) != 3 {
		t.Errorf("ps lists processes of nodes %v, want all 3", nodes)
	}
	cpid := strconv.FormatInt(target.CPID, 10)
	where, err := c.CLI(ctx, 3, "where", cpid)
	if err != nil || strings.TrimSpace(string(where)) != strconv.Itoa(node2.Number) {
		t.Errorf("where %s from node 3 = %q, %v; want %d", cpid, where, err, node2.Number)
	}

	// Another user (daemon, uid 1) is refused, and the process lives on.
	kill := exec.CommandContext(ctx, binary, "--socket", c.Nodes[0].Socket, "kill", "-9", cpid)
	kill.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 1, Gid: 1}}
	kill.Env = cleanEnv()
	b, err := kill.CombinedOutput()
	if err == nil || !strings.Contains(string(b), "node 2 refuses signal of process "+cpid+" for uid 1 from node 1: the process belongs to uid 65534, not to uid 1") {
		t.Errorf("kill as uid 1: %v, %s; want a refusal naming the owner", err, b)
	}
	select {
	case err := <-done:
		t.Fatalf("the process died after a refused kill: %v", err)
	default:
	}
	// Root may (allow_remote_root is on); the signal reaches the process
	// on node 2.
	if out, err := c.CLI(ctx, 1, "kill", "-KILL", fmt.Sprintf("%d:%d", target.Node, target.Pid)); err != nil {
		t.Fatalf("kill as root: %v, %s", err, out)
	}
	if err := <-done; err == nil {
		t.Errorf("su exited cleanly after kill -9 of its child")
	}
	if _, err := c.CLI(ctx, 1, "where", cpid); err == nil {
		t.Errorf("where %s still finds the killed process", cpid)
	}
}
