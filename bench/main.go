// Command bench is ssi's benchmark harness: it runs real agents on this
// machine (package harness), measures, and prints a table. Benchmarks run
// on demand, never in CI:
//
//	go run ./bench detect [-reps 20] [-nodes 5]   node-down detection (root: namespaces)
//	go run ./bench soak [-duration 10m]           no false down under CPU saturation (root)
//	go run ./bench scale [-nodes 64]              formation time, `ssi nodes` latency, memory
//	go run ./bench ps [-nodes 5 -procs 1000]      `ssi ps` latency over many processes (root)
//	go run ./bench run [-reps 200 -size 2048]     ssi run beside local and OpenSSH: latency,
//	                                              throughput, ps, --np (root)
//	go run ./bench runsoak [-n 10000]             agent goroutines, fds, memory over many runs (root)
//	go run ./bench migrate [-sizes 100,1024,4096 -rates 0,10,100]
//	                                              live migration: freeze and total time, rates (root)
//	go run ./bench restart [-procs 200]           agents restarted under running `ssi run` processes:
//	                                              processes and output lost, re-attach time (root)
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"syscall"
	"time"

	"github.com/ssi-cluster/ssi/internal/harness"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	var err error
	switch os.Args[1] {
	case "detect":
		err = detect(ctx, os.Args[2:])
	case "soak":
		err = soak(ctx, os.Args[2:])
	case "scale":
		err = scale(ctx, os.Args[2:])
	case "ps":
		err = psBench(ctx, os.Args[2:])
	case "run":
		err = runBench(ctx, os.Args[2:])
	case "runsoak":
		err = runSoak(ctx, os.Args[2:])
	case "migrate":
		err = migrateBench(ctx, os.Args[2:])
	case "restart":
		err = restartBench(ctx, os.Args[2:])
	case counterCmd:
		err = counter(os.Args[2:])
	case loopCmd:
		err = loop(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: go run ./bench detect|soak|scale|ps|run|runsoak|migrate|restart [flags]  (-h for flags)")
	os.Exit(2)
}

func newFlags(name string) *flag.FlagSet { return flag.NewFlagSet(name, flag.ExitOnError) }

// buildBinary builds ssi into a temporary directory, or returns the binary
// SSI_BENCH_BINARY names.
func buildBinary(ctx context.Context) (string, func(), error) {
	if bin := os.Getenv("SSI_BENCH_BINARY"); bin != "" {
		return bin, func() {}, nil // kept, so that a profiler can read its symbols
	}
	dir, err := os.MkdirTemp("", "ssi-bench-bin")
	if err != nil {
		return "", nil, err
	}
	bin, err := harness.BuildBinary(ctx, dir)
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	return bin, func() { os.RemoveAll(dir) }, nil
}

// startCluster builds ssi and starts a formed namespace cluster of n nodes.
// The returned stop closes the cluster and removes the binary.
func startCluster(ctx context.Context, n int, agentArgs ...string) (*harness.Cluster, func(), error) {
	bin, cleanup, err := buildBinary(ctx)
	if err != nil {
		return nil, nil, err
	}
	opts := harness.Options{Nodes: n, Binary: bin, Namespaces: true, AgentArgs: agentArgs}
	if os.Getenv("SSI_BENCH_KEEP") != "" { // keep the agents' logs
		if opts.Dir, err = os.MkdirTemp("", "ssi-bench-cluster"); err != nil {
			cleanup()
			return nil, nil, err
		}
		fmt.Fprintln(os.Stderr, "bench: the cluster's directory (kept):", opts.Dir)
	}
	c, err := harness.Start(ctx, opts)
	if err != nil {
		cleanup()
		return nil, nil, err
	}
	stop := func() { c.Close(); cleanup() }
	if err := c.WaitFormed(ctx); err != nil {
		stop()
		return nil, nil, err
	}
	return c, stop, nil
}

// quantile returns the q-quantile (0..1) of ds by nearest rank.
func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	k := int(q*float64(len(s)) + 0.999999)
	if k < 1 {
		k = 1
	}
	if k > len(s) {
		k = len(s)
	}
	return s[k-1]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond)) }
