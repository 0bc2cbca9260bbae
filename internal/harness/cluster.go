package harness

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ssi-cluster/ssi/internal/api"
	"github.com/ssi-cluster/ssi/internal/client"
)

// Options configure Start.
type Options struct {
	Nodes       int
	Binary      string    // the ssi binary; when empty, Start builds one with BuildBinary
	Namespaces  bool      // namespace mode (needs root); false: loopback mode
	CPUShare    float64   // when > 0, the share of one CPU each node's processes may use
	Dir         string    // base directory; default a new temporary directory, removed by Close
	ClusterName string    // default "dev"
	AgentArgs   []string  // extra arguments for every agent
	Log         io.Writer // if not nil, also gets the nodes' log lines, prefixed "node N: "
	ID          string    // 1-8 of [0-9a-z], used in namespace and cgroup names; default 4 random hex digits
	// Members makes nodes 2..N join with a member token (they never vote
	// nor hold the CA key); by default they join with a voter token, so
	// that the first max_voters nodes vote, as a cluster of servers does.
	Members bool

	// testAgent, when set, replaces the agent's command line, and Start
	// neither runs `ssi init` nor waits for sockets: tests of the
	// harness's own plumbing use it to run without a working agent.
	testAgent func(n *Node) []string
}

// Node is where one node of the cluster lives. Its fields do not change.
type Node struct {
	Index    int    `json:"index"` // 1-based
	Name     string `json:"name"`  // node<Index>, also its hostname in namespace mode
	Addr     string `json:"addr"`
	Dir      string `json:"dir"` // Dir/node<Index>
	StateDir string `json:"state_dir"`
	Socket   string `json:"socket"`
	HTTP     string `json:"http"`             // the agent's --http address (inside the node)
	Log      string `json:"log"`              // the node's log: its init's and agent's stderr
	Netns    string `json:"netns,omitempty"`  // namespace mode: its network namespace
	Cgroup   string `json:"cgroup,omitempty"` // with a CPU share: its cgroup directory
}

// Cluster is a running harness cluster. Its methods number nodes from 1 and
// may be called from several goroutines.
type Cluster struct {
	Nodes      []*Node // Nodes[i-1] is node i
	Dir        string
	ID         string
	Namespaces bool
	Hub        string // namespace mode: the network namespace of the bridge
	Binary     string

	opts      Options
	ownDir    bool             // Dir was made by Start, Close removes it
	buildDir  string           // holds the binary Start built
	netnsMade bool             // the hub namespace was made by this cluster
	cgroupTop string           // ssi-<ID> cgroup made by this cluster
	tokenFile string           // the join token nodes 2..N join with (mode 0600)
	clients   []*client.Client // clients[i-1] talks to node i's agent
	logMu     sync.Mutex       // leaf: serializes lines to opts.Log

	mu      sync.Mutex
	run     []nodeRun // run[i-1] is node i's run state
	devFile string    // written by WriteDevFile, removed by Close
	closed  bool
}

// nodeRun is the changing state of one node, guarded by Cluster.mu.
type nodeRun struct {
	init   *proc // namespace mode: the node's init, nil while the node is down
	agent  *proc // the last agent started, nil before the first
	joined bool  // an agent was started with --join once
	killed time.Time
	fault  faultState
}

// manyNodes is the cluster size above which agents get slower probes.
const manyNodes = 16

const (
	httpPort    = "7949"
	maxSockPath = 107 // sun_path less its terminating NUL
)

// Root reports whether the harness can use namespace mode.
func Root() bool { return os.Geteuid() == 0 }

// BuildBinary builds ./cmd/ssi (and ./cmd/ssi-hold beside it) of the module around the working directory
// into outDir/ssi and returns its path.
func BuildBinary(ctx context.Context, outDir string) (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		if filepath.Dir(dir) == dir {
			return "", errors.New("build ssi: no go.mod in the working directory or above it")
		}
		dir = filepath.Dir(dir)
	}
	abs, err := filepath.Abs(outDir)
	if err != nil {
		return "", err
	}
	// ssi-hold goes beside ssi, where the agent looks for it.
	cmd := exec.CommandContext(ctx, "go", "build", "-o", abs+"/", "./cmd/ssi", "./cmd/ssi-hold")
	cmd.Dir = dir
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/ssi ./cmd/ssi-hold: %v\n%s", err, b)
	}
	return filepath.Join(abs, "ssi"), nil
}

