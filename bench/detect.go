package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"time"

	"github.com/ssi-cluster/ssi/internal/api"
	"github.com/ssi-cluster/ssi/internal/harness"
)

// detect measures node-down detection: kill -9 a whole node (its PID
// namespace), then the time until every survivor has applied the committed
// down transition (each survivor's own apply time, on the shared clock).
func detect(ctx context.Context, args []string) error {
	fs := newFlags("detect")
	reps := fs.Int("reps", 20, "repetitions")
	nodes := fs.Int("nodes", 5, "cluster size")
	masters := fs.Bool("masters", true, "also kill the master in some repetitions (every fourth)")
	how := fs.String("fault", "kill", "kill: SIGKILL every process of the node (its agent's connections close); "+
		"cut: drop every packet to and from the node (a node that falls silent: power, cable, hang)")
	fs.Parse(args)
	if *how != "kill" && *how != "cut" {
		return fmt.Errorf("-fault %q: want kill or cut", *how)
	}
	if !harness.Root() {
		return errors.New("detect needs root (namespace cluster)")
	}
	c, stop, err := startCluster(ctx, *nodes)
	if err != nil {
		return err
	}
	defer stop()
	var all, follower, master []time.Duration
	fmt.Printf("%-4s %-7s %-8s %s\n", "rep", "victim", "role", "all survivors saw down")
	for r := 1; r <= *reps; r++ {
		m, err := currentMaster(ctx, c, 1)
		if err != nil {
			return err
		}
		victim, role := pickVictim(c, m, *masters && r%4 == 0)
		d, err := killAndMeasure(ctx, c, victim, *how)
		if err != nil {
			return fmt.Errorf("rep %d: %w", r, err)
		}
		all = append(all, d)
		if role == "master" {
			master = append(master, d)
		} else {
			follower = append(follower, d)
		}
		fmt.Printf("%-4d node%-3d %-8s %s\n", r, victim, role, ms(d))
		if *how == "cut" {
			err = c.Heal(victim)
		} else {
			err = c.StartAgent(ctx, victim)
		}
		if err != nil {
			return err
		}
		if err := c.WaitFormed(ctx); err != nil {
			return err
		}
		time.Sleep(time.Second) // let the returned node settle before the next kill
	}
	fmt.Printf("\nnode-down detection (-fault %s), %d-node namespace cluster, %d repetitions\n", *how, *nodes, *reps)
	fmt.Printf("%-12s %5s %8s %8s %8s %8s\n", "victim", "n", "p50", "p90", "p99", "max")
	for _, row := range []struct {
		name string
		ds   []time.Duration
	}{{"any", all}, {"non-master", follower}, {"master", master}} {
		if len(row.ds) == 0 {
			continue
		}
		fmt.Printf("%-12s %5d %8s %8s %8s %8s\n", row.name, len(row.ds), ms(quantile(row.ds, .5)),
			ms(quantile(row.ds, .9)), ms(quantile(row.ds, .99)), ms(quantile(row.ds, 1)))
	}
	fmt.Println("targets: p50 <= 500 ms, p99 <= 1000 ms")
	return nil
}

func pickVictim(c *harness.Cluster, master int, killMaster bool) (int, string) {
	if killMaster {
		return master, "master"
	}
	for {
		v := 1 + rand.IntN(len(c.Nodes))
		if v != master {
			return v, "follower"
		}
	}
}

func currentMaster(ctx context.Context, c *harness.Cluster, i int) (int, error) {
	var idx int
	err := c.WaitFor(ctx, "a master", func() (bool, error) {
		cl, err := c.ClusterInfo(ctx, i)
		if err != nil {
			return false, err
		}
		nodes, err := c.ListNodes(ctx, i)
		if err != nil {
			return false, err
		}
		for _, n := range nodes {
			if n.Number == cl.Master {
				for _, hn := range c.Nodes {
					if hn.Name == n.Name {
						idx = hn.Index
						return true, nil
					}
				}
			}
		}
		return false, errors.New("no master yet")
	})
	return idx, err
}

// killAndMeasure kills node victim (how: kill) or cuts it off (cut) and
// returns the time from the fault until the last survivor applied the down
// transition.
func killAndMeasure(ctx context.Context, c *harness.Cluster, victim int, how string) (time.Duration, error) {
	name := c.Nodes[victim-1].Name
	type result struct {
		seen time.Time
		err  error
	}
	var survivors []int
	for _, n := range c.Nodes {
		if n.Index != victim {
			survivors = append(survivors, n.Index)
		}
	}
	epochs := map[int]uint64{}
	for _, i := range survivors {
		cl, err := c.ClusterInfo(ctx, i)
		if err != nil {
			return 0, err
		}
		epochs[i] = cl.Epoch
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	results := make([]result, len(survivors))
	var wg sync.WaitGroup
	ready := make(chan struct{})
	for k, i := range survivors {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-ready
			results[k] = waitDown(ctx, c, i, epochs[i], name)
		}()
	}
	var killed time.Time
	if how == "cut" {
		killed = time.Now()
		if err := c.Isolate(victim); err != nil {
			return 0, err
		}
	} else {
		if err := c.KillNode(victim); err != nil {
			return 0, err
		}
		killed = c.KilledAt(victim)
	}
	close(ready)
	wg.Wait()
	var last time.Time
	for k, r := range results {
		if r.err != nil {
			return 0, fmt.Errorf("node %d: %w", survivors[k], r.err)
		}
		if r.seen.After(last) {
			last = r.seen
		}
	}
	return last.Sub(killed), nil
}

func waitDown(ctx context.Context, c *harness.Cluster, i int, after uint64, name string) (r struct {
	seen time.Time
	err  error
}) {
	cl, err := c.Client(i)
	if err != nil {
		r.err = err
		return r
	}
	for {
		ts, err := cl.Transitions(ctx, after, true)
		if err != nil {
			r.err = err
			return r
		}
		for _, t := range ts {
			after = t.Epoch
			if t.Name == name && t.Kind == api.KindDown {
				r.seen = t.Seen
				if r.seen.IsZero() {
					fmt.Fprintln(os.Stderr, "bench: transition without a local apply time; using now")
					r.seen = time.Now()
				}
				return r
			}
		}
	}
}
