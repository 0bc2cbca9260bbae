package itest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/ssi-cluster/ssi/internal/agent"
	"github.com/ssi-cluster/ssi/internal/harness"
	"github.com/ssi-cluster/ssi/internal/pki"
	"github.com/ssi-cluster/ssi/internal/state"
	"github.com/ssi-cluster/ssi/internal/transport"
)

// These tests feed the ssi binary bad input: bad configuration, an
// unreachable cluster, broken or full state directories. Each must end the
// command with a non-zero status and a message that names the problem.

// procResult is what a finished command left behind.
type procResult struct {
	stdout, stderr string
	code           int  // exit status; -1 when killed by a signal
	timedOut       bool // it did not exit in time and was killed
}

// runProc runs cmd in a process group of its own, killing the group if it
// has not exited within limit.
func runProc(t *testing.T, cmd *exec.Cmd, limit time.Duration) procResult {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", strings.Join(cmd.Args, " "), err)
	}
	var killed atomic.Bool
	pgid := cmd.Process.Pid
	timer := time.AfterFunc(limit, func() {
		killed.Store(true)
		syscall.Kill(-pgid, syscall.SIGKILL)
	})
	cmd.Wait()
	timer.Stop()
	return procResult{stdout: stdout.String(), stderr: stderr.String(),
		code: cmd.ProcessState.ExitCode(), timedOut: killed.Load()}
}

// wantFailure checks that r is a refusal within the time limit whose stderr
// holds every one of want.
func wantFailure(t *testing.T, what string, r procResult, want ...string) {
	t.Helper()
	switch {
	case r.timedOut:
		t.Errorf("%s: still running at the time limit (killed); stderr:\n%s", what, r.stderr)
		return
	case r.code == 0:
		t.Errorf("%s: exited 0, want a failure; stderr:\n%s", what, r.stderr)
		return
	}
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	t.Logf("%s: exit %d: %s", what, r.code, lines[len(lines)-1])
	for _, w := range want {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("%s: exit status %d, stderr does not mention %q:\n%s", what, r.code, w, r.stderr)
		}
	}
}

// skipIfOpenPanics fails the test when the agent panicked in its clean-up
// after a failed start (agent.New once called closeAll on a nil *Agent).
func skipIfOpenPanics(t *testing.T, r procResult) {
	t.Helper()
	if strings.Contains(r.stderr, "panic: runtime error: invalid memory address or nil pointer dereference") &&
		strings.Contains(r.stderr, "agent.(*Agent).closeAll") {
		t.Fatalf("the agent panicked instead of naming the cause:\n%s", r.stderr)
	}
}

// cleanEnv is the test's environment without SSI_* variables, plus extra.
func cleanEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SSI_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// shortTemp is a new temporary directory with a short path (Unix socket
// paths are limited to 107 bytes), removed at the end of the test.
func shortTemp(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "ssit")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// freePorts returns n TCP ports of 127.0.0.1 that were free a moment ago.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	var lns []net.Listener
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	for _, ln := range lns {
		ln.Close()
	}
	return ports
}

// localAgentArgs are the arguments of an agent on 127.0.0.1 with free ports
// and no HTTP listener, so that one that wrongly starts cannot disturb
// anything.
func localAgentArgs(t *testing.T, stateDir, socket string, extra ...string) []string {
	p := freePorts(t, 3)
	args := []string{"agent", "--config", os.DevNull, "--state-dir", stateDir, "--socket", socket,
		"--bind", "127.0.0.1", "--advertise", "127.0.0.1", "--gossip-port", strconv.Itoa(p[0]),
		"--rpc-port", strconv.Itoa(p[1]), "--raft-port", strconv.Itoa(p[2]), "--http", ""}
	return append(args, extra...)
}

// ssiInit runs `ssi init` for a new cluster in dir and fails the test if it
// does not succeed.
func ssiInit(t *testing.T, dir, cluster, name, advertise string) {
	t.Helper()
	cmd := exec.Command(binary, "init", "--state-dir", dir, "--cluster-name", cluster, "--name", name, "--advertise", advertise)
	cmd.Env = cleanEnv()
	if r := runProc(t, cmd, 30*time.Second); r.code != 0 {
		t.Fatalf("ssi init --state-dir %s: exit %d: %s", dir, r.code, r.stderr)
	}
}

