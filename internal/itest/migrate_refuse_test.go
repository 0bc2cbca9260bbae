package itest

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ssi-cluster/ssi/internal/harness"
)

// asNobody prefixes a command with setpriv to run it as nobody.
const asNobody = "setpriv --reuid 65534 --regid 65534 --clear-groups "

// ssiAs runs `ssi args...` in node `on` as user (uid:gid, "" for root).
func ssiAs(t *testing.T, c *harness.Cluster, on int, user string, args ...string) runOutcome {
	t.Helper()
	return execIn(t, c, runSpec{on: on, user: user, dir: "/", argv: append([]string{c.Binary, "--socket", c.Nodes[on-1].Socket}, args...)})
}

// startNative starts `sh -c script` in node on, not through ssi (a native
// process of that node), as user, detached from its parent (a shell that
// starts it in the background and exits, so it is init's, as a daemon is:
// ssi refuses to move a process whose parent waits for it), and returns
// its pid there.
func startNative(t *testing.T, c *harness.Cluster, on int, user, script string, stdout io.Writer) int {
	t.Helper()
	pidFile := filepath.Join(shortTemp(t), "pid")
	os.Chmod(filepath.Dir(pidFile), 0o777)
	cmd := c.Command(on, "sh", "-c", `sh -c "$0" &`, fmt.Sprintf("echo $$ >%s; exec %s%s", pidFile, user, script))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.Stdout = stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go cmd.Wait()
	t.Cleanup(func() { cmd.Process.Kill() })
	var pid int
	err := c.WaitFor(t.Context(), "the native process's pid", func() (bool, error) {
		b, err := os.ReadFile(pidFile)
		if err != nil {
			return false, err
		}
		pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil && pid > 0, err
	})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // past the exec
	return pid
}

