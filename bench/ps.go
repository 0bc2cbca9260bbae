package main

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"time"

	"github.com/ssi-cluster/ssi/internal/harness"
)

// psBench times `ssi ps` over a namespace cluster whose every node runs
// many processes: the API call (all nodes asked in parallel over the
// control channel) and the whole CLI process.
func psBench(ctx context.Context, args []string) error {
	fs := newFlags("ps")
	nodes := fs.Int("nodes", 5, "cluster size")
	per := fs.Int("procs", 1000, "sleeping processes per node")
	calls := fs.Int("calls", 50, "`ssi ps` calls to time")
	fs.Parse(args)
	if !harness.Root() {
		return errors.New("ps needs root (namespace cluster)")
	}
	c, stop, err := startCluster(ctx, *nodes)
	if err != nil {
		return err
	}
	defer stop()
	var shells []*exec.Cmd
	defer func() {
		for _, s := range shells {
			s.Process.Kill()
			s.Wait()
		}
	}()
	for _, n := range c.Nodes {
		// One shell per node starts the sleepers and waits for them.
		script := "for i in $(seq " + strconv.Itoa(*per) + "); do sleep 3600 & done; wait"
		sh := c.Command(n.Index, "sh", "-c", script)
		if err := sh.Start(); err != nil {
			return err
		}
		shells = append(shells, sh)
	}
	cl, err := c.Client(1)
	if err != nil {
		return err
	}
	want := *nodes * *per
	err = c.WaitFor(ctx, fmt.Sprintf("%d processes listed", want), func() (bool, error) {
		r, err := cl.Procs(ctx, 0, "")
		if err != nil {
			return false, err
		}
		if len(r.Procs) >= want {
			return true, nil
		}
		return false, fmt.Errorf("%d listed", len(r.Procs))
	})
	if err != nil {
		return err
	}
	var api, cli []time.Duration
	listed := 0
	for k := 0; k < *calls; k++ {
		t := time.Now()
		r, err := cl.Procs(ctx, 0, "")
		if err != nil {
			return err
		}
		api = append(api, time.Since(t))
		listed = len(r.Procs)
		t = time.Now()
		if out, err := exec.CommandContext(ctx, c.Binary, "--socket", c.Nodes[0].Socket, "ps").CombinedOutput(); err != nil {
			return fmt.Errorf("ssi ps: %v: %s", err, out)
		}
		cli = append(cli, time.Since(t))
	}
	fmt.Printf("\n`ssi ps`: %d nodes, %d processes listed, %d calls\n", *nodes, listed, *calls)
	fmt.Printf("%-30s p50 %s  p99 %s\n", "API call (all nodes)", msf(quantile(api, .5)), msf(quantile(api, .99)))
	fmt.Printf("%-30s p50 %s  p99 %s\n", "whole CLI process (table)", msf(quantile(cli, .5)), msf(quantile(cli, .99)))
	fmt.Println("target: at most 100 ms")
	return nil
}
