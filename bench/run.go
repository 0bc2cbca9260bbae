package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/ssi-cluster/ssi/internal/harness"
)

// runBench measures `ssi run` beside a local run and OpenSSH, on one
// namespace cluster: (a) latency of a remote /bin/true, (b) throughput of
// a stream through a remote cat, (c) `ssi ps` over many processes, (d)
// `ssi run --np 64 /bin/true` over 4 nodes.
func runBench(ctx context.Context, args []string) error {
	fs := newFlags("run")
	reps := fs.Int("reps", 200, "runs of /bin/true per method")
	size := fs.Int64("size", 2048, "MiB through cat")
	procs := fs.Int("procs", 1000, "sleeping processes per node for the ps measurement")
	np := fs.Int("np", 64, "instances for the --np measurement")
	fs.Parse(args)
	if !harness.Root() {
		return errors.New("run needs root (namespace cluster, sshd)")
	}
	if _, err := os.Stat("/usr/sbin/sshd"); err != nil {
		return errors.New("no /usr/sbin/sshd: apt-get install openssh-server openssh-client")
	}
	c, stop, err := startCluster(ctx, 5, "--allow-remote-root", "true")
	if err != nil {
		return err
	}
	defer stop()
	ssh, stopSSH, err := startSSHD(ctx, c, 2)
	if err != nil {
		return err
	}
	defer stopSSH()
	ssi := []string{c.Binary, "--socket", c.Nodes[0].Socket, "run", "--node", "2", "--"}
	methods := []struct {
		name string
		argv []string
	}{
		{"local (node 1)", nil},
		{"ssi run --node 2", ssi},
		{"ssh node2", ssh},
	}
	fmt.Printf("ssi run vs local vs OpenSSH %s, 5-node namespace cluster, %d CPUs\n\n", sshVersion(), numCPU())

	fmt.Printf("(a) /bin/true, %d runs each (from node 1)\n", *reps)
	fmt.Printf("%-22s %10s %10s %10s\n", "method", "p50", "p99", "max")
	var p50 = map[string]time.Duration{}
	for _, m := range methods {
		inNode(ctx, c, 1, 5, 0, append(m.argv, "/bin/true")...) // warm up
		r, err := inNode(ctx, c, 1, *reps, 0, append(m.argv, "/bin/true")...)
		if err != nil {
			return err
		}
		p50[m.name] = quantile(r.Runs, 0.5)
		fmt.Printf("%-22s %10s %10s %10s\n", m.name, msf(quantile(r.Runs, 0.5)), msf(quantile(r.Runs, 0.99)), msf(quantile(r.Runs, 1)))
	}
	fmt.Printf("target: ssi p50 at most 5 ms and at most a tenth of ssh's (%.1f%% of ssh here)\n\n",
		100*float64(p50["ssi run --node 2"])/float64(p50["ssh node2"]))

	bytes := *size << 20
	fmt.Printf("(b) %d MiB through cat (stdin to stdout, from node 1)\n", *size)
	fmt.Printf("%-22s %10s %12s\n", "method", "time", "rate")
	rates := map[string]float64{}
	for _, m := range methods {
		r, err := inNode(ctx, c, 1, 1, bytes, append(m.argv, "cat")...)
		if err != nil {
			return err
		}
		if r.Bytes != bytes {
			return fmt.Errorf("%s: %d bytes came out of cat, %d went in", m.name, r.Bytes, bytes)
		}
		rate := float64(bytes) / r.Runs[0].Seconds() / 1e9
		rates[m.name] = rate
		fmt.Printf("%-22s %10s %9.2f GB/s\n", m.name, msf(r.Runs[0]), rate)
	}
	fmt.Printf("target: ssi at least 1 GB/s and twice ssh (%.1fx ssh here)\n\n", rates["ssi run --node 2"]/rates["ssh node2"])

	if err := psPart(ctx, c, *procs); err != nil {
		return err
	}

	// (d) over 4 nodes: node 5 leaves first, once the cluster is whole
	// again after the ps load.
	if err := c.WaitFormed(ctx); err != nil {
		return err
	}
	if _, err := c.CLI(ctx, 5, "node", "leave"); err != nil {
		return fmt.Errorf("node 5 leaving: %w", err)
	}
	c.StopAgent(ctx, 5)
	fmt.Printf("(d) ssi run --np %d /bin/true over 4 nodes (from node 1)\n", *np)
	npArgv := []string{c.Binary, "--socket", c.Nodes[0].Socket, "run", "--np", strconv.Itoa(*np), "/bin/true"}
	inNode(ctx, c, 1, 1, 0, npArgv...)
	r, err := inNode(ctx, c, 1, 10, 0, npArgv...)
	if err != nil {
		return err
	}
	fmt.Printf("wall time p50 %s, max %s over %d runs\n", msf(quantile(r.Runs, 0.5)), msf(quantile(r.Runs, 1)), len(r.Runs))
	return nil
}