// Start makes the nodes, runs `ssi init` in node 1 and starts the agents,
// node 1's first, each other joining through node 1 once the one before is
// a member, so that node i gets number i in the cluster. It returns when
// all are members. On error it removes everything it made.
func Start(ctx context.Context, o Options) (_ *Cluster, err error) {
	if o.Nodes < 1 || o.Nodes > 254 {
		return nil, fmt.Errorf("harness: %d nodes: want 1 to 254", o.Nodes)
	}
	if o.ID == "" {
		o.ID = randomID()
	} else if !validID(o.ID) {
		return nil, fmt.Errorf("harness: ID %q: want 1 to 8 of [0-9a-z]", o.ID)
	}
	if o.ClusterName == "" {
		o.ClusterName = "dev"
	}
	if o.Namespaces {
		if !Root() {
			return nil, errors.New("harness: namespace mode needs root (or use loopback mode)")
		}
		for _, tool := range []string{"ip", "nsenter"} {
			if _, err := exec.LookPath(tool); err != nil {
				return nil, fmt.Errorf("harness: namespace mode needs %s (iproute2, util-linux): %w", tool, err)
			}
		}
	}
	c := &Cluster{ID: o.ID, Namespaces: o.Namespaces, Binary: o.Binary, opts: o, run: make([]nodeRun, o.Nodes)}
	defer func() {
		if err != nil {
			err = errors.Join(err, c.Close())
		}
	}()
	if c.Binary == "" {
		if c.buildDir, err = os.MkdirTemp("", "ssi-bin-"); err != nil {
			return nil, err
		}
		if c.Binary, err = BuildBinary(ctx, c.buildDir); err != nil {
			return nil, err
		}
	}
	if err := c.makeDirs(); err != nil {
		return nil, err
	}
	if o.Namespaces {
		c.Hub = hubNetns(c.ID)
		if err := ip(ctx, "netns", "add", c.Hub); err != nil {
			return nil, err // perhaps another cluster's: leave it alone
		}
		c.netnsMade = true
		if err := setupNetwork(ctx, c.ID, o.Nodes); err != nil {
			return nil, err
		}
	}
	if o.CPUShare > 0 {
		top, dirs, err := makeCgroups(c.ID, o.Nodes, o.CPUShare)
		c.cgroupTop = top
		if err != nil {
			return nil, fmt.Errorf("harness: cpu share: %w", err)
		}
		for i, n := range c.Nodes {
			n.Cgroup = dirs[i]
		}
	}
	if o.Namespaces {
		for i := range c.Nodes {
			if err := c.bootNode(ctx, i+1); err != nil {
				return nil, err
			}
		}
	}
	if o.testAgent != nil {
		for i := range c.Nodes {
			if err := c.launchAgent(i + 1); err != nil {
				return nil, err
			}
		}
		return c, nil
	}
	if err := c.initCluster(ctx); err != nil {
		return nil, err
	}
	// One at a time, so that node i is number i in the cluster's registry.
	for i := 1; i <= len(c.Nodes); i++ {
		if err := c.launchAgent(i); err != nil {
			return nil, err
		}
		if err := c.waitAgent(ctx, i, true); err != nil {
			return nil, err
		}
		if i == 1 && len(c.Nodes) > 1 {
			if err := c.makeJoinToken(ctx); err != nil {
				return nil, err
			}
		}
	}
	return c, nil
}

// makeJoinToken has node 1 make the token the other nodes join with, as
// an operator would (ssi token create), and keeps it in a 0600 file: no
// command line carries it.
func (c *Cluster) makeJoinToken(ctx context.Context) error {
	tok, err := c.clients[0].CreateToken(ctx, api.TokenCreate{Voter: !c.opts.Members, TTL: "24h",
		Description: "harness: nodes 2-" + strconv.Itoa(len(c.Nodes))})
	if err != nil {
		return fmt.Errorf("making the join token on node 1: %w", err)
	}
	path := filepath.Join(c.Dir, "join-token")
	if err := os.WriteFile(path, []byte(tok.Secret+"\n"), 0o600); err != nil {
		return err
	}
	c.tokenFile = path
	return nil
}