// TestAgentRefusesBadConfig: a bad configuration file, environment variable
// or flag stops the agent before it touches its state directory, with a
// message naming the file or key.
func TestAgentRefusesBadConfig(t *testing.T) {
	cases := []struct {
		name  string
		file  string   // contents of the config file; "" for --config /dev/null
		path  string   // a --config path to use instead of a file made from file
		env   []string // extra environment
		flags []string // extra flags
		want  []string // "$FILE" stands for the config file's path
	}{
		{name: "unknown key", file: "colour = \"red\"\n", want: []string{"$FILE", "unknown key colour"}},
		{name: "misspelt key", file: "rpc_prot = 7000\n", want: []string{"$FILE", "rpc_prot"}},
		{name: "syntax error", file: "rpc_port = \n", want: []string{"$FILE", "line 1"}},
		{name: "unclosed table", file: "[agent\n", want: []string{"$FILE"}},
		{name: "wrong type", file: "rpc_port = \"abc\"\n", want: []string{"$FILE", "rpc_port"}},
		{name: "port out of range", file: "rpc_port = 70000\n", want: []string{"rpc_port", "70000"}},
		{name: "same ports", file: "rpc_port = 7000\nraft_port = 7000\n", want: []string{"must differ"}},
		{name: "bad log level", file: "log_level = \"loud\"\n", want: []string{"log_level", "loud"}},
		{name: "probe timeout not below interval", file: "probe_timeout = \"1s\"\n", want: []string{"probe_timeout", "probe_interval"}},
		{name: "bad duration", file: "probe_interval = \"fast\"\n", want: []string{"$FILE", "probe_interval"}},
		{name: "missing file", path: "/nonexistent/ssi-agent.toml", want: []string{"/nonexistent/ssi-agent.toml", "no such file"}},
		{name: "env not a number", env: []string{"SSI_RPC_PORT=abc"}, want: []string{"SSI_RPC_PORT", "abc"}},
		{name: "env bad duration", env: []string{"SSI_RAFT_HEARTBEAT=soon"}, want: []string{"SSI_RAFT_HEARTBEAT"}},
		{name: "env bad value", env: []string{"SSI_LOG_FORMAT=xml"}, want: []string{"log_format", "xml"}},
		{name: "unknown flag", flags: []string{"--frobnicate"}, want: []string{"unknown flag", "--frobnicate"}},
		{name: "flag not a number", flags: []string{"--rpc-port", "abc"}, want: []string{"--rpc-port", "abc"}},
		{name: "flag bad address", flags: []string{"--bind", "not-an-ip"}, want: []string{"bind", "not-an-ip"}},
		{name: "flag bad name", flags: []string{"--name", "no spaces please"}, want: []string{"name"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := shortTemp(t)
			cfg := tc.path
			if cfg == "" {
				cfg = os.DevNull
				if tc.file != "" {
					cfg = filepath.Join(dir, "agent.toml")
					if err := os.WriteFile(cfg, []byte(tc.file), 0o644); err != nil {
						t.Fatal(err)
					}
				}
			}
			stateDir := filepath.Join(dir, "state")
			args := append([]string{"agent", "--config", cfg, "--state-dir", stateDir,
				"--socket", filepath.Join(dir, "s"), "--http", ""}, tc.flags...)
			cmd := exec.Command(binary, args...)
			cmd.Env = cleanEnv(tc.env...)
			r := runProc(t, cmd, 30*time.Second)
			var want []string
			for _, w := range tc.want {
				want = append(want, strings.ReplaceAll(w, "$FILE", cfg))
			}
			wantFailure(t, "ssi "+strings.Join(args, " "), r, want...)
			if _, err := os.Stat(stateDir); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("a bad configuration got as far as the state directory (stat: %v)", err)
			}
		})
	}
}

// TestAgentUnreachableJoin: joining through an address nobody answers on
// fails with a message naming the address, and leaves no identity behind.
func TestAgentUnreachableJoin(t *testing.T) {
	dir := shortTemp(t)
	closed := freePorts(t, 1)[0]
	join := net.JoinHostPort("127.0.0.1", strconv.Itoa(closed))
	token := "ssi1." + strings.Repeat("ab", 16) + "." + strings.Repeat("cd", 32)
	if _, err := pki.ParseToken(token); err != nil {
		t.Fatalf("the test's token does not parse: %v", err)
	}
	stateDir := filepath.Join(dir, "state")
	args := localAgentArgs(t, stateDir, filepath.Join(dir, "s"), "--name", "lonely", "--join", join)
	cmd := exec.Command(binary, args...)
	cmd.Env = append(cleanEnv(), "SSI_TOKEN="+token)
	r := runProc(t, cmd, 30*time.Second)
	wantFailure(t, "agent joining through a closed port", r, "could not join", join)
	for _, f := range []string{agent.IdentityFile, pki.CACertFile, pki.NodeCertFile} {
		if _, err := os.Stat(filepath.Join(stateDir, f)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("after a failed join the state directory holds %s (stat: %v)", f, err)
		}
	}
}