// psPart times `ssi ps` (the whole CLI process, from node 1) with procs
// sleeping processes on every node.
func psPart(ctx context.Context, c *harness.Cluster, procs int) error {
	stop, err := fillNodes(ctx, c, procs)
	if err != nil {
		return err
	}
	defer stop()
	r, err := inNode(ctx, c, 1, 50, 0, c.Binary, "--socket", c.Nodes[0].Socket, "ps")
	if err != nil {
		return err
	}
	fmt.Printf("(c) ssi ps over %d nodes x %d processes: whole CLI p50 %s, p99 %s (target 100 ms)\n\n",
		len(c.Nodes), procs, msf(quantile(r.Runs, 0.5)), msf(quantile(r.Runs, 0.99)))
	return nil
}

// startSSHD starts OpenSSH's sshd inside node i with a throwaway host key
// and client key, and returns the ssh command line that reaches it.
func startSSHD(ctx context.Context, c *harness.Cluster, i int) ([]string, func(), error) {
	dir, err := os.MkdirTemp("", "ssi-bench-ssh")
	if err != nil {
		return nil, nil, err
	}
	cleanup := func() { os.RemoveAll(dir) }
	for _, k := range []string{"host", "client"} {
		if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", filepath.Join(dir, k)).CombinedOutput(); err != nil {
			cleanup()
			return nil, nil, fmt.Errorf("ssh-keygen: %v: %s", err, out)
		}
	}
	pub, _ := os.ReadFile(filepath.Join(dir, "client.pub"))
	os.WriteFile(filepath.Join(dir, "authorized_keys"), pub, 0o600)
	cfg := fmt.Sprintf("Port 2222\nListenAddress %s\nHostKey %s/host\nAuthorizedKeysFile %s/authorized_keys\nPermitRootLogin yes\nUsePAM no\nStrictModes no\nPidFile %s/sshd.pid\nPrintMotd no\nLogLevel ERROR\n",
		c.Nodes[i-1].Addr, dir, dir, dir)
	os.WriteFile(filepath.Join(dir, "sshd_config"), []byte(cfg), 0o600)
	os.MkdirAll("/run/sshd", 0o755)
	sshd := c.Command(i, "/usr/sbin/sshd", "-D", "-e", "-f", filepath.Join(dir, "sshd_config"))
	sshd.Stderr = os.Stderr
	if err := sshd.Start(); err != nil {
		cleanup()
		return nil, nil, err
	}
	stop := func() { sshd.Process.Kill(); sshd.Wait(); cleanup() }
	argv := []string{"ssh", "-i", filepath.Join(dir, "client"), "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
		"-o", "LogLevel=ERROR", "-o", "BatchMode=yes", "-p", "2222", "root@" + c.Nodes[i-1].Addr}
	err = c.WaitFor(ctx, "sshd to answer", func() (bool, error) {
		_, err := inNode(ctx, c, 1, 1, 0, append(argv, "true")...)
		return err == nil, err
	})
	if err != nil {
		stop()
		return nil, nil, err
	}
	return argv, stop, nil
}

func sshVersion() string {
	out, _ := exec.Command("ssh", "-V").CombinedOutput()
	if len(out) > 0 && out[len(out)-1] == '\n' {
		out = out[:len(out)-1]
	}
	return string(out)
}
