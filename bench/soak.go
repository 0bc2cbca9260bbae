package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/ssi-cluster/ssi/internal/api"
	"github.com/ssi-cluster/ssi/internal/harness"
)

// soak runs a namespace cluster at several levels of CPU demand (busy
// loops on every node), with a process migrating from node to node in a
// loop, and at each level kills a node now and then (SIGKILL of its whole
// PID namespace) and restarts it. It reports, per level, every down
// committed for a node that was not killed (a false down) and how long each
// kill took to be committed down on every survivor.
func soak(ctx context.Context, args []string) error {
	fs := newFlags("soak")
	dur := fs.Duration("duration", 10*time.Minute, "how long at each level")
	levels := fs.String("levels", "0,100,200", "CPU demand per node, percent of the machine's cores (busy loops)")
	nodes := fs.Int("nodes", 5, "cluster size")
	killEvery := fs.Duration("kill-every", 30*time.Second, "kill a node (not node 1) this often; 0: never")
	migrate := fs.Bool("migrate", true, "keep a process migrating between nodes")
	fs.Parse(args)
	if !harness.Root() {
		return errors.New("soak needs root (namespace cluster)")
	}
	var pcts []int
	for _, f := range strings.Split(*levels, ",") {
		p, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || p < 0 {
			return fmt.Errorf("-levels: %q", f)
		}
		pcts = append(pcts, p)
	}
	dir, err := os.MkdirTemp("", "ssi-bench-soak")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	prog := ""
	if *migrate {
		if prog, err = buildDirty(dir); err != nil {
			return err
		}
	}
	c, stop, err := startCluster(ctx, *nodes, "--allow-remote-root", "true")
	if err != nil {
		return err
	}
	defer stop()
	var rows []soakRow
	for _, pct := range pcts {
		hogs := pct * numCPU() / 100
		fmt.Printf("level %d%%: %d busy loops on each of %d nodes (%d cores), %s, a kill every %s\n",
			pct, hogs, *nodes, numCPU(), *dur, *killEvery)
		r, err := soakLevel(ctx, c, soakOpts{hogs: hogs, dur: *dur, killEvery: *killEvery, prog: prog, dir: dir})
		if err != nil {
			return fmt.Errorf("level %d%%: %w", pct, err)
		}
		r.pct = pct
		rows = append(rows, r)
	}
	fmt.Printf("\nsoak: %d-node namespace cluster, %d cores, %s per level\n", *nodes, numCPU(), *dur)
	fmt.Println("| CPU demand per node | busy loops per node | migrations done / failed | kills | detection p50 / p99 / max | downs committed | false downs |")
	fmt.Println("|---|---|---|---|---|---|---|")
	falseDowns := 0
	for _, r := range rows {
		det := "-"
		if len(r.detect) > 0 {
			det = fmt.Sprintf("%s / %s / %s", ms(quantile(r.detect, .5)), ms(quantile(r.detect, .99)), ms(quantile(r.detect, 1)))
		}
		fmt.Printf("| %d%% | %d | %d / %d | %d | %s | %d | %d |\n", r.pct, r.hogs, r.migrated, r.migFailed, len(r.detect), det, r.downs, r.falseDowns)
		falseDowns += r.falseDowns
	}
	fmt.Println("targets: false downs 0; detection p50 <= 500 ms, p99 <= 1000 ms")
	if falseDowns > 0 {
		return fmt.Errorf("%d false down transitions", falseDowns)
	}
	return nil
}

type soakOpts struct {
	hogs           int
	dur, killEvery time.Duration
	prog, dir      string
}

type soakRow struct {
	pct, hogs           int
	migrated, migFailed int
	detect              []time.Duration
	downs, falseDowns   int
}

