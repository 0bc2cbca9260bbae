package itest

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ssi-cluster/ssi/internal/harness"
	"github.com/ssi-cluster/ssi/internal/rexec"
)

// console drives an interactive shell on a pty, like a user at a terminal.
type console struct {
	t      *testing.T
	master *os.File
	cmd    *exec.Cmd
	mu     sync.Mutex
	buf    bytes.Buffer
	seen   int // bytes of buf already matched
}

// newConsole starts bash in node `on` on a fresh 24x80 pty, with ssi on
// its PATH and the node's socket in SSI_SOCKET.
func newConsole(t *testing.T, c *harness.Cluster, on int) *console {
	t.Helper()
	master, slave, err := rexec.OpenPty()
	if err != nil {
		t.Fatal(err)
	}
	rexec.SetWinsize(master, 24, 80)
	bin := strings.TrimSuffix(c.Binary, "/ssi")
	cmd := c.Command(on, "bash", "--norc", "--noprofile", "-i")
	cmd.Env = []string{"PATH=" + bin + ":/usr/bin:/bin", "PS1=$ ", "TERM=dumb", "SSI_SOCKET=" + c.Nodes[on-1].Socket, "HOME=/"}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	con := &console{t: t, master: master, cmd: cmd}
	go func() {
		b := make([]byte, 4096)
		for {
			n, err := master.Read(b)
			con.mu.Lock()
			con.buf.Write(b[:n])
			con.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		master.Close()
		if t.Failed() {
			t.Logf("terminal transcript:\n%s", con.transcript())
		}
	})
	con.expect("$ ")
	return con
}

func (c *console) transcript() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}

// send types s.
func (c *console) send(s string) {
	c.t.Helper()
	if _, err := c.master.WriteString(s); err != nil {
		c.t.Fatalf("typing %q: %v", s, err)
	}
}

// expect waits until want shows up after what was matched before.
func (c *console) expect(want string) {
	c.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		c.mu.Lock()
		rest := c.buf.String()[c.seen:]
		if i := strings.Index(rest, want); i >= 0 {
			c.seen += i + len(want)
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		time.Sleep(10 * time.Millisecond)
	}
	c.t.Fatalf("terminal never showed %q", want)
}

// TestRunInteractive drives `ssi run --node 2` from bash on node 1 through
// a pty: typed input to a remote shell, Ctrl-C, Ctrl-Z and fg, bg, window
// size, and the exit status seen by the local shell.
func TestRunInteractive(t *testing.T) {
	c, _ := startCluster(t, 2, "--allow-remote-root", "true")
	con := newConsole(t, c, 1)

	// A remote interactive shell: it runs on node 2 and reads our typing.
	con.send("ssi run --node 2 sh\n")
	con.send("echo on-$(hostname) $((6*7))\n")
	con.expect("on-node2 42")
	// Ctrl-C interrupts the remote foreground command, not the session.
	con.send("sleep 100\n")
	time.Sleep(300 * time.Millisecond)
	con.send("\x03")
	con.send("echo after-int\n")
	con.expect("after-int")
	con.send("exit 3\n")
	// Typed-ahead input would go to the remote shell, as over ssh: wait
	// until the deputy is gone.
	time.Sleep(time.Second)
	con.send("echo status=$?\n")
	con.expect("status=3")

	// With a pty too, a missing command is told as a shell tells it.
	con.send("ssi run --node 2 no-such-cmd; echo st=$?\n")
	con.expect("ssi: no-such-cmd: command not found")
	con.expect("st=127")
	con.expect("$ ")

	// The window size reaches the remote pty, and follows a resize.
	con.send("ssi run --node 2 stty size\n")
	con.expect("24 80")
	con.expect("$ ") // typed-ahead input would go to the deputy still running
	con.send("ssi run --node 2 sh -c 'read x; stty size'\n")
	time.Sleep(500 * time.Millisecond)
	rexec.SetWinsize(con.master, 40, 120) // SIGWINCH to the deputy
	time.Sleep(300 * time.Millisecond)
	con.send("go\n")
	con.expect("40 120")
	con.expect("$ ")

	// Ctrl-Z stops the remote job; fg continues it; its output resumes.
	con.send("ssi run --node 2 sh -c 'for i in 1 2 3 4 5 6 7 8; do echo tick$i; sleep 0.3; done'\n")
	con.expect("tick2")
	con.send("\x1a")
	con.expect("Stopped")
	con.send("ssi ps -o json | grep -q '\"state\": \"T\"' && echo remote-stopped\n")
	con.expect("remote-stopped\r\n")
	con.send("fg\n")
	con.expect("tick8")
	con.expect("$ ")
	con.send("echo status=$?\n")
	con.expect("status=0")
	con.expect("$ ")

	// Ctrl-C on a remote command without a terminal reaches it as SIGINT
	// and the local shell sees a death by SIGINT (130).
	con.send("ssi run --node 2 sleep 100 </dev/null | cat\n")
	time.Sleep(500 * time.Millisecond)
	con.send("\x03")
	con.send("echo pipestatus=${PIPESTATUS[0]}\n")
	con.expect("pipestatus=130")
	con.expect("$ ")

	// bg: a stopped job continues in the background; a kill of the
	// deputy's local pid reaches the remote process (143 = SIGTERM).
	con.send("ssi run --node 2 sh -c 'trap \"echo got-term; exit 5\" TERM; while :; do sleep 0.1; done' </dev/null &\n")
	con.send("sleep 0.5; kill %1; wait %1; echo bgstatus=$?\n")
	con.expect("got-term")
	con.expect("bgstatus=5")
}
