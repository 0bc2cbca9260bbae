package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ssi-cluster/ssi/internal/api"
	"github.com/ssi-cluster/ssi/internal/harness"
	"github.com/ssi-cluster/ssi/internal/vproc"
)

// psBench times `ssi ps` over a namespace cluster whose every node runs
// many processes: the API call (all nodes asked in parallel over the
// control channel) and the whole CLI process. To tell where the time goes
// it also times the API call for one node (node 1 answers from its own
// table; node 2 over one gRPC hop), the client's decoding of the answer
// apart from the call, `ssi nodes` as the CLI's own start-up, and the CPU
// each agent spends per call beside what it spends idle; -profile keeps
// CPU profiles of two agents.
func psBench(ctx context.Context, args []string) error {
	fs := newFlags("ps")
	nodes := fs.Int("nodes", 5, "cluster size")
	per := fs.Int("procs", 1000, "sleeping processes per node")
	calls := fs.Int("calls", 50, "`ssi ps` calls to time")
	profile := fs.String("profile", "", "write CPU profiles of node 1's and node 2's agents during the all-node calls to this `directory`")
	fs.Parse(args)
	if !harness.Root() {
		return errors.New("ps needs root (namespace cluster)")
	}
	c, stop, err := startCluster(ctx, *nodes)
	if err != nil {
		return err
	}
	defer stop()
	stopSleepers, err := fillNodes(ctx, c, *per)
	if err != nil {
		return err
	}
	defer stopSleepers()
	agents, err := agentPids(c)
	if err != nil {
		return err
	}

	// What the agents spend while nobody asks (load sampling, gossip,
	// raft), so that it can be told apart from what the calls cost.
	idle := 3 * time.Second
	cpuIdle0, err := cpuSeconds(agents)
	if err != nil {
		return err
	}
	time.Sleep(idle)
	cpuIdle1, err := cpuSeconds(agents)
	if err != nil {
		return err
	}

	// The API call as the client makes it: the request, then decoding.
	hc := unixClient(c.Nodes[0].Socket)
	defer hc.CloseIdleConnections()
	procs := func(query string) (answer, decode time.Duration, listed int, err error) {
		t := time.Now()
		body, err := get(ctx, hc, "/v1/procs"+query)
		if err != nil {
			return 0, 0, 0, err
		}
		answer, t = time.Since(t), time.Now()
		var r api.ProcsReply
		if err := json.Unmarshal(body, &r); err != nil {
			return 0, 0, 0, err
		}
		return answer, time.Since(t), len(r.Procs), nil
	}

	var all, answer, decode, cli, nodesCLI, one, remote []time.Duration
	profiled := make(chan error, 2)
	if *profile != "" {
		for _, n := range c.Nodes[:min(2, len(c.Nodes))] {
			go func() { profiled <- profileAgent(ctx, n, *profile, 5) }()
		}
	}
	start := time.Now()
	cpu0, err := cpuSeconds(agents)
	if err != nil {
		return err
	}
	listed := 0
	for k := 0; k < *calls; k++ {
		a, d, n, err := procs("")
		if err != nil {
			return err
		}
		all, answer, decode, listed = append(all, a+d), append(answer, a), append(decode, d), n
	}
	cpu1, err := cpuSeconds(agents)
	if err != nil {
		return err
	}
	busy := time.Since(start)
	if *profile != "" {
		for range min(2, len(c.Nodes)) {
			if err := <-profiled; err != nil {
				return err
			}
		}
	}
	for k := 0; k < *calls; k++ {
		a, d, _, err := procs("?node=1")
		if err != nil {
			return err
		}
		one = append(one, a+d)
		if *nodes > 1 {
			if a, d, _, err = procs("?node=2"); err != nil {
				return err
			}
			remote = append(remote, a+d)
		}
		for _, cmd := range []string{"ps", "nodes"} {
			t := time.Now()
			if out, err := exec.CommandContext(ctx, c.Binary, "--socket", c.Nodes[0].Socket, cmd).CombinedOutput(); err != nil {
				return fmt.Errorf("ssi %s: %v: %s", cmd, err, out)
			}
			if cmd == "ps" {
				cli = append(cli, time.Since(t))
			} else {
				nodesCLI = append(nodesCLI, time.Since(t))
			}
		}
	}

	row := func(what string, ds []time.Duration) {
		fmt.Printf("%-42s p50 %9s  p99 %9s\n", what, msf(quantile(ds, .5)), msf(quantile(ds, .99)))
	}
	fmt.Printf("\n`ssi ps`: %d nodes, %d processes listed, %d calls\n", *nodes, listed, *calls)
	row("API call (all nodes)", all)
	row("  the agent's answer, received", answer)
	row("  the client's JSON decoding of it", decode)
	row(fmt.Sprintf("API call, node 1 only (%d, local table)", *per), one)
	if len(remote) > 0 {
		row(fmt.Sprintf("API call, node 2 only (%d, one gRPC hop)", *per), remote)
	}
	row("whole CLI process (table)", cli)
	row("  `ssi nodes` (start-up, one small call)", nodesCLI)
	fmt.Printf("agent CPU per all-node call (idle use taken off):")
	for i := range agents {
		rate := (cpuIdle1[i] - cpuIdle0[i]) / idle.Seconds()
		fmt.Printf(" node %d %.1f ms;", i+1, 1000*(cpu1[i]-cpu0[i]-rate*busy.Seconds())/float64(*calls))
	}
	fmt.Println()
	fmt.Printf("idle agent CPU:")
	for i := range agents {
		fmt.Printf(" node %d %.1f ms/s;", i+1, 1000*(cpuIdle1[i]-cpuIdle0[i])/idle.Seconds())
	}
	fmt.Println()
	if *profile != "" {
		fmt.Printf("agent CPU profiles: %s/node1.pprof, node2.pprof (go tool pprof -top FILE)\n", *profile)
	}
	fmt.Println("target: at most 100 ms")
	return nil
}