// TokenFile is the file holding the token nodes 2..N joined with.
func (c *Cluster) TokenFile() string { return c.tokenFile }

func randomID() string {
	b := make([]byte, 2)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// makeDirs makes Dir and the nodes' directories and fills in Nodes.
func (c *Cluster) makeDirs() error {
	var err error
	if c.opts.Dir == "" {
		c.Dir, err = os.MkdirTemp("", "ssi-"+c.opts.ClusterName+"-")
		c.ownDir = err == nil
		if err == nil {
			// Every user may reach the agents' sockets, as /run/ssi on a real
			// node; the state directories inside stay 0700.
			err = os.Chmod(c.Dir, 0o755)
		}
	} else {
		c.Dir, err = filepath.Abs(c.opts.Dir)
	}
	if err != nil {
		return err
	}
	for i := 1; i <= c.opts.Nodes; i++ {
		dir := filepath.Join(c.Dir, nodeName(i))
		n := &Node{
			Index: i, Name: nodeName(i), Dir: dir,
			StateDir: filepath.Join(dir, "state"),
			Socket:   filepath.Join(dir, "agent.sock"),
			Log:      filepath.Join(dir, "agent.log"),
			Addr:     loopbackAddr(c.ID, i),
		}
		n.HTTP = n.Addr + ":" + httpPort
		if c.Namespaces {
			n.Addr, n.Netns = bridgeAddr(c.ID, i), nodeNetns(c.ID, i)
			n.HTTP = "127.0.0.1:" + httpPort // the node's own loopback
		}
		if len(n.Socket) > maxSockPath {
			return fmt.Errorf("harness: socket path %s is too long for a Unix socket: use a shorter Dir", n.Socket)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		c.Nodes = append(c.Nodes, n)
		c.clients = append(c.clients, client.New(n.Socket))
	}
	return nil
}

// bootNode starts node i's init and waits until it has set the node up.
func (c *Cluster) bootNode(ctx context.Context, i int) error {
	n := c.Nodes[i-1]
	ready, readyW, err := os.Pipe()
	if err != nil {
		return err
	}
	defer ready.Close()
	out, err := c.openLog(n)
	if err != nil {
		readyW.Close()
		return err
	}
	argv := inCgroup(n, []string{"ip", "netns", "exec", n.Netns,
		c.Binary, "__nodeinit", "--hostname", n.Name, "--ready-fd", "3"})
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.ExtraFiles = []*os.File{readyW}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: syscall.CLONE_NEWPID | syscall.CLONE_NEWNS | syscall.CLONE_NEWUTS | syscall.CLONE_NEWIPC,
	}
	p, err := startProc(cmd, out)
	readyW.Close()
	if err != nil {
		return fmt.Errorf("boot %s: %w", n.Name, err)
	}
	got := make(chan []byte, 1)
	go func() { b, _ := io.ReadAll(ready); got <- b }()
	select {
	case b := <-got:
		if string(b) == "ok\n" {
			break
		}
		p.killGroup(syscall.SIGKILL)
		<-p.done
		return fmt.Errorf("boot %s: init failed: %v\n%s", n.Name, p.err, tail(n.Log, 10))
	case <-ctx.Done():
		p.killGroup(syscall.SIGKILL)
		return fmt.Errorf("boot %s: %w", n.Name, ctx.Err())
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		p.killGroup(syscall.SIGKILL)
		return errors.New("harness: cluster closed")
	}
	c.run[i-1].init = p
	return nil
}

func (c *Cluster) openLog(n *Node) (*logWriter, error) {
	return openLog(n.Log, c.opts.Log, &c.logMu, fmt.Sprintf("node %d: ", n.Index))
}

// initCluster runs `ssi init` in node 1.
func (c *Cluster) initCluster(ctx context.Context) error {
	n := c.Nodes[0]
	if _, err := c.runIn(ctx, 1, c.Binary, "init", "--state-dir", n.StateDir, "--cluster-name", c.opts.ClusterName,
		"--name", n.Name, "--advertise", n.Addr); err != nil {
		return fmt.Errorf("ssi init: %w", err)
	}
	return nil
}

// launchAgent starts node i's agent; the first start of a node other than
// node 1 joins node 1.
func (c *Cluster) launchAgent(i int) error {
	n := c.Nodes[i-1]
	c.mu.Lock()
	r := &c.run[i-1]
	join := i > 1 && !r.joined
	initPID := 0
	if r.init != nil {
		initPID = r.init.pid()
	}
	c.mu.Unlock()
	argv := []string{c.Binary, "agent", "--config", os.DevNull, "--state-dir", n.StateDir, "--socket", n.Socket,
		"--bind", n.Addr, "--advertise", n.Addr, "--http", n.HTTP, "--name", n.Name}
	if !c.Namespaces {
		// Agents sharing one machine count only the processes they started.
		argv = append(argv, "--load-scope", "agent")
	}
	if len(c.Nodes) > manyNodes {
		// The default sub-second detection assumes a CPU per agent; this
		// many agents on one machine would starve each other into false
		// failures (docs/benchmarks.md), so probe less often.
		argv = append(argv, "--probe-interval", "500ms", "--probe-timeout", "250ms", "--suspicion-mult", "4")
	}
	if join {
		argv = append(argv, "--join", c.Nodes[0].Addr, "--token-file", c.tokenFile)
	}
	argv = append(argv, c.opts.AgentArgs...)
	if c.Namespaces {
		// As the shipped systemd unit does (Nice=-10): the failure
		// detector must answer while the node's processes saturate it.
		argv = append([]string{"nice", "-n", "-10"}, argv...)
	}
	if c.opts.testAgent != nil {
		argv = c.opts.testAgent(n)
	}
	cmd := nodeCommand(n, initPID, argv[0], argv[1:]...)
	cmd.Dir = n.Dir
	cmd.Env = agentEnv(os.Environ())
	out, err := c.openLog(n)
	if err != nil {
		return err
	}
	p, err := startProc(cmd, out)
	if err != nil {
		return fmt.Errorf("start %s's agent: %w", n.Name, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		p.killGroup(syscall.SIGKILL)
		return errors.New("harness: cluster closed")
	}
	r.agent, r.joined = p, r.joined || join
	return nil
}

// agentEnv is env without the SSI_* variables, which would configure the
// agents (the harness configures them with flags, and --config /dev/null
// keeps the host's /etc/ssi/agent.toml out).
func agentEnv(env []string) []string {
	return slices.DeleteFunc(slices.Clone(env), func(kv string) bool { return strings.HasPrefix(kv, "SSI_") })
}

// waitAgent waits until node i's agent answers on its socket and, if
// member, is a member of the cluster. It fails at once if the agent exits.
func (c *Cluster) waitAgent(ctx context.Context, i int, member bool) error {
	n := c.Nodes[i-1]
	c.mu.Lock()
	p := c.run[i-1].agent
	c.mu.Unlock()
	what := fmt.Sprintf("%s's agent to answer on %s", n.Name, n.Socket)
	if member {
		what = fmt.Sprintf("%s's agent to be a member", n.Name)
	}
	return c.WaitFor(ctx, what, func() (bool, error) {
		if p.exited() {
			return false, stopWaiting{fmt.Errorf("the agent exited (%v); %s ends with:\n%s", p.err, n.Log, tail(n.Log, 20))}
		}
		self, err := c.clients[i-1].Self(ctx)
		if err != nil {
			return false, err
		}
		if member && !self.Member {
			return false, fmt.Errorf("%s is not a member: %s", n.Name, self.Fenced)
		}
		return true, nil
	})
}

// runIn runs a command in node i and returns its output.
func (c *Cluster) runIn(ctx context.Context, i int, name string, args ...string) ([]byte, error) {
	cmd := c.Command(i, name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := runContext(ctx, cmd)
	if err != nil {
		return out, fmt.Errorf("%s: %w: %s", strings.Join(cmd.Args, " "), err, bytes.TrimSpace(stderr.Bytes()))
	}
	return out, nil
}

// runContext runs cmd, killing it if ctx ends first, and returns its stdout.
func runContext(ctx context.Context, cmd *exec.Cmd) ([]byte, error) {
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { cmd.Process.Kill() })
	err := cmd.Wait()
	if !stop() && ctx.Err() != nil {
		err = fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	return stdout.Bytes(), err
}

// Command is a command that runs name with args inside node i: in its
// namespaces and cgroup (with the node's view of processes, hostname and
// network), or on the host in loopback mode. Its error, if the node is
// unknown or down, comes from Start or Run.
func (c *Cluster) Command(i int, name string, args ...string) *exec.Cmd {
	n, err := c.node(i)
	if err != nil {
		cmd := exec.Command(name, args...)
		cmd.Err = err
		return cmd
	}
	return nodeCommand(n, c.initPID(i), name, args...)
}

// Shell is an interactive $SHELL (default /bin/sh) inside node i, with
// SSI_SOCKET set to the node's socket. The caller sets its stdio.
func (c *Cluster) Shell(i int) *exec.Cmd {
	n, err := c.node(i)
	if err != nil {
		cmd := exec.Command("/bin/sh")
		cmd.Err = err
		return cmd
	}
	return shellCommand(n, c.initPID(i))
}

// CLI runs `ssi --socket <node i's socket> args...` on the host and returns
// its stdout; the error carries the exit status and stderr.
func (c *Cluster) CLI(ctx context.Context, i int, args ...string) ([]byte, error) {
	n, err := c.node(i)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(c.Binary, append([]string{"--socket", n.Socket}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := runContext(ctx, cmd)
	if err != nil {
		return out, fmt.Errorf("ssi --socket %s %s: %w: %s", n.Socket, strings.Join(args, " "), err, bytes.TrimSpace(stderr.Bytes()))
	}
	return out, nil
}

// WaitFor calls cond every 20 ms until it returns true, or ctx ends; the
// error then names what was awaited and the last error cond returned.
func (c *Cluster) WaitFor(ctx context.Context, what string, cond func() (bool, error)) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		ok, err := cond()
		if ok && err == nil {
			return nil
		}
		var stop stopWaiting
		if errors.As(err, &stop) {
			return fmt.Errorf("waiting for %s: %w", what, stop.err)
		}
		if err != nil {
			last = err
		}
		select {
		case <-ctx.Done():
			if last != nil {
				return fmt.Errorf("waiting for %s: %w; last: %v", what, ctx.Err(), last)
			}
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		case <-tick.C:
		}
	}
}

// stopWaiting, returned by a condition, ends WaitFor at once with err.
type stopWaiting struct{ err error }

func (s stopWaiting) Error() string { return s.err.Error() }

// KillAgent kills node i's agent with SIGKILL and waits until it is gone;
// the rest of the node keeps running. KilledAt tells when it was killed.
func (c *Cluster) KillAgent(i int) error {
	p, pid, err := c.agentPID(i)
	if err != nil {
		return err
	}
	c.setKilled(i)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return fmt.Errorf("kill node %d's agent: %w", i, err)
	}
	if !p.wait(10 * time.Second) {
		return fmt.Errorf("node %d's agent (pid %d) did not exit after SIGKILL", i, pid)
	}
	return nil
}

// KillNode kills node i with SIGKILL: in namespace mode its init, so that
// every process of the node dies at once, as in a power cut; in loopback
// mode its agent.
func (c *Cluster) KillNode(i int) error {
	if !c.Namespaces {
		return c.KillAgent(i)
	}
	if _, err := c.node(i); err != nil {
		return err
	}
	c.mu.Lock()
	r := &c.run[i-1]
	init, agent := r.init, r.agent
	r.init = nil
	c.mu.Unlock()
	if init == nil || init.exited() {
		return fmt.Errorf("node %d is already down", i)
	}
	c.setKilled(i)
	init.killGroup(syscall.SIGKILL)
	for _, p := range []*proc{init, agent} {
		if p != nil && !p.wait(10*time.Second) {
			return fmt.Errorf("node %d: process %d did not exit after its node was killed", i, p.pid())
		}
	}
	return nil
}

func (c *Cluster) setKilled(i int) {
	c.mu.Lock()
	c.run[i-1].killed = time.Now()
	c.mu.Unlock()
}

// KilledAt is when node i's agent or node was last killed, zero if never.
func (c *Cluster) KilledAt(i int) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.run[i-1].killed
}

// StartAgent starts node i's agent again with its existing state directory,
// first booting the node again if it was killed, and waits until the agent
// answers on its socket.
func (c *Cluster) StartAgent(ctx context.Context, i int) error {
	if _, err := c.node(i); err != nil {
		return err
	}
	if _, _, err := c.agentPID(i); err == nil {
		return fmt.Errorf("node %d's agent is already running", i)
	}
	if c.Namespaces && c.initPID(i) == 0 {
		if err := c.bootNode(ctx, i); err != nil {
			return err
		}
		c.rewriteDevFile()
	}
	if err := c.launchAgent(i); err != nil {
		return err
	}
	if c.opts.testAgent != nil {
		return nil
	}
	return c.waitAgent(ctx, i, false)
}

// StopAgent sends node i's agent SIGTERM and waits for it to exit; if ctx
// ends first, it kills the agent.
func (c *Cluster) StopAgent(ctx context.Context, i int) error {
	p, pid, err := c.agentPID(i)
	if err != nil {
		return err
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		return fmt.Errorf("stop node %d's agent: %w", i, err)
	}
	select {
	case <-p.done:
		return nil
	case <-ctx.Done():
		syscall.Kill(pid, syscall.SIGKILL)
		<-p.done
		return fmt.Errorf("stop node %d's agent: killed after %w", i, ctx.Err())
	}
}

// AgentPID is the host pid of node i's running agent.
func (c *Cluster) AgentPID(i int) (int, error) {
	_, pid, err := c.agentPID(i)
	return pid, err
}

func (c *Cluster) agentPID(i int) (*proc, int, error) {
	if _, err := c.node(i); err != nil {
		return nil, 0, err
	}
	c.mu.Lock()
	p := c.run[i-1].agent
	c.mu.Unlock()
	if p == nil || p.exited() {
		return nil, 0, fmt.Errorf("node %d's agent is not running", i)
	}
	if !c.Namespaces {
		return p, p.pid(), nil // the process itself (a cgroup shell execs it)
	}
	pid, err := p.child() // nsenter forks the agent into the node
	return p, pid, err
}

// initPID is the host pid of node i's init, 0 when it is down or in
// loopback mode.
func (c *Cluster) initPID(i int) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p := c.run[i-1].init; p != nil && !p.exited() {
		return p.pid()
	}
	return 0
}

