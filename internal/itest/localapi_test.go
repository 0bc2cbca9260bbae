package itest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ssi-cluster/ssi/internal/api"
	"github.com/ssi-cluster/ssi/internal/harness"
)

// These tests are the attacks of a local user who is not root on the
// agent's socket (security issue 11): a huge body to /v1/restore, tens of
// thousands of idle connections, a /v1/run stream that never starts.
// Each is now refused with a message that says why, and the agent, root
// and the cluster go on. The attacker is this test binary run again as a
// helper (SSI_ITEST_HELPER, see runHelper) that drops to uid 65534.

const (
	nobodyUID     = 65534
	helperEnv     = "SSI_ITEST_HELPER"
	helperTimeout = 3 * time.Minute
)

// helperResult is what a helper prints (one JSON line).
type helperResult struct {
	Status       int    `json:"status,omitempty"`
	Error        string `json:"error,omitempty"`
	Written      int64  `json:"written,omitempty"`
	WriteErr     string `json:"write_err,omitempty"`
	StillWriting bool   `json:"still_writing,omitempty"`
	OK           int    `json:"ok,omitempty"`
	Refused      int    `json:"refused,omitempty"`
	Other        int    `json:"other,omitempty"`
	Refusal      string `json:"refusal,omitempty"`
	OtherErr     string `json:"other_err,omitempty"`
	ClosedAfter  string `json:"closed_after,omitempty"`
	Fail         string `json:"fail,omitempty"`
}

// runHelper runs helper mode (TestMain calls it when SSI_ITEST_HELPER is
// set) and returns the exit status.
func runHelper(mode string) int {
	var res helperResult
	var err error
	switch mode {
	case "post":
		res, err = helperPost()
	case "hold":
		res, err = helperHold()
	case "silent-run":
		res, err = helperSilentRun()
	case "big-headers":
		res, err = helperBigHeaders()
	default:
		err = fmt.Errorf("unknown helper mode %q", mode)
	}
	if err != nil {
		res.Fail = err.Error()
	}
	json.NewEncoder(os.Stdout).Encode(res)
	if mode == "hold" && err == nil {
		io.Copy(io.Discard, os.Stdin) // hold until the test closes stdin
	}
	return 0
}

// becomeNobody raises the open files limit to nofile (if not 0) and the
// file size limit to fsize (if not 0) while still root, then drops to uid
// and gid 65534 with no groups (every thread: Go's setuid does that).
func becomeNobody(nofile, fsize uint64) error {
	if nofile > 0 {
		// Up to the hard limit (raising that needs CAP_SYS_RESOURCE, which
		// a container may not give): the refused connections are closed as
		// they come, so the held ones and a few more are enough.
		var rl syscall.Rlimit
		if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
			return err
		}
		want := syscall.Rlimit{Cur: min(nofile, rl.Max), Max: rl.Max}
		if nofile > rl.Max {
			if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: nofile, Max: nofile}); err == nil {
				want = syscall.Rlimit{Cur: nofile, Max: nofile}
			}
		}
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err != nil {
			return fmt.Errorf("setrlimit nofile %d: %w", want.Cur, err)
		}
	}
	if fsize > 0 {
		if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &syscall.Rlimit{Cur: fsize, Max: fsize}); err != nil {
			return fmt.Errorf("setrlimit fsize %d: %w", fsize, err)
		}
	}
	if err := syscall.Setgroups(nil); err != nil {
		return err
	}
	if err := syscall.Setgid(nobodyUID); err != nil {
		return err
	}
	return syscall.Setuid(nobodyUID)
}

func envInt(name string) int64 {
	n, _ := strconv.ParseInt(os.Getenv(name), 10, 64)
	return n
}

// pattern is an endless stream of bytes: an "image" that is never held
// anywhere whole.
type pattern struct{}

func (pattern) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte('A' + i%26)
	}
	return len(p), nil
}

type countWriter struct {
	w io.Writer
	n atomic.Int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n.Add(int64(n))
	return n, err
}

