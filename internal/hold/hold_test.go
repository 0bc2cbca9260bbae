package hold

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ssi-cluster/ssi/internal/rexec"
)

// The test binary is also the holder (as the agent's binary is).
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == Arg {
		Main(os.Args[2:])
	}
	os.Exit(m.Run())
}

func testSpec(t *testing.T, cpid int64, script string) *rexec.Spec {
	return &rexec.Spec{Argv: []string{"/bin/sh", "-c", script}, Env: []string{"PATH=/usr/bin:/bin"}, Dir: "/",
		UID: os.Getuid(), GID: os.Getgid(), Umask: 0o22, CPID: cpid, Home: 1}
}

// frames collects what a Link gives its sink.
type frames struct {
	mu  sync.Mutex
	fs  []rexec.Frame
	out bytes.Buffer // stdout
	err bytes.Buffer // stderr
}

func (c *frames) sink(f rexec.Frame) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.fs = append(c.fs, rexec.Frame{Type: f.Type, Data: append([]byte(nil), f.Data...)})
	switch f.Type {
	case rexec.TStdout:
		c.out.Write(f.Data)
	case rexec.TStderr:
		c.err.Write(f.Data)
	}
}

// until waits (up to 20 s) for cond on what was collected.
func (c *frames) until(t *testing.T, what string, cond func(*frames) bool) {
	t.Helper()
	for range 2000 {
		c.mu.Lock()
		ok := cond(c)
		c.mu.Unlock()
		if ok {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no %s", what)
}

// A holder keeps its process and its frames while no agent is
// connected; a new connection gets the frames after the one it asks for
// (what its home has), then the exit status.
func TestHolderOutlivesItsAgent(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("starting a process as a caller needs root (setgroups)")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	// 20000 numbered lines, then waits for its stdin to end, then 3.
	spec := testSpec(t, 1<<22|4242, `i=0; while [ $i -lt 20000 ]; do echo $i; i=$((i+1)); done; cat >/dev/null; echo done >&2; exit 3`)
	l, err := Start(spec, dir, exe)
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	for i := range 20000 {
		fmt.Fprintf(&want, "%d\n", i)
	}
	var c1 frames
	l.Replay(0, c1.sink)
	c1.until(t, "two frames", func(c *frames) bool { return len(c.fs) >= 2 })
	c1.mu.Lock()
	kept := append([]rexec.Frame(nil), c1.fs[:1]...) // the home has the first frame
	c1.mu.Unlock()
	l.Ack(1)
	l.Passed(0)
	l.Close() // the agent goes
	// The agent restarts: its home had frame 1.
	l2, err := Dial(SocketPath(dir, spec.CPID))
	if err != nil {
		t.Fatal(err)
	}
	if l2.Info.Cmd != l.Info.Cmd || l2.Info.Spec.CPID != spec.CPID {
		t.Fatalf("re-dialled %+v, want the same process as %+v", l2.Info, l.Info)
	}
	c2 := frames{fs: kept}
	c2.out.Write(kept[0].Data)
	l2.Replay(1, c2.sink)
	c2.until(t, "all the output", func(c *frames) bool { return c.out.Len() >= want.Len() })
	c2.mu.Lock()
	got := c2.out.String()
	c2.mu.Unlock()
	if got != want.String() {
		t.Fatalf("output differs after the re-attachment (%d bytes, want %d)", len(got), want.Len())
	}
	l2.Proc.CloseStdin()
	st := l2.Proc.Wait(nil, nil)
	c2.mu.Lock()
	errOut, last := c2.err.String(), c2.fs[len(c2.fs)-1].Type
	c2.mu.Unlock()
	if st.Code != 3 || strings.TrimSpace(errOut) != "done" || last != rexec.TExit {
		t.Fatalf("ended %+v with stderr %q, last frame %s; want code 3, done and exit", st, errOut, last)
	}
	l2.Release()
}

// A process that cannot be started is told as a shell tells it.
func TestHolderExecError(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("starting a process as a caller needs root (setgroups)")
	}
	exe, _ := os.Executable()
	spec := testSpec(t, 1<<22|4243, "")
	spec.Argv = []string{"no-such-command-here"}
	_, err := Start(spec, t.TempDir(), exe)
	ee, ok := err.(*rexec.ExecError)
	if !ok || ee.Code != rexec.ExitNotFound {
		t.Fatalf("got %v, want command not found (127)", err)
	}
}

// A move's frames: Moving that the agent adds is numbered among the
// holder's, and after the agent's Moved the commit's kill is not the
// process's end: Moved is the last frame, after the output.
func TestHolderMoved(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("starting a process as a caller needs root (setgroups)")
	}
	exe, _ := os.Executable()
	spec := testSpec(t, 1<<22|4244, `echo one; exec sleep 600`)
	l, err := Start(spec, t.TempDir(), exe)
	if err != nil {
		t.Fatal(err)
	}
	var c frames
	l.Replay(0, c.sink)
	c.until(t, "the output", func(c *frames) bool { return c.out.String() == "one\n" })
	l.Inject(rexec.Frame{Type: rexec.TMoving})
	c.until(t, "moving", func(c *frames) bool { return len(c.fs) == 2 })
	l.Moved(&rexec.Moved{Node: 2, Pid: 77}) // may cross the kill: the holder waits for it (movedWait)
	syscall.Kill(l.Info.Cmd, syscall.SIGKILL)
	l.Proc.Wait(nil, nil)
	var types []rexec.Type
	for _, f := range c.fs {
		types = append(types, f.Type)
	}
	if fmt.Sprint(types) != "[stdout moving moved]" {
		t.Fatalf("frames %v, want [stdout moving moved]", types)
	}
	l.Release()
}