func (c *Cluster) node(i int) (*Node, error) {
	if i < 1 || i > len(c.Nodes) {
		return nil, fmt.Errorf("no node %d: the cluster has %d nodes", i, len(c.Nodes))
	}
	return c.Nodes[i-1], nil
}

// indexes lists the node numbers 1..N.
func (c *Cluster) indexes() []int {
	idx := make([]int, len(c.Nodes))
	for i := range idx {
		idx[i] = i + 1
	}
	return idx
}

// Close kills every process of the cluster and removes its namespaces,
// cgroups, dev file and, if Start made it, Dir. It can be called again.
func (c *Cluster) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	// Inits first: the kernel kills what is in their nodes while the nsenter
	// parents of the agents still live to reap them. Killed the other way
	// round, the agents are reparented to the host's init, and a dying
	// node init waits for it to reap them.
	var inits, agents []*proc
	for _, r := range c.run {
		inits, agents = append(inits, r.init), append(agents, r.agent)
	}
	devFile := c.devFile
	c.mu.Unlock()
	var errs []error
	for _, procs := range [][]*proc{inits, agents} {
		procs = slices.DeleteFunc(procs, func(p *proc) bool { return p == nil })
		for _, p := range procs {
			p.killGroup(syscall.SIGKILL)
		}
		for _, p := range procs {
			if !p.wait(10 * time.Second) {
				errs = append(errs, fmt.Errorf("process %d did not exit after SIGKILL", p.pid()))
			}
		}
	}
	if c.netnsMade {
		names, err := clusterNetns(c.ID)
		errs = append(errs, err, deleteNetns(names...))
	}
	if c.cgroupTop != "" {
		errs = append(errs, removeCgroup(c.cgroupTop))
	}
	if devFile != "" {
		if err := os.Remove(devFile); !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	for _, cl := range c.clients {
		cl.Close()
	}
	if c.ownDir {
		errs = append(errs, os.RemoveAll(c.Dir))
	}
	if c.buildDir != "" {
		errs = append(errs, os.RemoveAll(c.buildDir))
	}
	return errors.Join(errs...)
}
