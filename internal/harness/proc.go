package harness

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// nodeCommand builds a command that runs name with args inside node n: in
// the namespaces of its init (host pid initPID) when namespaced, and in its
// cgroup when it has one. The cgroup is joined by a shell that writes 0 (the
// writer itself) to cgroup.procs before it execs, so the command and all its
// children are held from their first instruction, with cgroup v1 or v2.
func nodeCommand(n *Node, initPID int, name string, args ...string) *exec.Cmd {
	argv := append([]string{name}, args...)
	if n.Netns != "" {
		argv = append([]string{"nsenter", "-t", strconv.Itoa(initPID), "-n", "-p", "-m", "-u", "-i", "--"}, argv...)
	}
	argv = inCgroup(n, argv)
	cmd := exec.Command(argv[0], argv[1:]...)
	if n.Netns != "" && initPID <= 0 {
		cmd.Err = fmt.Errorf("%s is down (its init is not running)", n.Name)
	}
	return cmd
}

// inCgroup prefixes argv with the shell that joins n's cgroup, if it has one.
func inCgroup(n *Node, argv []string) []string {
	if n.Cgroup == "" {
		return argv
	}
	return append([]string{"/bin/sh", "-c", `echo 0 >"$0" && exec "$@"`, filepath.Join(n.Cgroup, "cgroup.procs")}, argv...)
}

// shellCommand is an interactive shell in node n with SSI_SOCKET set.
func shellCommand(n *Node, initPID int) *exec.Cmd {
	sh := os.Getenv("SHELL")
	if sh == "" {
		sh = "/bin/sh"
	}
	cmd := nodeCommand(n, initPID, sh)
	cmd.Env = append(os.Environ(), "SSI_SOCKET="+n.Socket)
	return cmd
}

// proc is a process the harness started and waits for.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	err  error         // cmd.Wait's result, set before done is closed
}

// startProc starts cmd in its own process group (so terminal signals reach
// only the harness, and Close can kill what it forked), killed if the harness
// dies, and waits for it in the background. Its stdout and stderr go to out,
// a *logWriter, which is closed when it exits.
func startProc(cmd *exec.Cmd, out *logWriter) (*proc, error) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	cmd.Stdout, cmd.Stderr = out.writer(), out.writer()
	cmd.WaitDelay = time.Second // children the process leaves behind may hold the log pipe
	if err := spawn(cmd); err != nil {
		out.Close()
		return nil, err
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		fmt.Fprintf(out.writer(), "harness: %s ended: %v\n", filepath.Base(cmd.Path), exitStatus(p.err))
		out.Close()
		close(p.done)
	}()
	return p, nil
}

// spawner is the OS thread every harness process is forked from. The
// kernel sends a child its parent-death signal when the thread that forked
// it exits, not the process: a child forked from a thread that a test later
// locks and lets die (one that entered a node's network namespace to dial
// from there) would be killed at a random moment. This thread never exits.
var spawner = sync.OnceValue(func() chan func() {
	ch := make(chan func())
	go func() {
		runtime.LockOSThread() // never unlocked: the thread lives as long as the harness
		for f := range ch {
			f()
		}
	}()
	return ch
})

// spawn starts cmd from the spawner thread.
func spawn(cmd *exec.Cmd) error {
	done := make(chan error, 1)
	spawner() <- func() { done <- cmd.Start() }
	return <-done
}

// exitStatus describes how a process ended, for the node's log.
func exitStatus(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// wait waits up to d for the process to exit.
func (p *proc) wait(d time.Duration) bool {
	select {
	case <-p.done:
		return true
	case <-time.After(d):
		return false
	}
}

// killGroup sends sig to the process group the process leads.
func (p *proc) killGroup(sig syscall.Signal) {
	if !p.exited() {
		syscall.Kill(-p.pid(), sig)
	}
}

// child is the host pid of the only child of the process: the agent that
// nsenter forked into the node. It waits up to a second for the fork.
func (p *proc) child() (int, error) {
	path := fmt.Sprintf("/proc/%d/task/%d/children", p.pid(), p.pid())
	for deadline := time.Now().Add(time.Second); ; {
		b, err := os.ReadFile(path)
		if f := strings.Fields(string(b)); err == nil && len(f) > 0 {
			return strconv.Atoi(f[0])
		}
		if p.exited() {
			return 0, fmt.Errorf("process %d has exited", p.pid())
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("process %d has no child: %v", p.pid(), err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// logWriter appends a process's output to the node's log file and, when the
// cluster has one, copies it line by line to Options.Log prefixed with
// "node N: ".
type logWriter struct {
	file   *os.File
	copyTo io.Writer   // nil when no Options.Log
	mu     *sync.Mutex // serializes lines to copyTo across nodes
	prefix string
	buf    []byte // an unfinished line
}

func openLog(path string, copyTo io.Writer, mu *sync.Mutex, prefix string) (*logWriter, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	return &logWriter{file: f, copyTo: copyTo, mu: mu, prefix: prefix}, nil
}

// writer is what the process writes to: the file itself (no copying
// goroutine) unless lines must also be copied.
func (l *logWriter) writer() io.Writer {
	if l.copyTo == nil {
		return l.file
	}
	return l
}

func (l *logWriter) Write(b []byte) (int, error) {
	l.buf = append(l.buf, b...)
	if i := bytes.LastIndexByte(l.buf, '\n'); i >= 0 {
		l.copyLines(l.buf[:i+1])
		l.buf = append(l.buf[:0], l.buf[i+1:]...)
	}
	return l.file.Write(b)
}

func (l *logWriter) copyLines(b []byte) {
	var out []byte
	for line := range bytes.Lines(b) {
		out = append(append(out, l.prefix...), line...)
	}
	l.mu.Lock()
	l.copyTo.Write(out)
	l.mu.Unlock()
}

// Close copies an unfinished last line and closes the file.
func (l *logWriter) Close() error {
	if l.copyTo != nil && len(l.buf) > 0 {
		l.copyLines(append(l.buf, '\n'))
	}
	return l.file.Close()
}

// tail is the last n lines of the file at path, for error messages.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