// helperPost posts H_SIZE bytes to /v1/restore on H_SOCKET, with a
// Content-Length or (H_CHUNKED=1) chunked, as nobody with ulimit -f
// H_FSIZE (if set), reading the answer while it writes.
func helperPost() (helperResult, error) {
	var res helperResult
	size, chunked := envInt("H_SIZE"), os.Getenv("H_CHUNKED") == "1"
	if err := becomeNobody(0, uint64(envInt("H_FSIZE"))); err != nil {
		return res, err
	}
	conn, err := net.Dial("unix", os.Getenv("H_SOCKET"))
	if err != nil {
		return res, err
	}
	defer conn.Close()
	hdr := "POST /v1/restore HTTP/1.1\r\nHost: ssi\r\nContent-Type: application/octet-stream\r\n"
	if chunked {
		hdr += "Transfer-Encoding: chunked\r\n\r\n"
	} else {
		hdr += fmt.Sprintf("Content-Length: %d\r\n\r\n", size)
	}
	if _, err := io.WriteString(conn, hdr); err != nil {
		return res, err
	}
	cw := &countWriter{w: conn}
	done := make(chan error, 1)
	go func() {
		var w io.Writer = cw
		var chw io.WriteCloser
		if chunked {
			chw = httputil.NewChunkedWriter(cw)
			w = chw
		}
		_, err := io.Copy(w, io.LimitReader(pattern{}, size))
		if err == nil && chw != nil {
			if err = chw.Close(); err == nil {
				_, err = io.WriteString(cw, "\r\n")
			}
		}
		done <- err
	}()
	conn.SetReadDeadline(time.Now().Add(2 * time.Minute))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return res, fmt.Errorf("reading the answer: %w", err)
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	res.Status = resp.StatusCode
	var e api.Error
	json.Unmarshal(body, &e)
	res.Error = e.Error
	select {
	case err := <-done:
		if err != nil {
			res.WriteErr = err.Error()
		}
	case <-time.After(time.Minute):
		res.StillWriting = true
	}
	res.Written = cw.n.Load()
	return res, nil
}

// helperHold opens H_COUNT connections to H_SOCKET as nobody, makes one
// request on each and keeps those answered open (a request on each every
// 10 s, so that no idle timeout ends them), until stdin closes.
func helperHold() (helperResult, error) {
	var res helperResult
	n := int(envInt("H_COUNT"))
	if err := becomeNobody(uint64(n+4096), 0); err != nil {
		return res, err
	}
	type held struct {
		c  net.Conn
		br *bufio.Reader
	}
	var mu sync.Mutex
	var keep []held
	ask := func(c net.Conn, br *bufio.Reader) (int, string, error) {
		c.SetDeadline(time.Now().Add(time.Minute))
		// A refused connection has its answer waiting and is closed by
		// the time the request goes: the write fails, the answer is read.
		_, werr := io.WriteString(c, "GET /v1/self HTTP/1.1\r\nHost: ssi\r\n\r\n")
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return 0, "", errors.Join(werr, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, string(body), err
	}
	// The held ones are kept busy from the start, every 10 s (the agent
	// ends idle ones after 30 s), however long opening the others takes.
	go func() {
		for {
			time.Sleep(10 * time.Second)
			mu.Lock()
			hs := append([]held(nil), keep...)
			mu.Unlock()
			for _, h := range hs {
				ask(h.c, h.br)
			}
		}
	}()
	for i := 0; i < n; i++ {
		c, err := net.Dial("unix", os.Getenv("H_SOCKET"))
		if err != nil {
			res.Other++
			res.OtherErr = err.Error()
			continue
		}
		br := bufio.NewReader(c)
		code, body, err := ask(c, br)
		switch {
		case err == nil && code == http.StatusOK:
			res.OK++
			mu.Lock()
			keep = append(keep, held{c, br})
			mu.Unlock()
			continue
		case err == nil && code == http.StatusTooManyRequests:
			res.Refused++
			var e api.Error
			json.Unmarshal([]byte(body), &e)
			res.Refusal = e.Error
		default:
			res.Other++
			res.OtherErr = fmt.Sprintf("%d %v", code, err)
		}
		c.Close()
	}
	return res, nil
}

// helperSilentRun upgrades a request to /v1/run on H_SOCKET, as nobody,
// sends nothing more and says how long the agent took to close it.
func helperSilentRun() (helperResult, error) {
	var res helperResult
	if err := becomeNobody(0, 0); err != nil {
		return res, err
	}
	conn, err := net.Dial("unix", os.Getenv("H_SOCKET"))
	if err != nil {
		return res, err
	}
	defer conn.Close()
	req := "POST /v1/run HTTP/1.1\r\nHost: ssi\r\nConnection: Upgrade\r\nUpgrade: " + api.UpgradeExec + "\r\nContent-Length: 0\r\n\r\n"
	if _, err := io.WriteString(conn, req); err != nil {
		return res, err
	}
	br := bufio.NewReader(conn)
	conn.SetReadDeadline(time.Now().Add(2 * time.Minute))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return res, err
	}
	res.Status = resp.StatusCode
	if resp.StatusCode != http.StatusSwitchingProtocols {
		b, _ := io.ReadAll(resp.Body)
		res.Error = string(b)
		return res, nil
	}
	start := time.Now()
	_, err = io.Copy(io.Discard, br) // until the agent closes it, or our own bound
	res.ClosedAfter = time.Since(start).Round(time.Millisecond).String()
	if err != nil {
		res.Error = err.Error()
	}
	return res, nil
}