// mountTmpfs mounts a tmpfs of the given size on a new directory, with
// flags (e.g. unix.MS_RDONLY), and unmounts it at the end of the test.
func mountTmpfs(t *testing.T, flags uintptr, size string) string {
	t.Helper()
	dir := shortTemp(t)
	if err := unix.Mount("tmpfs", dir, "tmpfs", flags, "size="+size); err != nil {
		t.Fatalf("mount tmpfs on %s: %v", dir, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// fill writes random bytes to path until the file system is full.
func fill(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	rand.Read(buf)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling %s: %v", path, err)
			}
			break
		}
	}
	// A last partial page, if the file system takes one.
	for {
		if _, err := f.Write(buf[:1]); err != nil {
			break
		}
	}
}

func entries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

// TestStateDirProblems: a read-only or full state directory, and corrupt
// files in one, stop `ssi init` and `ssi agent` with a message naming the
// cause or the file.
func TestStateDirProblems(t *testing.T) {
	initDir := func(t *testing.T, dir string) procResult {
		cmd := exec.Command(binary, "init", "--state-dir", dir, "--cluster-name", "c", "--name", "n1", "--advertise", "127.0.0.1")
		cmd.Env = cleanEnv()
		return runProc(t, cmd, 30*time.Second)
	}
	runAgent := func(t *testing.T, stateDir string) procResult {
		cmd := exec.Command(binary, localAgentArgs(t, stateDir, filepath.Join(shortTemp(t), "s"))...)
		cmd.Env = cleanEnv()
		return runProc(t, cmd, 30*time.Second)
	}

	t.Run("read-only init", func(t *testing.T) {
		needRoot(t)
		mnt := mountTmpfs(t, unix.MS_RDONLY, "1m")
		wantFailure(t, "ssi init on a read-only file system", initDir(t, filepath.Join(mnt, "state")), "read-only file system")
	})
	t.Run("read-only agent", func(t *testing.T) {
		needRoot(t)
		mnt := mountTmpfs(t, 0, "1m")
		state := filepath.Join(mnt, "state")
		if r := initDir(t, state); r.code != 0 {
			t.Fatalf("ssi init: exit %d: %s", r.code, r.stderr)
		}
		if err := unix.Mount("", mnt, "", unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
			t.Fatalf("remount read-only: %v", err)
		}
		wantFailure(t, "ssi agent on a read-only state directory", runAgent(t, state), "read-only file system")
	})
	t.Run("full disk", func(t *testing.T) {
		needRoot(t)
		// 1 MiB rather than a few KiB: a state directory must have room for
		// the 64 KiB write probe of agent.CheckStateDir once the filler goes.
		mnt := mountTmpfs(t, 0, "1m")
		filler := filepath.Join(mnt, "filler")
		fill(t, filler)
		wantFailure(t, "ssi init on a full file system", initDir(t, mnt), "no space left on device")
		if got := entries(t, mnt); len(got) != 1 || got[0] != "filler" {
			t.Errorf("the failed init left %v behind (want only the filler)", got)
		}
		if err := os.Remove(filler); err != nil {
			t.Fatal(err)
		}
		if r := initDir(t, mnt); r.code != 0 {
			t.Fatalf("ssi init after freeing space: exit %d: %s", r.code, r.stderr)
		}
		if _, err := agent.LoadIdentity(mnt); err != nil {
			t.Errorf("after init: %v", err)
		}
		if _, err := pki.LoadBundle(mnt); err != nil {
			t.Errorf("after init: %v", err)
		}
		// The same for the agent: a full disk stops it, its identity intact.
		before, err := os.ReadFile(filepath.Join(mnt, agent.IdentityFile))
		if err != nil {
			t.Fatal(err)
		}
		fill(t, filler)
		wantFailure(t, "ssi agent on a full file system", runAgent(t, mnt), "no space left on device")
		after, err := os.ReadFile(filepath.Join(mnt, agent.IdentityFile))
		if err != nil || !bytes.Equal(before, after) {
			t.Errorf("node.json changed by the failed start: before %s, after %s (%v)", before, after, err)
		}
	})

	other := shortTemp(t)
	ssiInit(t, other, "other", "o1", "127.0.0.1")
	otherFile := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(other, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	corrupt := []struct {
		name string
		file string
		data []byte // nil: remove the file
		mode string // "dir": make the file a directory
		want []string
	}{
		{name: "node.json not JSON", file: agent.IdentityFile, data: []byte("{not json"), want: []string{"node.json"}},
		{name: "node.json empty object", file: agent.IdentityFile, data: []byte("{}\n"), want: []string{"node.json"}},
		{name: "node.json truncated", file: agent.IdentityFile, data: []byte(""), want: []string{"node.json"}},
		{name: "node.json a directory", file: agent.IdentityFile, mode: "dir", want: []string{"node.json"}},
		{name: "node.pem garbage", file: pki.NodeCertFile, data: []byte("garbage\n"), want: []string{"node.pem"}},
		{name: "node.pem missing", file: pki.NodeCertFile, want: []string{"node.pem"}},
		{name: "node.pem of another cluster", file: pki.NodeCertFile, data: otherFile(pki.NodeCertFile), want: []string{"node.pem"}},
		{name: "node-key.pem garbage", file: pki.NodeKeyFile, data: []byte("-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n"), want: []string{"node-key.pem"}},
		{name: "ca.pem garbage", file: pki.CACertFile, data: []byte{0, 1, 2, 3}, want: []string{"ca.pem"}},
		{name: "ca-key.pem of another cluster", file: pki.CAKeyFile, data: otherFile(pki.CAKeyFile), want: []string{"ca-key.pem"}},
		{name: "gossip.key short", file: pki.GossipKeyFile, data: []byte("abcd\n"), want: []string{"gossip.key"}},
		{name: "raft a file", file: "raft", data: []byte("not a directory"), want: []string{"raft"}},
	}
	for _, tc := range corrupt {
		t.Run(tc.name, func(t *testing.T) {
			state := filepath.Join(shortTemp(t), "state")
			if r := initDir(t, state); r.code != 0 {
				t.Fatalf("ssi init: exit %d: %s", r.code, r.stderr)
			}
			path := filepath.Join(state, tc.file)
			if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				t.Fatal(err)
			}
			var err error
			switch {
			case tc.mode == "dir":
				err = os.Mkdir(path, 0o700)
			case tc.data != nil:
				err = os.WriteFile(path, tc.data, 0o600)
			}
			if err != nil {
				t.Fatal(err)
			}
			r := runAgent(t, state)
			skipIfOpenPanics(t, r)
			wantFailure(t, "ssi agent with "+tc.name, r, tc.want...)
		})
	}
}

