package main

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"

	"github.com/ssi-cluster/ssi/internal/harness"
)

// fillNodes starts per sleeping processes on every node of c and waits
// until node 1's `ssi ps` lists them all. stop ends them.
func fillNodes(ctx context.Context, c *harness.Cluster, per int) (stop func(), err error) {
	var shells []*exec.Cmd
	stop = func() {
		for _, s := range shells {
			s.Process.Kill()
			s.Wait()
		}
		for _, n := range c.Nodes {
			c.Command(n.Index, "pkill", "-x", "sleep").Run()
		}
	}
	for _, n := range c.Nodes {
		// One shell per node starts the sleepers and waits for them.
		sh := c.Command(n.Index, "sh", "-c", "for i in $(seq "+strconv.Itoa(per)+"); do sleep 3600 & done; wait")
		if err := sh.Start(); err != nil {
			stop()
			return nil, err
		}
		shells = append(shells, sh)
	}
	cl, err := c.Client(1)
	if err != nil {
		stop()
		return nil, err
	}
	want := len(c.Nodes) * per
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
		stop()
		return nil, err
	}
	return stop, nil
}