// helper is this test binary as a helper in mode, with env, in node i's
// namespaces (i > 0; its process must be visible to the agent) or on the
// host (i == 0).
func helper(c *harness.Cluster, i int, mode string, env ...string) *exec.Cmd {
	self, _ := os.Executable()
	var cmd *exec.Cmd
	if i > 0 {
		cmd = c.Command(i, self)
	} else {
		cmd = exec.Command(self)
	}
	cmd.Env = append(cleanEnv(helperEnv+"="+mode), env...)
	return cmd
}

// runHelperCmd runs a helper to its end and returns its result.
func runHelperCmd(t *testing.T, cmd *exec.Cmd) helperResult {
	t.Helper()
	r := runProc(t, cmd, helperTimeout)
	var res helperResult
	if r.timedOut || json.Unmarshal([]byte(r.stdout), &res) != nil {
		t.Fatalf("helper %s: exit %d, timed out %v, stdout %q, stderr %q", cmd.Env[len(cmd.Env)-1], r.code, r.timedOut, r.stdout, r.stderr)
	}
	if res.Fail != "" {
		t.Fatalf("helper failed: %s", res.Fail)
	}
	return res
}

// openToOthers lets other users reach the cluster's sockets and run its
// binary: the harness's own directories only (it removes them), never
// the system's; the test is skipped when a parent is closed to them.
func openToOthers(t *testing.T, c *harness.Cluster) {
	t.Helper()
	for _, n := range c.Nodes {
		for d := filepath.Dir(n.Socket); strings.HasPrefix(d, c.Dir); d = filepath.Dir(d) {
			if err := os.Chmod(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	for d := filepath.Dir(c.Dir); ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&0o001 == 0 {
			t.Skipf("%s is not searchable by other users; cannot test a non-root client", d)
		}
		if d == "/" {
			break
		}
	}
}

// vmRSS is a process's resident set in bytes.
func vmRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			kb, err := strconv.ParseInt(f[0], 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

// rssWatch samples pid's VmRSS every 50 ms until stop is called, which
// returns the largest seen.
func rssWatch(pid int) (stop func() int64) {
	var mu sync.Mutex
	var peak int64
	quit := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			if v, err := vmRSS(pid); err == nil {
				mu.Lock()
				peak = max(peak, v)
				mu.Unlock()
			}
			select {
			case <-quit:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	return func() int64 {
		close(quit)
		<-done
		mu.Lock()
		defer mu.Unlock()
		return peak
	}
}

const mib = 1 << 20

// TestRestoreRefusedBeforeRead: a user who is not root posts a 1.5 GiB
// "image" to /v1/restore. It is refused on its Content-Length (above
// max_image_size) before a byte is read, with a message that says so; the
// agent's memory does not move. The same with the user's own ulimit -f
// below the size; and a chunked body (no size said) is cut off at the
// limit, spooled on disk, never in memory, and nothing is left behind.
func TestRestoreRefusedBeforeRead(t *testing.T) {
	c, ctx := startCluster(t, 1, "--max-image-size", "256MiB")
	openToOthers(t, c)
	pid, err := c.AgentPID(1)
	if err != nil {
		t.Fatal(err)
	}
	sock := c.Nodes[0].Socket
	before, err := vmRSS(pid)
	if err != nil {
		t.Fatal(err)
	}
	stop := rssWatch(pid)
	res := runHelperCmd(t, helper(c, 1, "post", "H_SOCKET="+sock, fmt.Sprintf("H_SIZE=%d", 1536*mib)))
	peak := stop()
	after, _ := vmRSS(pid)
	t.Logf("1.5 GiB post as uid %d: %d %q; %d bytes written before the agent closed (%s); agent VmRSS %d KiB before, %d KiB peak, %d KiB after",
		nobodyUID, res.Status, res.Error, res.Written, res.WriteErr, before>>10, peak>>10, after>>10)
	if res.Status != http.StatusRequestEntityTooLarge || !strings.Contains(res.Error, "larger than 268435456 bytes, the agent's max_image_size") {
		t.Errorf("1.5 GiB post: %d %q; want 413, larger than max_image_size", res.Status, res.Error)
	}
	if res.StillWriting || res.Written >= 64*mib {
		t.Errorf("the agent read the body: %d bytes written (still writing: %v)", res.Written, res.StillWriting)
	}
	if peak-before > 50*mib {
		t.Errorf("agent VmRSS grew by %d MiB (from %d KiB to %d KiB)", (peak-before)/mib, before>>10, peak>>10)
	}

	// The caller's own file size limit.
	res = runHelperCmd(t, helper(c, 1, "post", "H_SOCKET="+sock, fmt.Sprintf("H_SIZE=%d", 128*mib), fmt.Sprintf("H_FSIZE=%d", 64*mib)))
	if res.Status != http.StatusRequestEntityTooLarge || !strings.Contains(res.Error, "your file size limit (ulimit -f)") || res.Written >= 64*mib {
		t.Errorf("128 MiB post with ulimit -f 64 MiB: %d %q, %d bytes written; want 413 naming ulimit -f, before reading", res.Status, res.Error, res.Written)
	}

	// No size said: read up to the limit, on disk, then cut off.
	stop = rssWatch(pid)
	res = runHelperCmd(t, helper(c, 1, "post", "H_SOCKET="+sock, fmt.Sprintf("H_SIZE=%d", 1536*mib), "H_CHUNKED=1"))
	peak = stop()
	t.Logf("1.5 GiB chunked post: %d %q; %d bytes written; agent VmRSS peak %d KiB", res.Status, res.Error, res.Written, peak>>10)
	if res.Status != http.StatusRequestEntityTooLarge || !strings.Contains(res.Error, "the image is larger than 268435456 bytes") {
		t.Errorf("1.5 GiB chunked post: %d %q; want 413, larger than the limit", res.Status, res.Error)
	}
	if res.StillWriting || res.Written > 512*mib {
		t.Errorf("the upload went on past the limit: %d bytes written (still writing: %v)", res.Written, res.StillWriting)
	}
	if peak-before > 50*mib {
		t.Errorf("agent VmRSS grew by %d MiB during the chunked post", (peak-before)/mib)
	}
	spool := filepath.Join(c.Nodes[0].StateDir, "spool")
	if ents, err := os.ReadDir(spool); err != nil || len(ents) != 0 {
		t.Errorf("spool %s after the uploads: %v, %v; want empty", spool, ents, err)
	}
	fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	for _, fd := range fds {
		if l, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name())); strings.Contains(l, "restore-") {
			t.Errorf("the agent still holds a spooled image: fd %s -> %s", fd.Name(), l)
		}
	}
	// The agent serves on, and its node stays up.
	if self, err := c.CLI(ctx, 1, "nodes"); err != nil {
		t.Errorf("ssi nodes after the uploads: %v (%s)", err, self)
	}
}

// TestIdleConnectionsCapped: a user who is not root opens 20,000
// connections to node 1's socket and keeps them. Past max_user_conns
// (1024) each is answered 429 with why and closed; root's `ssi nodes`
// still answers, `ssi run --node 1 true` from node 2 still works, the
// agent's descriptors stay bounded and its refusals are logged, rate
// limited, with the uid.
func TestIdleConnectionsCapped(t *testing.T) {
	c, ctx := startCluster(t, 2, "--allow-remote-root", "true")
	openToOthers(t, c)
	pid, err := c.AgentPID(1)
	if err != nil {
		t.Fatal(err)
	}
	const attack = 20000
	cmd := helper(c, 0, "hold", "H_SOCKET="+c.Nodes[0].Socket, fmt.Sprintf("H_COUNT=%d", attack))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	}()
	lines := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		lines <- line
	}()
	var res helperResult
	select {
	case line := <-lines:
		if err := json.Unmarshal([]byte(line), &res); err != nil || res.Fail != "" {
			t.Fatalf("holder: %q (%v) %s", line, err, stderr.String())
		}
	case <-time.After(helperTimeout):
		t.Fatalf("the holder did not report within %v: %s", helperTimeout, stderr.String())
	}
	t.Logf("uid %d opened %d connections: %d held, %d refused (%q), %d other (%s)", nobodyUID, attack, res.OK, res.Refused, res.Refusal, res.Other, res.OtherErr)
	if res.OK != 1024 || res.Refused+res.Other != attack-1024 || res.Other > attack/100 {
		t.Errorf("held %d, refused %d, other %d; want 1024 held (max_user_conns), the rest refused", res.OK, res.Refused, res.Other)
	}
	if !strings.Contains(res.Refusal, fmt.Sprintf("uid %d already holds 1024 connections", nobodyUID)) || !strings.Contains(res.Refusal, "max_user_conns") {
		t.Errorf("the refusal says %q; want the uid, the limit and max_user_conns", res.Refusal)
	}

	// Root, on node 1, and the cluster through node 1, go on.
	if b, err := c.CLI(ctx, 1, "nodes"); err != nil || !strings.Contains(string(b), "node2") {
		t.Errorf("root's ssi nodes on node 1 while attacked: %v\n%s", err, b)
	}
	if o := execIn(t, c, viaSSI(c, runSpec{on: 2, dir: "/", env: []string{"PATH=/usr/bin:/bin"}, argv: []string{"true"}}, 1)); o.code != 0 {
		t.Errorf("ssi run --node 1 true from node 2 while attacked: %v", o)
	}
	if o := execIn(t, c, runSpec{on: 1, dir: "/", env: []string{"PATH=/usr/bin:/bin"},
		argv: []string{c.Binary, "--socket", c.Nodes[0].Socket, "run", "--node", "2", "--", "echo", "ok"}}); o.code != 0 || o.stdout != "ok\n" {
		t.Errorf("ssi run --node 2 echo ok on node 1 while attacked: %v", o)
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("node 1's agent holds %d descriptors while attacked", len(fds))
	if len(fds) > 1024+512 {
		t.Errorf("node 1's agent holds %d descriptors; want the attacker's 1024 and its own", len(fds))
	}
	log, _ := os.ReadFile(c.Nodes[0].Log)
	said := strings.Count(string(log), "refused a connection on the socket")
	if said == 0 || !strings.Contains(string(log), fmt.Sprintf("uid=%d", nobodyUID)) {
		t.Errorf("no refusal naming uid %d in node 1's log", nobodyUID)
	}
	if said > 30 {
		t.Errorf("%d refusal lines in node 1's log: not rate limited", said)
	}
}

// TestSilentRunClosed: a /v1/run upgrade that never sends its start
// frame is closed by the agent after its deadline (10 s), while a real
// `ssi run` that lasts longer than that and than the idle timeout (30 s)
// is not.
func TestSilentRunClosed(t *testing.T) {
	c, _ := startCluster(t, 2)
	openToOthers(t, c)
	long := make(chan runOutcome, 1)
	go func() {
		long <- execIn(t, c, viaSSI(c, runSpec{on: 1, user: "65534:65534", dir: "/", env: []string{"PATH=/usr/bin:/bin"},
			argv: []string{"sh", "-c", "sleep 35; echo done"}}, 2))
	}()
	res := runHelperCmd(t, helper(c, 1, "silent-run", "H_SOCKET="+c.Nodes[0].Socket))
	t.Logf("silent /v1/run: %d, closed after %s (%s)", res.Status, res.ClosedAfter, res.Error)
	if res.Status != http.StatusSwitchingProtocols {
		t.Fatalf("the upgrade: %d %s", res.Status, res.Error)
	}
	after, err := time.ParseDuration(res.ClosedAfter)
	// Closed by the agent (no error on our side), not at once, well
	// before our own bound (2 minutes).
	if err != nil || res.Error != "" || after < 5*time.Second || after > 100*time.Second {
		t.Errorf("the silent stream ended after %s (%s); want closed by the agent after its 10 s deadline", res.ClosedAfter, res.Error)
	}
	log, _ := os.ReadFile(c.Nodes[0].Log)
	if !strings.Contains(string(log), "before its start frame") && !strings.Contains(string(log), "no start frame") {
		t.Errorf("node 1's log does not say it closed a stream without a start frame")
	}
	if o := <-long; o.code != 0 || o.stdout != "done\n" {
		t.Errorf("a 35 s ssi run --node 2: %v; want it to outlive the start deadline and the idle timeout", o)
	}
}

// TestHideOtherProcs: with hide_other_procs, a user other than root sees
// only his own processes (ps, where), root sees all, and the HTTP
// listener, which cannot tell who asks, refuses to list any.
func TestHideOtherProcs(t *testing.T) {
	c, ctx := startCluster(t, 2, "--hide-other-procs", "true")
	openToOthers(t, c)
	pid := startNative(t, c, 1, asNobody, "sleep 506 </dev/null >/dev/null 2>&1", nil)
	list := func(user string) (api.ProcsReply, runOutcome) {
		var reply api.ProcsReply
		o := ssiAs(t, c, 1, user, "ps", "-o", "json")
		if o.code == 0 {
			json.Unmarshal([]byte(o.stdout), &reply)
		}
		return reply, o
	}
	var sleep api.Proc
	err := c.WaitFor(ctx, "nobody's ps to list his sleep", func() (bool, error) {
		reply, o := list("65534:65534")
		if o.code != 0 {
			return false, fmt.Errorf("ssi ps as nobody: %v", o)
		}
		for _, p := range reply.Procs {
			if p.UID != nobodyUID {
				t.Errorf("nobody sees a process of uid %d: %+v", p.UID, p)
			}
			if p.Pid == pid {
				sleep = p
			}
		}
		return sleep.CPID != 0, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	reply, o := list("1000:1000")
	if o.code != 0 {
		t.Fatalf("ssi ps as uid 1000: %v", o)
	}
	for _, p := range reply.Procs {
		if p.UID != 1000 {
			t.Errorf("uid 1000 sees a process of uid %d: %+v", p.UID, p)
		}
	}
	if o := ssiAs(t, c, 1, "1000:1000", "where", fmt.Sprint(sleep.CPID)); o.code == 0 || !strings.Contains(o.stderr, "no process") {
		t.Errorf("ssi where of nobody's process as uid 1000: %v; want no process", o)
	}
	for _, args := range [][]string{{"kill", fmt.Sprint(sleep.CPID)}, {"migrate", fmt.Sprint(sleep.CPID), "2"}} {
		o := ssiAs(t, c, 1, "1000:1000", args...)
		if o.code == 0 || !strings.Contains(o.stderr, "no process") || strings.Contains(o.stderr, "belongs to") {
			t.Errorf("ssi %s of nobody's process as uid 1000: %v; want no process (not whose it is)", strings.Join(args, " "), o)
		}
	}
	if o := ssiAs(t, c, 1, "65534:65534", "where", fmt.Sprint(sleep.CPID)); o.code != 0 {
		t.Errorf("ssi where of his own process as nobody: %v", o)
	}
	out, err := c.CLI(ctx, 1, "ps", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var all api.ProcsReply
	json.Unmarshal(out, &all)
	uids := map[int]bool{}
	for _, p := range all.Procs {
		uids[p.UID] = true
	}
	if !uids[0] || !uids[nobodyUID] {
		t.Errorf("root's ps shows uids %v; want root's and nobody's", uids)
	}
	// The HTTP listener is inside node 1's network namespace.
	r := runProc(t, c.Command(1, "curl", "-sS", "http://"+c.Nodes[0].HTTP+"/v1/procs"), time.Minute)
	if !strings.Contains(r.stdout, "processes are shown only on the agent's Unix socket (hide_other_procs is on)") {
		t.Errorf("GET /v1/procs on the HTTP listener: %q %q", r.stdout, r.stderr)
	}
	r = runProc(t, c.Command(1, "curl", "-sS", "http://"+c.Nodes[0].HTTP+"/v1/nodes"), time.Minute)
	if !strings.Contains(r.stdout, `"node2"`) {
		t.Errorf("GET /v1/nodes on the HTTP listener: %q %q", r.stdout, r.stderr)
	}
}

// TestHTTPListenerLimits (loopback, no root needed): the TCP listener
// refuses a change before reading its body (a 1.5 GiB restore is answered
// 403 and cut off) and holds at most max_http_conns connections.
func TestHTTPListenerLimits(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c, err := harness.Start(ctx, harness.Options{Nodes: 1, Binary: binary, AgentArgs: []string{"--max-http-conns", "4"}})
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	defer c.Close()
	if err := c.WaitFormed(ctx); err != nil {
		t.Fatal(err)
	}
	addr := c.Nodes[0].HTTP
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "POST /v1/restore HTTP/1.1\r\nHost: ssi\r\nContent-Length: %d\r\n\r\n", 1536*mib)
	cw := &countWriter{w: conn}
	done := make(chan error, 1)
	go func() {
		_, err := io.Copy(cw, io.LimitReader(pattern{}, 1536*mib))
		done <- err
	}()
	conn.SetReadDeadline(time.Now().Add(time.Minute))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("the answer to a 1.5 GiB POST on TCP: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Error("the agent read on: the body was still being sent a minute after the refusal")
	}
	conn.Close()
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "restore: accepted only on the agent's Unix socket") || cw.n.Load() >= 64*mib {
		t.Errorf("1.5 GiB POST /v1/restore on TCP: %d %s, %d bytes sent", resp.StatusCode, body, cw.n.Load())
	}

	var held []net.Conn
	defer func() {
		for _, h := range held {
			h.Close()
		}
	}()
	get := func() (net.Conn, int, string) {
		h, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		h.SetDeadline(time.Now().Add(time.Minute))
		io.WriteString(h, "GET /v1/self HTTP/1.1\r\nHost: ssi\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(h), nil)
		if err != nil {
			t.Fatalf("GET /v1/self on TCP: %v", err)
		}
		b, _ := io.ReadAll(resp.Body)
		return h, resp.StatusCode, string(b)
	}
	// The refused connection above may not be given back yet: wait for
	// four to be held.
	err = c.WaitFor(ctx, "four connections held on the HTTP listener", func() (bool, error) {
		h, code, body := get()
		if code != http.StatusOK {
			h.Close()
			return false, fmt.Errorf("%d %s", code, body)
		}
		held = append(held, h)
		return len(held) == 4, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	h, code, last := get()
	h.Close()
	if code != http.StatusTooManyRequests || !strings.Contains(last, "this listener already holds 4 connections") || !strings.Contains(last, "max_http_conns") {
		t.Errorf("a fifth connection: %d %s; want 429 naming max_http_conns", code, last)
	}
}
