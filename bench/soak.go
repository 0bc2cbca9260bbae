package main

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"time"

	"github.com/ssi-cluster/ssi/internal/api"
	"github.com/ssi-cluster/ssi/internal/harness"
)

// soak runs a namespace cluster with every core saturated by CPU-bound work
// for a while and reports every transition committed meanwhile: with no
// fault injected, any down transition is a false one.
func soak(ctx context.Context, args []string) error {
	fs := newFlags("soak")
	dur := fs.Duration("duration", 10*time.Minute, "how long")
	nodes := fs.Int("nodes", 5, "cluster size")
	hogs := fs.Int("hogs", 2, "CPU-bound busy loops per node")
	fs.Parse(args)
	if !harness.Root() {
		return errors.New("soak needs root (namespace cluster)")
	}
	c, stop, err := startCluster(ctx, *nodes)
	if err != nil {
		return err
	}
	defer stop()
	start, err := c.ClusterInfo(ctx, 1)
	if err != nil {
		return err
	}
	var cmds []*exec.Cmd
	for _, n := range c.Nodes {
		for h := 0; h < *hogs; h++ {
			cmd := c.Command(n.Index, "sh", "-c", "while :; do :; done")
			if err := cmd.Start(); err != nil {
				return err
			}
			cmds = append(cmds, cmd)
		}
	}
	defer func() {
		for _, cmd := range cmds {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()
	fmt.Printf("soak: %d nodes, %d busy loops on %d cores, for %s (from epoch %d)\n", *nodes, len(cmds), numCPU(), *dur, start.Epoch)
	deadline := time.After(*dur)
	tick := time.NewTicker(30 * time.Second)
	defer tick.Stop()
	began := time.Now()
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-deadline:
			break loop
		case <-tick.C:
			cl, err := c.ClusterInfo(ctx, 1)
			if err == nil {
				fmt.Printf("  %6s  epoch %d, %d of %d up\n", time.Since(began).Round(time.Second), cl.Epoch, cl.Up, cl.Nodes)
			}
		}
	}
	cl, err := c.Client(1)
	if err != nil {
		return err
	}
	ts, err := cl.Transitions(context.Background(), start.Epoch, false)
	if err != nil {
		return err
	}
	downs := 0
	for _, t := range ts {
		if t.Kind == api.KindDown {
			downs++
		}
		fmt.Printf("  transition: epoch %d %s node %d (%s): %s\n", t.Epoch, t.Kind, t.Node, t.Name, t.Reason)
	}
	fmt.Printf("\n%-10s %-6s %-6s %-12s %-12s\n", "duration", "nodes", "hogs", "transitions", "false downs")
	fmt.Printf("%-10s %-6d %-6d %-12d %-12d\n", time.Since(began).Round(time.Second), *nodes, len(cmds), len(ts), downs)
	if downs > 0 {
		return fmt.Errorf("%d false down transitions", downs)
	}
	return nil
}