// unixClient is an HTTP client of the agent on socket.
func unixClient(socket string) *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", socket)
	}}}
}

// get GETs path from an agent.
func get(ctx context.Context, hc *http.Client, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://ssi"+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s: %s", path, resp.Status, body)
	}
	return body, nil
}

// profileAgent writes a CPU profile of n's agent over the next seconds to
// dir/<node name>.pprof.
func profileAgent(ctx context.Context, n *harness.Node, dir string, seconds int) error {
	hc := unixClient(n.Socket)
	defer hc.CloseIdleConnections()
	b, err := get(ctx, hc, "/debug/pprof/profile?seconds="+strconv.Itoa(seconds))
	if err != nil {
		return fmt.Errorf("profile of %s: %w", n.Name, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, n.Name+".pprof"), b, 0o644)
}

// agentPids finds the process of each node's agent, as this machine's
// /proc shows it: the binary run as agent with the node's socket (not the
// nsenter that started it).
func agentPids(c *harness.Cluster) ([]int, error) {
	table, err := vproc.Table("/proc")
	if err != nil {
		return nil, err
	}
	pids := make([]int, len(c.Nodes))
	for i, n := range c.Nodes {
		for _, p := range table {
			if strings.HasPrefix(p.Cmdline, c.Binary+" agent ") && strings.Contains(p.Cmdline, " "+n.Socket+" ") {
				pids[i] = p.Pid
			}
		}
		if pids[i] == 0 {
			return nil, fmt.Errorf("no agent process with socket %s", n.Socket)
		}
	}
	return pids, nil
}

// cpuSeconds is the user and system time of each process.
func cpuSeconds(pids []int) ([]float64, error) {
	out := make([]float64, len(pids))
	for i, pid := range pids {
		p, ok := vproc.Lookup("/proc", pid)
		if !ok {
			return nil, fmt.Errorf("agent process %d has ended", pid)
		}
		out[i] = p.CPUTime
	}
	return out, nil
}