// TestAgentAddressInUse: an agent whose port or socket is taken says which
// and exits.
func TestAgentAddressInUse(t *testing.T) {
	cases := []struct {
		name string
		busy string // "gossip", "rpc", "raft", "http" or "socket"
		want []string
	}{
		{"gossip port", "gossip", []string{"address already in use"}},
		{"rpc port", "rpc", []string{"rpc listener", "address already in use"}},
		{"raft port", "raft", []string{"raft listener", "address already in use"}},
		{"http port", "http", []string{"http listener", "address already in use"}},
		{"socket of a running agent", "socket", []string{"another agent is already running"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := shortTemp(t)
			state, sock := filepath.Join(dir, "state"), filepath.Join(dir, "s")
			ssiInit(t, state, "c", "n1", "127.0.0.1")
			p := freePorts(t, 4)
			var ln io.Closer
			var err error
			switch tc.busy {
			case "gossip":
				ln, err = net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p[0])))
			case "rpc":
				ln, err = net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p[1])))
			case "raft":
				ln, err = net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p[2])))
			case "http":
				ln, err = net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p[3])))
			case "socket":
				ln, err = net.Listen("unix", sock)
			}
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			cmd := exec.Command(binary, "agent", "--config", os.DevNull, "--state-dir", state, "--socket", sock,
				"--bind", "127.0.0.1", "--advertise", "127.0.0.1", "--gossip-port", strconv.Itoa(p[0]),
				"--rpc-port", strconv.Itoa(p[1]), "--raft-port", strconv.Itoa(p[2]),
				"--http", net.JoinHostPort("127.0.0.1", strconv.Itoa(p[3])))
			cmd.Env = cleanEnv()
			r := runProc(t, cmd, 30*time.Second)
			skipIfOpenPanics(t, r)
			wantFailure(t, "ssi agent with its "+tc.name+" taken", r, tc.want...)
		})
	}
}