func soakLevel(ctx context.Context, c *harness.Cluster, o soakOpts) (soakRow, error) {
	r := soakRow{hogs: o.hogs}
	start, err := c.ClusterInfo(ctx, 1)
	if err != nil {
		return r, err
	}
	hogs := map[int][]*exec.Cmd{}
	startHogs := func(i int) error {
		for h := 0; h < o.hogs; h++ {
			cmd := c.Command(i, "sh", "-c", "while :; do :; done")
			if err := cmd.Start(); err != nil {
				return err
			}
			hogs[i] = append(hogs[i], cmd)
		}
		return nil
	}
	stopHogs := func(i int) {
		for _, cmd := range hogs[i] {
			cmd.Process.Kill()
			cmd.Wait()
		}
		delete(hogs, i)
	}
	defer func() {
		for i := range hogs {
			stopHogs(i)
		}
	}()
	for _, n := range c.Nodes {
		if err := startHogs(n.Index); err != nil {
			return r, err
		}
	}
	lctx, cancel := context.WithTimeout(ctx, o.dur)
	defer cancel()
	migDone := make(chan [2]int, 1)
	if o.prog != "" {
		go func() { ok, failed := migrateLoop(lctx, c, o.prog, o.dir); migDone <- [2]int{ok, failed} }()
	} else {
		migDone <- [2]int{}
	}
	var kills []soakKill
	began := time.Now()
	next := time.After(o.killEvery)
	if o.killEvery <= 0 {
		next = nil
	}
	tick := time.NewTicker(30 * time.Second)
	defer tick.Stop()
loop:
	for {
		select {
		case <-lctx.Done():
			break loop
		case <-tick.C:
			if cl, err := c.ClusterInfo(ctx, 1); err == nil {
				fmt.Printf("  %6s  epoch %d, %d of %d up\n", time.Since(began).Round(time.Second), cl.Epoch, cl.Up, cl.Nodes)
			}
		case <-next:
			victim := 2 + rand.IntN(len(c.Nodes)-1) // node 1 answers the bench
			d, err := killAndMeasure(ctx, c, victim, "kill")
			if err != nil {
				return r, fmt.Errorf("kill node %d: %w", victim, err)
			}
			kills = append(kills, soakKill{name: c.Nodes[victim-1].Name, at: c.KilledAt(victim)})
			r.detect = append(r.detect, d)
			fmt.Printf("  %6s  killed node %d: committed down on every survivor after %s\n", time.Since(began).Round(time.Second), victim, ms(d))
			delete(hogs, victim) // they died with the node
			if err := c.StartAgent(ctx, victim); err != nil {
				return r, err
			}
			if err := c.WaitFormed(ctx); err != nil {
				return r, err
			}
			if err := startHogs(victim); err != nil {
				return r, err
			}
			next = time.After(o.killEvery)
		}
	}
	m := <-migDone
	r.migrated, r.migFailed = m[0], m[1]
	cl, err := c.Client(1)
	if err != nil {
		return r, err
	}
	ts, err := cl.Transitions(context.Background(), start.Epoch, false)
	if err != nil {
		return r, err
	}
	for _, t := range ts {
		if t.Kind != api.KindDown {
			continue
		}
		r.downs++
		if matchKill(kills, t) {
			continue
		}
		r.falseDowns++
		fmt.Printf("  FALSE DOWN: epoch %d node %d (%s) at %s: %s\n", t.Epoch, t.Node, t.Name, t.Time.Format("15:04:05.000"), t.Reason)
	}
	return r, nil
}

// migrateLoop keeps one process (16 MiB, dirtying 1 MB/s) moving from node
// to node, one migration a second, until ctx ends; a process lost with a
// killed node is replaced. It returns the migrations done and failed.
func migrateLoop(ctx context.Context, c *harness.Cluster, prog, dir string) (ok, failed int) {
	cl, err := c.Client(1)
	if err != nil {
		return 0, 0
	}
	for gen := 0; ctx.Err() == nil; gen++ {
		ready := fmt.Sprintf("%s/soak-ready-%d", dir, gen)
		out, err := c.Command(1, c.Binary, "--socket", c.Nodes[0].Socket, "run", "-d", "--node", "1", prog, "16", "1", ready).Output()
		if err != nil {
			failed++
			sleepCtx(ctx, time.Second)
			continue
		}
		cpid, err := strconv.ParseInt(strings.Fields(string(out))[0], 10, 64)
		if err != nil {
			failed++
			continue
		}
		for t := time.Now(); time.Since(t) < time.Minute && ctx.Err() == nil; sleepCtx(ctx, 50*time.Millisecond) {
			if _, err := os.Stat(ready); err == nil {
				break
			}
		}
		for k := 0; ctx.Err() == nil; k++ {
			to := 1 + (k+1)%len(c.Nodes)
			mctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			_, err := cl.Migrate(mctx, cpid, strconv.Itoa(to))
			cancel()
			if err == nil {
				ok++
			} else if ctx.Err() == nil {
				failed++
				fmt.Printf("  migration of %d to node %d: %v\n", cpid, to, err)
				if _, err := cl.Where(ctx, cpid); err != nil {
					break // lost with a killed node: start another
				}
			}
			sleepCtx(ctx, time.Second)
		}
		cl.Signal(context.Background(), api.SignalRequest{CPID: cpid, Signal: 9})
	}
	return ok, failed
}

func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// soakKill is a node the soak killed, and when.
type soakKill struct {
	name    string
	at      time.Time
	matched bool
}

// matchKill reports whether down transition t is the one of a kill: the
// first kill of that node not matched yet, committed at most 30 s after it.
func matchKill(kills []soakKill, t api.Transition) bool {
	for i := range kills {
		k := &kills[i]
		if !k.matched && k.name == t.Name && !t.Time.Before(k.at.Add(-time.Second)) && t.Time.Sub(k.at) < 30*time.Second {
			k.matched = true
			return true
		}
	}
	return false
}
