package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ssi-cluster/ssi/internal/api"
	"github.com/ssi-cluster/ssi/internal/client"
)

func numCPU() int { return runtime.NumCPU() }

// scaleResult is one row of the scale table.
type scaleResult struct {
	agents                          int
	formed, formedP50               time.Duration
	apiP50, apiP99                  time.Duration
	cliP50, cliP99                  time.Duration
	rssMean, rssMax                 float64 // MiB
	idle                            idleCPU
	detectP50, detectP99, detectMax time.Duration
	kills                           int
	note                            string // why the row is incomplete
}

// scale starts N agents on loopback addresses at once (the first one makes
// the cluster, the rest join it together), for each N asked, and measures
// the time until every agent sees every node up, each agent's CPU time while
// the cluster is idle (followers and master apart), node-down detection (an
// agent killed with SIGKILL, until every survivor applied its down), the
// latency of `ssi nodes` (the API call and the whole CLI process), and each
// agent's resident memory.
func scale(ctx context.Context, args []string) error {
	fs := newFlags("scale")
	counts := fs.String("nodes", "5,32,128", "agent counts, comma separated (one cluster each)")
	calls := fs.Int("calls", 100, "`ssi nodes` calls to time")
	idle := fs.Duration("idle", 30*time.Second, "idle window over which CPU time is measured")
	settle := fs.Duration("settle", 10*time.Second, "wait after formation before the idle window")
	kills := fs.Int("kills", 5, "agents killed (SIGKILL, one at a time) to time detection")
	extraArgs := fs.String("agent-args", "", "extra agent flags, space separated")
	fs.Parse(args)
	var ns []int
	for _, f := range strings.Split(*counts, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 2 {
			return fmt.Errorf("-nodes: %q is not a count of 2 or more", f)
		}
		ns = append(ns, n)
	}
	bin, cleanup, err := buildBinary(ctx)
	if err != nil {
		return err
	}
	defer cleanup()
	var rows []scaleResult
	for _, n := range ns {
		r, err := scaleOnce(ctx, bin, scaleOpts{n: n, calls: *calls, idle: *idle, settle: *settle, kills: *kills,
			extra: strings.Fields(*extraArgs)})
		if err != nil {
			return fmt.Errorf("%d agents: %w", n, err)
		}
		rows = append(rows, r)
		printScale(rows[len(rows)-1:])
	}
	fmt.Printf("\nscale: agents on loopback addresses, %d cores, idle window %s\n", numCPU(), *idle)
	printScale(rows)
	fmt.Println("targets: formation <= 10 s; idle follower <= 5 ms/s, master <= 10 ms/s; detection p50 <= 500 ms, p99 <= 1000 ms; `ssi nodes` <= 100 ms")
	return nil
}

func printScale(rows []scaleResult) {
	fmt.Printf("%6s %9s %16s %9s %16s %18s %16s %14s\n", "agents", "formed", "idle follower", "idle", "detection (n)",
		"`ssi nodes` API", "`ssi nodes` CLI", "RSS")
	fmt.Printf("%6s %9s %16s %9s %16s %18s %16s %14s\n", "", "(max)", "ms/s mean/max", "master", "p50/p99",
		"p50/p99", "p50/p99", "mean/max MiB")
	for _, r := range rows {
		if r.note != "" {
			fmt.Printf("%6d  not formed: %s\n", r.agents, r.note)
			continue
		}
		fmt.Printf("%6d %9s %16s %9s %16s %18s %16s %14s\n", r.agents, ms(r.formed),
			fmt.Sprintf("%.1f / %.1f", r.idle.followerMean, r.idle.followerMax), fmt.Sprintf("%.1f", r.idle.master),
			fmt.Sprintf("%d/%d (%d)", r.detectP50.Milliseconds(), r.detectP99.Milliseconds(), r.kills),
			fmt.Sprintf("%.1f/%.1f ms", msF(r.apiP50), msF(r.apiP99)), fmt.Sprintf("%.0f/%.0f ms", msF(r.cliP50), msF(r.cliP99)),
			fmt.Sprintf("%.0f/%.0f", r.rssMean, r.rssMax))
		if r.idle.note != "" {
			fmt.Printf("%6s  %s\n", "", r.idle.note)
		}
	}
}

