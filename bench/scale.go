package main

import (
	"bufio"
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

// scale starts N agents on loopback addresses at once (the first one makes
// the cluster, the rest join it together), and measures the time until every
// agent sees every node up, the latency of `ssi nodes` (the API call and
// the whole CLI process), and each agent's resident memory.
func scale(ctx context.Context, args []string) error {
	fs := newFlags("scale")
	n := fs.Int("nodes", 64, "agents")
	calls := fs.Int("calls", 100, "`ssi nodes` calls to time")
	extraArgs := fs.String("agent-args", "", "extra agent flags, space separated")
	fs.Parse(args)
	bin, cleanup, err := buildBinary(ctx)
	if err != nil {
		return err
	}
	defer cleanup()
	dir, err := os.MkdirTemp("", "ssi-scale")
	if err != nil {
		return err
	}
	ok := false
	defer func() {
		if ok && os.Getenv("SSI_BENCH_KEEP") == "" {
			os.RemoveAll(dir)
		} else {
			fmt.Fprintln(os.Stderr, "bench: agents' logs kept in", dir)
		}
	}()
	addr := func(i int) string { return fmt.Sprintf("127.200.%d.%d", i/250, 1+i%250) }
	var procs []*exec.Cmd
	defer func() {
		for _, p := range procs {
			p.Process.Kill()
			p.Wait()
		}
	}()
	start := func(i int, extra ...string) error {
		nd := filepath.Join(dir, fmt.Sprintf("n%d", i))
		if err := os.MkdirAll(nd, 0o700); err != nil {
			return err
		}
		log, err := os.Create(filepath.Join(nd, "agent.log"))
		if err != nil {
			return err
		}
		argv := append([]string{"agent", "--config", os.DevNull, "--state-dir", filepath.Join(nd, "state"),
			"--socket", filepath.Join(nd, "s"), "--bind", addr(i), "--http", "", "--name", fmt.Sprintf("node%d", i+1), "--load-scope", "agent"}, extra...)
		argv = append(argv, strings.Fields(*extraArgs)...)
		cmd := exec.Command(bin, argv...)
		cmd.Stderr = log
		if err := cmd.Start(); err != nil {
			return err
		}
		procs = append(procs, cmd)
		return nil
	}
	sock := func(i int) string { return filepath.Join(dir, fmt.Sprintf("n%d", i), "s") }
	if out, err := exec.CommandContext(ctx, bin, "init", "--state-dir", filepath.Join(dir, "n0", "state"),
		"--cluster-name", "scale", "--name", "node1", "--advertise", addr(0)).CombinedOutput(); err != nil {
		return fmt.Errorf("init: %v: %s", err, out)
	}
	if err := start(0); err != nil {
		return err
	}
	c0 := client.New(sock(0))
	if err := waitMember(ctx, c0); err != nil {
		return err
	}
	// Every node joins with node 0's voter token (the first max_voters
	// vote, as in a cluster of servers), read from a 0600 file.
	tok, err := c0.CreateToken(ctx, api.TokenCreate{Voter: true, TTL: "1h", Description: "bench scale"})
	if err != nil {
		return err
	}
	tokFile := filepath.Join(dir, "join-token")
	if err := os.WriteFile(tokFile, []byte(tok.Secret+"\n"), 0o600); err != nil {
		return err
	}
	t0 := time.Now()
	for i := 1; i < *n; i++ {
		if err := start(i, "--join", addr(0), "--token-file", tokFile); err != nil {
			return err
		}
	}
	// Every agent must see every node up.
	var wg sync.WaitGroup
	done := make([]time.Duration, *n)
	errs := make([]error, *n)
	for i := 0; i < *n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl := client.New(sock(i))
			defer cl.Close()
			for {
				nodes, err := cl.Nodes(ctx)
				up := 0
				for _, nd := range nodes {
					if nd.State == api.StateUp {
						up++
					}
				}
				if err == nil && up == *n {
					done[i] = time.Since(t0)
					return
				}
				if ctx.Err() != nil || time.Since(t0) > time.Minute {
					errs[i] = fmt.Errorf("node%d: %d of %d up after %s (last error %v)", i+1, up, *n, time.Since(t0).Round(time.Second), err)
					return
				}
				time.Sleep(100 * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	formed := quantile(done, 1)
	// `ssi nodes` latency: the API call, and the whole CLI process.
	api := make([]time.Duration, 0, *calls)
	cli := make([]time.Duration, 0, *calls)
	for k := 0; k < *calls; k++ {
		t := time.Now()
		if _, err := c0.Nodes(ctx); err != nil {
			return err
		}
		api = append(api, time.Since(t))
		t = time.Now()
		if out, err := exec.CommandContext(ctx, bin, "--socket", sock(k%*n), "nodes").CombinedOutput(); err != nil {
			return fmt.Errorf("ssi nodes: %v: %s", err, out)
		}
		cli = append(cli, time.Since(t))
	}
	var rss []int
	for _, p := range procs {
		rss = append(rss, rssKB(p.Process.Pid))
	}
	sumRSS, maxRSS := 0, 0
	for _, r := range rss {
		sumRSS += r
		maxRSS = max(maxRSS, r)
	}
	fmt.Printf("\nscale: %d agents on loopback addresses, %d cores\n", *n, numCPU())
	fmt.Printf("%-38s %s\n", "all agents see all nodes up (max)", ms(formed))
	fmt.Printf("%-38s %s\n", "  (p50 over agents)", ms(quantile(done, .5)))
	fmt.Printf("%-38s p50 %s  p99 %s\n", "`ssi nodes` API call", msf(quantile(api, .5)), msf(quantile(api, .99)))
	fmt.Printf("%-38s p50 %s  p99 %s\n", "`ssi nodes` whole CLI process", msf(quantile(cli, .5)), msf(quantile(cli, .99)))
	fmt.Printf("%-38s mean %.1f MiB  max %.1f MiB\n", "resident memory per agent", float64(sumRSS)/float64(len(rss))/1024, float64(maxRSS)/1024)
	fmt.Println("targets: formation <= 10 s, `ssi nodes` <= 100 ms")
	ok = true
	return nil
}

func msf(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }

func waitMember(ctx context.Context, c *client.Client) error {
	for t := time.Now(); time.Since(t) < time.Minute; time.Sleep(50 * time.Millisecond) {
		if s, err := c.Self(ctx); err == nil && s.Member {
			return nil
		}
	}
	return fmt.Errorf("the first agent did not become a member")
}

func rssKB(pid int) int {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return kb
		}
	}
	return 0
}