// TestMigrateRefusals: every process that cannot move is refused by ssi
// migrate with its reason, before anything is frozen, and runs on where
// it was.
func TestMigrateRefusals(t *testing.T) {
	c, ctx := startCluster(t, 2)
	dir := shortTemp(t)
	os.Chmod(dir, 0o755)
	bins := buildProgs(t, dir, "posixtimers")
	py := "/usr/bin/python3"
	if !exists(py) {
		t.Skip("needs /usr/bin/python3")
	}
	pyRun := func(code string) (string, string) {
		return asNobody + "ssi run --node 1 " + py + ` -c "` + code + `"`, py + " -c " + code
	}
	type tc struct {
		name, script, cmd, want string
	}
	cases := []tc{
		{"pinned", asNobody + "ssi run --node 1 --no-migrate sleep 501", "sleep 501", "started with --no-migrate: it is pinned to node 1"},
		{"children", asNobody + "ssi run --node 1 sh -c 'sleep 502; true'", "sh -c sleep 502; true", "it has child processes"},
		{"terminal", "script -qec '" + asNobody + "ssi run --node 1 sleep 503' /dev/null", "sleep 503", "it runs on a terminal"},
		{"posix timers", asNobody + "ssi run --node 1 " + bins["posixtimers"], bins["posixtimers"], "timers: POSIX timer 0 runs on the CPU-time clock of a thread or of another process (clock -2): not carried"},
	}
	for _, p := range []struct{ name, code, want string }{
		{"socket", "import socket,time; s=socket.socket(); time.sleep(300)", "socket: fd 3: socket:["},
		{"fifo", "import os,time; p='/tmp/ssi-fifo-%d'%os.getpid(); os.mkfifo(p); f=os.open(p, os.O_RDWR); os.unlink(p); time.sleep(300)", "pipe: fd 3: /tmp/ssi-fifo-"},
		{"shared memory", "import mmap,os,time; f=open('/dev/shm/ssi-refuse-%d'%os.getpid(),'w+b'); f.truncate(4096); m=mmap.mmap(f.fileno(),4096); os.unlink(f.name); time.sleep(300)", "shared memory: mapping"},
		{"device", "import os,time; f=os.open('/dev/ptmx', os.O_RDWR); time.sleep(300)", "device: fd 3: /dev/ptmx"},
		{"memfd", "import os,time; fd=os.memfd_create('buf'); time.sleep(300)", "deleted file: fd 3: /memfd:buf (deleted): a memfd is not carried"},
	} {
		script, cmd := pyRun(p.code)
		cases = append(cases, tc{p.name, script, cmd, p.want})
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			startDeputy(t, c, 2, tt.script)
			findRun(t, ctx, c, 2, tt.cmd)
			time.Sleep(500 * time.Millisecond) // past its start-up
			p := findRun(t, ctx, c, 2, tt.cmd) // with its cluster pid, once registered
			o := ssiAs(t, c, 2, "65534:65534", "migrate", strconv.FormatInt(p.CPID, 10), "2")
			if o.code == 0 || !strings.Contains(o.stderr, "cannot move") || !strings.Contains(o.stderr, tt.want) {
				t.Errorf("migrate: %v; want a refusal with %q", o, tt.want)
			}
			if w, err := whereJSON(ctx, c, 2, p.CPID); err != nil || w.Node != 1 || w.Pid != p.Pid || w.State == "T" {
				t.Errorf("after the refusal: %+v, %v; want it running on node 1 as pid %d", w, err, p.Pid)
			}
			ssiAs(t, c, 2, "65534:65534", "kill", "-KILL", strconv.FormatInt(p.CPID, 10))
		})
	}

	// Every reason at once: children are not the only one said.
	t.Run("children and a socket", func(t *testing.T) {
		script, cmd := pyRun("import os,socket,time; s=socket.socket(); os.fork() or time.sleep(300); time.sleep(300)")
		startDeputy(t, c, 2, script)
		findRun(t, ctx, c, 2, cmd)
		time.Sleep(500 * time.Millisecond) // past its start-up and its fork
		p := findRun(t, ctx, c, 2, cmd)
		o := ssiAs(t, c, 2, "65534:65534", "migrate", strconv.FormatInt(p.CPID, 10), "2")
		if o.code == 0 || !strings.Contains(o.stderr, "it has child processes") || !strings.Contains(o.stderr, "socket: fd 3: socket:[") {
			t.Errorf("migrate: %v; want a refusal naming its children and its socket", o)
		}
		ssiAs(t, c, 2, "65534:65534", "kill", "-KILL", strconv.FormatInt(p.CPID, 10))
	})
	// A native process whose stdout is a pipe of its own.
	t.Run("native stdio pipe", func(t *testing.T) {
		pid := startNative(t, c, 1, asNobody, "sleep 504 </dev/null 2>/dev/null", &bytes.Buffer{})
		cpid := int64(1)<<22 | int64(pid)
		o := ssiAs(t, c, 1, "65534:65534", "migrate", strconv.FormatInt(cpid, 10), "2")
		if o.code == 0 || !strings.Contains(o.stderr, "pipe: fd 1: pipe:[") {
			t.Errorf("migrate: %v; want a refusal naming fd 1, a pipe", o)
		}
	})
	// The target refuses root's process: allow_remote_root is off.
	t.Run("root to a node that refuses it", func(t *testing.T) {
		pid := startNative(t, c, 1, "", "sleep 505 </dev/null >/dev/null 2>&1", nil)
		cpid := strconv.FormatInt(int64(1)<<22|int64(pid), 10)
		o := ssiAs(t, c, 1, "", "migrate", cpid, "2")
		if o.code == 0 || !strings.Contains(o.stderr, "node 2 refuses migration in of process "+cpid+" for root from node 1: allow_remote_root is off") {
			t.Errorf("migrate: %v; want node 2's refusal", o)
		}
	})
	// Another user's process, and a process already where it is asked to go.
	t.Run("not yours, already there", func(t *testing.T) {
		startDeputy(t, c, 2, asNobody+"ssi run --node 1 sleep 506")
		p := findRun(t, ctx, c, 2, "sleep 506")
		o := ssiAs(t, c, 2, "1000:1000", "migrate", strconv.FormatInt(p.CPID, 10), "2")
		want := "node 1 refuses migration of process " + strconv.FormatInt(p.CPID, 10) + " for uid 1000 from node 2: the process belongs to uid 65534, not to uid 1000"
		if o.code == 0 || !strings.Contains(o.stderr, want) {
			t.Errorf("migrate by uid 1000: %v", o)
		}
		o = ssiAs(t, c, 2, "65534:65534", "migrate", strconv.FormatInt(p.CPID, 10), "1")
		if o.code == 0 || !strings.Contains(o.stderr, "already runs on node 1") {
			t.Errorf("migrate to its own node: %v", o)
		}
	})
}