func msF(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

type scaleOpts struct {
	n, calls, kills int
	idle, settle    time.Duration
	extra           []string
}

// loopCluster is N agents on loopback addresses.
type loopCluster struct {
	bin, dir string
	procs    []*exec.Cmd // by index; nil once killed
	args     [][]string  // each agent's extra flags, to restart it
}

func (lc *loopCluster) addr(i int) string { return fmt.Sprintf("127.200.%d.%d", i/250, 1+i%250) }
func (lc *loopCluster) sock(i int) string { return filepath.Join(lc.dir, fmt.Sprintf("n%d", i), "s") }
func (lc *loopCluster) name(i int) string { return fmt.Sprintf("node%d", i+1) }

func (lc *loopCluster) start(i int, extra ...string) error {
	nd := filepath.Join(lc.dir, fmt.Sprintf("n%d", i))
	if err := os.MkdirAll(nd, 0o700); err != nil {
		return err
	}
	log, err := os.OpenFile(filepath.Join(nd, "agent.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer log.Close()
	argv := append([]string{"agent", "--config", os.DevNull, "--state-dir", filepath.Join(nd, "state"),
		"--socket", lc.sock(i), "--bind", lc.addr(i), "--http", "", "--name", lc.name(i), "--load-scope", "agent"}, extra...)
	cmd := exec.Command(lc.bin, argv...)
	cmd.Stderr = log
	lc.args[i] = extra
	if err := cmd.Start(); err != nil {
		return err
	}
	lc.procs[i] = cmd
	return nil
}

func (lc *loopCluster) kill(i int) {
	if p := lc.procs[i]; p != nil {
		p.Process.Kill()
		p.Wait()
		lc.procs[i] = nil
	}
}

func (lc *loopCluster) close() {
	for i := range lc.procs {
		lc.kill(i)
	}
}

func scaleOnce(ctx context.Context, bin string, o scaleOpts) (scaleResult, error) {
	res := scaleResult{agents: o.n}
	dir, err := os.MkdirTemp("", "ssi-scale")
	if err != nil {
		return res, err
	}
	lc := &loopCluster{bin: bin, dir: dir, procs: make([]*exec.Cmd, o.n), args: make([][]string, o.n)}
	ok := false
	defer func() {
		lc.close()
		if ok && os.Getenv("SSI_BENCH_KEEP") == "" {
			os.RemoveAll(dir)
		} else {
			fmt.Fprintln(os.Stderr, "bench: agents' logs kept in", dir)
		}
	}()
	if out, err := exec.CommandContext(ctx, bin, "init", "--state-dir", filepath.Join(dir, "n0", "state"),
		"--cluster-name", "scale", "--name", lc.name(0), "--advertise", lc.addr(0)).CombinedOutput(); err != nil {
		return res, fmt.Errorf("init: %v: %s", err, out)
	}
	if err := lc.start(0, o.extra...); err != nil {
		return res, err
	}
	c0 := client.New(lc.sock(0))
	defer c0.Close()
	if err := waitMember(ctx, c0); err != nil {
		return res, err
	}
	// Every node joins with node 0's voter token (the first max_voters
	// vote, as in a cluster of servers), read from a 0600 file.
	tok, err := c0.CreateToken(ctx, api.TokenCreate{Voter: true, TTL: "1h", Description: "bench scale"})
	if err != nil {
		return res, err
	}
	tokFile := filepath.Join(dir, "join-token")
	if err := os.WriteFile(tokFile, []byte(tok.Secret+"\n"), 0o600); err != nil {
		return res, err
	}
	t0 := time.Now()
	for i := 1; i < o.n; i++ {
		if err := lc.start(i, append([]string{"--join", lc.addr(0), "--token-file", tokFile}, o.extra...)...); err != nil {
			return res, err
		}
	}
	done, err := waitAllUp(ctx, lc, t0)
	if err != nil {
		res.note = err.Error() // logs kept
		return res, nil
	}
	res.formed, res.formedP50 = quantile(done, 1), quantile(done, .5)
	fmt.Printf("%d agents: all see all up after %s; idle for %s after %s\n", o.n, ms(res.formed), o.idle, o.settle)
	time.Sleep(o.settle)
	if res.idle, err = measureIdle(ctx, lc, c0, o.idle); err != nil {
		return res, err
	}
	if err := scaleCalls(ctx, lc, c0, o.calls, &res); err != nil {
		return res, err
	}
	var sumRSS, maxRSS, nRSS int
	for _, p := range lc.procs {
		r := rssKB(p.Process.Pid)
		sumRSS, maxRSS, nRSS = sumRSS+r, max(maxRSS, r), nRSS+1
	}
	res.rssMean, res.rssMax = float64(sumRSS)/float64(nRSS)/1024, float64(maxRSS)/1024
	ds, err := scaleDetect(ctx, lc, c0, o.kills)
	if err != nil {
		return res, err
	}
	res.kills = len(ds)
	res.detectP50, res.detectP99, res.detectMax = quantile(ds, .5), quantile(ds, .99), quantile(ds, 1)
	ok = true
	return res, nil
}

// waitAllUp waits until every agent lists every node up and returns, for
// each, how long after t0 it first did.
func waitAllUp(ctx context.Context, lc *loopCluster, t0 time.Time) ([]time.Duration, error) {
	n := len(lc.procs)
	var wg sync.WaitGroup
	done := make([]time.Duration, n)
	errs := make([]error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl := client.New(lc.sock(i))
			defer cl.Close()
			for {
				nodes, err := cl.Nodes(ctx)
				up := 0
				for _, nd := range nodes {
					if nd.State == api.StateUp {
						up++
					}
				}
				if err == nil && up == n {
					done[i] = time.Since(t0)
					return
				}
				if ctx.Err() != nil || time.Since(t0) > time.Minute {
					errs[i] = fmt.Errorf("node%d: %d of %d up after %s (last error %v)", i+1, up, n, time.Since(t0).Round(time.Second), err)
					return
				}
				time.Sleep(100 * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	for _, e := range errs {
		if e != nil {
			return nil, e
		}
	}
	return done, nil
}

// scaleCalls times `ssi nodes`: the API call, and the whole CLI process.
func scaleCalls(ctx context.Context, lc *loopCluster, c0 *client.Client, calls int, res *scaleResult) error {
	apiT := make([]time.Duration, 0, calls)
	cliT := make([]time.Duration, 0, calls)
	for k := 0; k < calls; k++ {
		t := time.Now()
		if _, err := c0.Nodes(ctx); err != nil {
			return err
		}
		apiT = append(apiT, time.Since(t))
		t = time.Now()
		if out, err := exec.CommandContext(ctx, lc.bin, "--socket", lc.sock(k%len(lc.procs)), "nodes").CombinedOutput(); err != nil {
			return fmt.Errorf("ssi nodes: %v: %s", err, out)
		}
		cliT = append(cliT, time.Since(t))
	}
	res.apiP50, res.apiP99 = quantile(apiT, .5), quantile(apiT, .99)
	res.cliP50, res.cliP99 = quantile(cliT, .5), quantile(cliT, .99)
	return nil
}

func waitMember(ctx context.Context, c *client.Client) error {
	for t := time.Now(); time.Since(t) < time.Minute; time.Sleep(50 * time.Millisecond) {
		if s, err := c.Self(ctx); err == nil && s.Member {
			return nil
		}
	}
	return fmt.Errorf("the first agent did not become a member")
}

func msf(d time.Duration) string { return fmt.Sprintf("%.1f ms", msF(d)) }
