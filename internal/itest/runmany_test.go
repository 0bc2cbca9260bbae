package itest

import (
	"os"
	"sort"
	"strings"
	"testing"
)

// TestRunMany: --np K starts K instances with SSI_RANK and SSI_SIZE,
// spread over the nodes, and exits with the worst status.
func TestRunMany(t *testing.T) {
	c, _ := startCluster(t, 3, "--allow-remote-root", "true")
	ssi := []string{c.Binary, "--socket", c.Nodes[0].Socket, "run", "--np", "6", "--"}
	o := execIn(t, c, runSpec{on: 1, dir: "/", env: []string{"PATH=/usr/bin:/bin"},
		argv: append(ssi, "sh", "-c", `echo "$SSI_RANK/$SSI_SIZE $(hostname)"`)})
	if o.code != 0 {
		t.Fatalf("--np 6: %v", o)
	}
	lines := strings.Split(strings.TrimSpace(o.stdout), "\n")
	sort.Strings(lines)
	hosts := map[string]bool{}
	for i, l := range lines {
		f := strings.Fields(l)
		if len(f) != 2 || f[0] != string(rune('0'+i))+"/6" {
			t.Fatalf("instances printed %q, want ranks 0..5 of 6", lines)
		}
		hosts[f[1]] = true
	}
	if len(hosts) < 2 {
		t.Errorf("6 instances all ran on %v: not spread", hosts)
	}
	o = execIn(t, c, runSpec{on: 1, dir: "/", env: []string{"PATH=/usr/bin:/bin"},
		argv: append(ssi, "sh", "-c", `exit $SSI_RANK`)})
	if o.code != 5 {
		t.Errorf("--np 6 exiting with their rank: status %d, want the worst, 5", o.code)
	}
	// Processes that end at once, many together: each exit must reach
	// its deputy even when it comes before the deputy's stream is
	// attached (that race ended one run in 3000 of the benchmark, on a
	// loaded machine, in "ended or moved on", status 255; this does not
	// catch it every time, the window is microseconds).
	for i := 0; i < 3; i++ {
		o = execIn(t, c, runSpec{on: 1, dir: "/", env: []string{"PATH=/usr/bin:/bin"},
			argv: []string{c.Binary, "--socket", c.Nodes[0].Socket, "run", "--np", "48", "--", "true"}})
		if o.code != 0 {
			t.Fatalf("--np 48 true: %v", o)
		}
	}
}

// TestRunRootRefused: without allow_remote_root a node refuses to run a
// process as root for another node (and says why); every remote execution
// is logged by the node that runs it.
func TestRunRootRefused(t *testing.T) {
	c, _ := startCluster(t, 2)
	env := []string{"PATH=/usr/bin:/bin"}
	o := execIn(t, c, viaSSI(c, runSpec{on: 1, dir: "/", env: env, argv: []string{"id", "-u"}}, 2))
	if o.code != 126 || !strings.Contains(o.stderr, "allow_remote_root") || o.stdout != "" {
		t.Errorf("root run on node 2: %v; want 126 naming allow_remote_root", o)
	}
	o = execIn(t, c, viaSSI(c, runSpec{on: 1, dir: "/", env: env, argv: []string{"id", "-u"}}, 1))
	if o.code != 0 || o.stdout != "0\n" {
		t.Errorf("root run on its own node: %v; want it to run", o)
	}
	o = execIn(t, c, viaSSI(c, runSpec{on: 1, user: "65534:65534", dir: "/", env: env, argv: []string{"id", "-u"}}, 2))
	if o.code != 0 || o.stdout != "65534\n" {
		t.Fatalf("nobody's run on node 2: %v", o)
	}
	log, _ := os.ReadFile(c.Nodes[1].Log)
	var seen bool
	for _, l := range strings.Split(string(log), "\n") {
		if strings.Contains(l, `msg="remote execution"`) && strings.Contains(l, "uid=65534") &&
			strings.Contains(l, "home=1") && strings.Contains(l, "argv=") {
			seen = true
		}
	}
	if !seen {
		t.Errorf("node 2's log does not record nobody's remote execution from node 1")
	}
}