// garbageCodec is a gRPC codec whose requests are not JSON.
type garbageCodec struct{ body []byte }

func (g garbageCodec) Marshal(any) ([]byte, error) { return g.body, nil }

func (garbageCodec) Unmarshal(data []byte, v any) error {
	return errors.New("garbageCodec: unexpected answer " + strconv.Quote(string(data)))
}

func (garbageCodec) Name() string { return "garbage" }

// readUntilClosed reads from c until the peer closes it or limit passes;
// it reports whether the peer closed it.
func readUntilClosed(c net.Conn, limit time.Duration) (bool, error) {
	c.SetReadDeadline(time.Now().Add(limit))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return false, err
	}
	return true, err
}

// registryOnAll is the agreed part of `ssi nodes` and the epoch, as each
// node sees them.
func registryOnAll(t *testing.T, ctx context.Context, c *harness.Cluster) []string {
	t.Helper()
	var out []string
	for _, n := range c.Nodes {
		nodes, err := c.ListNodes(ctx, n.Index)
		if err != nil {
			t.Fatal(err)
		}
		cl, err := c.ClusterInfo(ctx, n.Index)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("node %d: epoch %d %+v", n.Index, cl.Epoch, agreed(nodes)))
	}
	return out
}

// TestMalformedRPC: garbage on a node's RPC port, in clear or inside TLS
// with a valid member certificate, and nonsensical replicated-state
// commands are refused without changing anything or stopping an agent.
func TestMalformedRPC(t *testing.T) {
	c, ctx := loopbackCluster(t, 2)
	var master int
	err := c.WaitFor(ctx, "a master", func() (bool, error) {
		m, err := masterOf(ctx, c, 1)
		master = m
		return err == nil, err
	})
	if err != nil {
		t.Fatal(err)
	}
	follower := 3 - master
	rpcAddr := func(i int) string { return net.JoinHostPort(c.Nodes[i-1].Addr, "7947") }
	member, err := pki.LoadBundle(c.Nodes[1].StateDir)
	if err != nil {
		t.Fatal(err)
	}
	cliTLS, err := member.ClientTLS()
	if err != nil {
		t.Fatal(err)
	}
	pool := transport.NewPool(cliTLS)
	defer pool.Close()
	pingAll := func(t *testing.T) {
		t.Helper()
		for _, n := range c.Nodes {
			cl, err := pool.Client(rpcAddr(n.Index), transport.Control)
			if err != nil {
				t.Fatal(err)
			}
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			resp, err := cl.Ping(cctx)
			cancel()
			if err != nil || resp.Number != n.Index {
				t.Errorf("ping %s: %+v, %v", n.Name, resp, err)
			}
		}
	}
	pingAll(t)
	before := registryOnAll(t, ctx, c)

	t.Run("raw TCP garbage", func(t *testing.T) {
		for range 4 {
			conn, err := net.DialTimeout("tcp", rpcAddr(master), 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 64<<10)
			rand.Read(buf)
			conn.Write(buf) // the server may hang up half way
			conn.Close()
		}
		// A clear-text HTTP/2 client on the TLS port.
		conn, err := net.DialTimeout("tcp", rpcAddr(master), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.Write([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"))
		if closed, err := readUntilClosed(conn, 60*time.Second); !closed {
			t.Errorf("a clear-text HTTP/2 connection is still open: %v", err)
		}
		pingAll(t)
	})

	t.Run("silent connection is closed", func(t *testing.T) {
		conn, err := net.DialTimeout("tcp", rpcAddr(master), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if closed, err := readUntilClosed(conn, 60*time.Second); !closed {
			t.Errorf("a connection that never starts the TLS handshake is still open: %v", err)
		}
	})

	t.Run("garbage inside TLS", func(t *testing.T) {
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", rpcAddr(master), cliTLS)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		buf := make([]byte, 64<<10)
		rand.Read(buf)
		conn.Write(buf)
		if closed, err := readUntilClosed(conn, 60*time.Second); !closed {
			t.Errorf("a TLS connection carrying garbage is still open: %v", err)
		}
		pingAll(t)
	})

	cc, err := grpc.NewClient("passthrough:///"+rpcAddr(master), grpc.WithTransportCredentials(credentials.NewTLS(cliTLS)))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	invoke := func(method string, body []byte) error {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		return cc.Invoke(cctx, method, struct{}{}, new(json.RawMessage), grpc.ForceCodec(garbageCodec{body}))
	}

	t.Run("malformed bodies", func(t *testing.T) {
		random := make([]byte, 512)
		rand.Read(random)
		common := [][]byte{random, []byte("{"), []byte(`{"a":`), []byte("[1,2]"), []byte(`"text"`), {0xff, 0xfe, 0}}
		perMethod := map[string][][]byte{
			transport.MethodPing:    common,
			transport.MethodJoin:    append(common, []byte(`{"secret":"not base64!"}`), []byte(`{"gossip_port":"x"}`)),
			transport.MethodForward: append(common, []byte(`{"command":5}`), []byte(`{"command":"%%%"}`)),
		}
		for method, bodies := range perMethod {
			for _, b := range bodies {
				if err := invoke(method, b); status.Code(err) != codes.InvalidArgument {
					t.Errorf("%s with body %q: %v, want InvalidArgument", method, b, err)
				}
			}
		}
	})

	t.Run("oversized body", func(t *testing.T) {
		big := bytes.Repeat([]byte("["), transport.MaxMessage+1024)
		if err := invoke(transport.MethodForward, big); status.Code(err) != codes.ResourceExhausted {
			t.Errorf("Forward with a %d byte body: %v, want ResourceExhausted", len(big), err)
		}
	})

	t.Run("unknown method", func(t *testing.T) {
		if err := invoke("/ssi.v1.Cluster/Explode", []byte("{}")); status.Code(err) != codes.Unimplemented {
			t.Errorf("unknown method: %v, want Unimplemented", err)
		}
	})

	t.Run("nonsense commands", func(t *testing.T) {
		cl, err := pool.Client(rpcAddr(master), transport.Control)
		if err != nil {
			t.Fatal(err)
		}
		cmds := []string{
			`{"op":"transition","number":99,"kind":"down"}`,
			`{"op":"transition","number":-1,"kind":"down"}`,
			`{"op":"transition","number":1,"kind":"explode"}`,
			`{"op":"transition","number":1,"kind":"join"}`,
			`{"op":"transition","number":2,"kind":"return"}`,
			`{"op":"nope"}`,
			`{}`,
			`{"op":"register"}`,
			`{"op":"register","node":{"name":"ghost"}}`,
			`{"op":"init","cluster":"other"}`,
			`{"op":"init"}`,
			`not json`,
			``,
			`{"op":"nope","reason":"` + strings.Repeat("x", 70<<10) + `"}`,
		}
		for _, cmd := range cmds {
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			resp, err := cl.Forward(cctx, &transport.ForwardRequest{Command: []byte(cmd)})
			cancel()
			short := cmd
			if len(short) > 80 {
				short = short[:80] + "..."
			}
			if err != nil {
				// Malformed: InvalidArgument; well formed but not this
				// member's to commit: PermissionDenied (state.MayForward).
				if c := status.Code(err); c != codes.InvalidArgument && c != codes.PermissionDenied {
					t.Errorf("Forward %s: %v, want InvalidArgument, PermissionDenied or an error result", short, err)
				}
				continue
			}
			var res state.Result
			if err := json.Unmarshal(resp.Result, &res); err != nil {
				t.Errorf("Forward %s: result %q: %v", short, resp.Result, err)
				continue
			}
			if res.Error == "" && resp.Error == "" {
				t.Errorf("Forward %s was applied: %s", short, resp.Result)
			}
		}
	})

	t.Run("forward to a follower", func(t *testing.T) {
		cl, err := pool.Client(rpcAddr(follower), transport.Control)
		if err != nil {
			t.Fatal(err)
		}
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		_, err = cl.Forward(cctx, &transport.ForwardRequest{Command: []byte(`{"op":"nope"}`)})
		if status.Code(err) != codes.FailedPrecondition {
			t.Errorf("Forward to follower node %d: %v, want FailedPrecondition", follower, err)
		}
	})

	if after := registryOnAll(t, ctx, c); !reflect.DeepEqual(before, after) {
		t.Errorf("the registry changed:\nbefore %v\nafter  %v", before, after)
	}
	for _, n := range c.Nodes {
		if _, err := c.AgentPID(n.Index); err != nil {
			t.Errorf("%s: %v", n.Name, err)
		}
		cl, err := c.Client(n.Index)
		if err != nil {
			t.Fatal(err)
		}
		if self, err := cl.Self(ctx); err != nil || !self.Member {
			t.Errorf("%s's socket: %+v, %v", n.Name, self, err)
		}
	}
	pingAll(t)
}
