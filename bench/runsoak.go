package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/ssi-cluster/ssi/internal/harness"
)

// runSoak runs many remote executions and shows, for both agents, that
// goroutines, open files and resident memory stay flat.
func runSoak(ctx context.Context, args []string) error {
	fs := newFlags("runsoak")
	n := fs.Int("n", 10000, "remote executions")
	batch := fs.Int("batch", 1000, "executions between samples")
	fs.Parse(args)
	if !harness.Root() {
		return errors.New("runsoak needs root (namespace cluster)")
	}
	c, stop, err := startCluster(ctx, 2, "--allow-remote-root", "true")
	if err != nil {
		return err
	}
	defer stop()
	argv := []string{c.Binary, "--socket", c.Nodes[0].Socket, "run", "--node", "2", "--", "sh", "-c", "echo x; cat >/dev/null"}
	inNode(ctx, c, 1, 20, 0, argv...) // warm up: connections, caches
	fmt.Printf("%d remote executions of `sh -c 'echo x; cat >/dev/null'` from node 1 on node 2\n\n", *n)
	fmt.Printf("%8s  %-28s  %-28s\n", "", "home agent (node 1)", "executing agent (node 2)")
	fmt.Printf("%8s  %10s %6s %10s  %10s %6s %10s\n", "runs", "goroutines", "fds", "rss", "goroutines", "fds", "rss")
	row := func(done int) error {
		line := fmt.Sprintf("%8d", done)
		for i := 1; i <= 2; i++ {
			s, err := agentSample(ctx, c, i)
			if err != nil {
				return err
			}
			line += fmt.Sprintf("  %10d %6d %7d KiB", s.goroutines, s.fds, s.rssKB)
		}
		fmt.Println(line)
		return nil
	}
	if err := row(0); err != nil {
		return err
	}
	for done := 0; done < *n; {
		k := min(*batch, *n-done)
		if _, err := inNode(ctx, c, 1, k, 10, argv...); err != nil {
			return err
		}
		done += k
		if err := row(done); err != nil {
			return err
		}
	}
	return nil
}

type agentStats struct{ goroutines, fds, rssKB int }

// agentSample reads node i's agent's goroutine count from /metrics and its
// open files and resident memory from /proc.
func agentSample(ctx context.Context, c *harness.Cluster, i int) (agentStats, error) {
	var s agentStats
	pid, err := c.AgentPID(i)
	if err != nil {
		return s, err
	}
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return s, err
	}
	s.fds, s.rssKB = len(ents), rssKB(pid)
	cl, err := c.Client(i)
	if err != nil {
		return s, err
	}
	text, err := cl.Metrics(ctx)
	if err != nil {
		return s, err
	}
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(line, "go_goroutines "); ok {
			fmt.Sscan(v, &s.goroutines)
		}
	}
	return s, nil
}
