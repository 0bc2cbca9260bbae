package rexec

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// pipeSize is the capacity given to a process's stdio pipes.
const pipeSize = 1 << 20

// Proc is a process started by Start: its pid (also its process group),
// and the agent's ends of its stdio.
type Proc struct {
	// Pid is the process the agent waits for: the command, or with a tty
	// the helper that leads its session (see session).
	Pid int
	// Cmd is the command's pid (its process group), once known.
	Cmd int
	// Stdin takes the process's input (the pty master with a tty).
	Stdin io.WriteCloser
	// Stdout and Stderr give its output; with a tty Stderr is nil (both go
	// to the terminal, read from Stdout).
	Stdout, Stderr io.ReadCloser

	pty     *os.File
	process *os.Process
	stdinR  int    // a copy of the reading end of the stdin pipe (-1: none)
	in      *inbox // input on its way to Stdin
	gate    sync.Mutex

	// A held process (Held): its holder waits for it and holds a copy
	// of its stdin.
	wait       WaitFunc
	closeStdin func()
}

// WaitFunc waits for a process to end, reporting its stops and
// continues on the way (see Proc.Wait).
type WaitFunc func(stopped func(sig int), continued func()) Status

// Held makes a Proc of a process that a holder (package hold) started and
// waits for: wait gives its stops and its end, closeStdin tells the
// holder to close its copy of the stdin pipe. stdin is the agent's copy
// of the writing end of its stdin pipe, stdinR of the reading end (-1:
// none), pty the pty's master (a tty run: stdin is then nil); output
// comes from stdout and stderr. pid is the process Signal also continues
// (a tty's exec helper), cmd the command.
func Held(pid, cmd int, stdin *os.File, stdinR int, pty *os.File, stdout, stderr io.ReadCloser, wait WaitFunc, closeStdin func()) *Proc {
	p := &Proc{Pid: pid, Cmd: cmd, stdinR: stdinR, pty: pty, Stdout: stdout, Stderr: stderr, wait: wait, closeStdin: closeStdin}
	switch {
	case pty != nil:
		p.Stdin = pty
	case stdin != nil:
		p.Stdin = stdin
	}
	if p.Stdin != nil {
		p.in = newInbox(p.Stdin)
	} else {
		p.in = newInbox(nopWriteCloser{})
	}
	return p
}

// HeldFiles are what a holder gives the agent of a process it started:
// the writing end of its stdin pipe (nil once closed, or with a tty), a
// copy of the reading end (-1: none) and the pty's master (nil without).
func (p *Proc) HeldFiles() (stdin *os.File, stdinR int, pty *os.File) {
	if p.pty != nil {
		return nil, -1, p.pty
	}
	if f, ok := p.Stdin.(*os.File); ok && !p.in.isClosed() {
		stdin = f
	}
	return stdin, p.stdinR, nil
}

// Start starts s.Argv with s's credentials and environment in a process
// group of its own. Without a tty it has pipes and is started directly
// (startDirect); a command that cannot be started is an *ExecError, as a
// shell would report it. With a tty it goes through the helper at shim
// (the agent's binary, run as `shim ShimArg`), which leads a new session
// on a fresh pty (see session); the helper's failures come out on the
// pty with status 127 or 126.
func Start(s *Spec, shim string) (*Proc, error) {
	if !s.Tty {
		return startPlain(s)
	}
	return startTty(s, shim)
}

// startTty starts the helper on a fresh pty as a session leader, hands it
// the Spec and reads back the command's pid (the helper closes the report
// without one if the command could not be started: Cmd is then the
// helper's own pid, and its status tells the rest).
func startTty(s *Spec, shim string) (*Proc, error) {
	spec, err := json.Marshal(s)
	if err != nil {
		return nil, err
	}
	master, slave, err := OpenPty()
	if err != nil {
		return nil, err
	}
	if err := setupTerminal(slave, s); err != nil {
		closeFiles(master, slave)
		return nil, err
	}
	specR, specW, err := os.Pipe()
	if err != nil {
		closeFiles(master, slave)
		return nil, err
	}
	pidR, pidW, err := os.Pipe()
	if err != nil {
		closeFiles(master, slave, specR, specW)
		return nil, err
	}
	cmd := exec.Command(shim, ShimArg)
	cmd.Env, cmd.Dir = []string{}, "/"
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.ExtraFiles = []*os.File{specR, pidW} // shimSpecFD, shimPidFD
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	err = cmd.Start()
	closeFiles(slave, specR, pidW) // the helper's ends
	if err != nil {
		closeFiles(master, specW, pidR)
		return nil, fmt.Errorf("start %s: %w", shim, err)
	}
	go func() {
		// Larger than a pipe's buffer: written while the helper reads.
		specW.Write(spec)
		specW.Close()
	}()
	p := &Proc{Pid: cmd.Process.Pid, Cmd: cmd.Process.Pid, process: cmd.Process, stdinR: -1,
		pty: master, Stdin: master, Stdout: master}
	b, _ := io.ReadAll(io.LimitReader(pidR, 32))
	pidR.Close()
	if n, err := strconv.Atoi(string(b)); err == nil && n > 0 {
		p.Cmd = n
	}
	p.in = newInbox(p.Stdin)
	return p, nil
}

func closeFiles(fs ...*os.File) {
	for _, f := range fs {
		f.Close()
	}
}

// StdioPipes makes the three pipes of a process's stdio (reading end,
// writing end), of pipeSize bytes each.
func StdioPipes() (pipes [3][2]*os.File, err error) {
	for i := range pipes {
		r, w, err := os.Pipe()
		if err != nil {
			for _, pp := range pipes[:i] {
				closeFiles(pp[:]...)
			}
			return pipes, err
		}
		if rc, err := w.SyscallConn(); err == nil { // not Fd(): it would make the pipe blocking
			rc.Control(func(fd uintptr) { unix.FcntlInt(fd, unix.F_SETPIPE_SZ, pipeSize) })
		}
		pipes[i] = [2]*os.File{r, w}
	}
	return pipes, nil
}

// startPlain starts a command without a tty: pipes for its stdio (1 MiB
// each, for fewer and larger frames), and no helper (startDirect).
func startPlain(s *Spec) (*Proc, error) {
	pipes, err := StdioPipes()
	if err != nil {
		return nil, err
	}
	closeAll := func() {
		for _, pp := range pipes {
			closeFiles(pp[:]...)
		}
	}
	// Kept to take, at a move, the input the process has not read.
	stdinR, err := unix.FcntlInt(pipes[0][0].Fd(), unix.F_DUPFD_CLOEXEC, 3)
	if err != nil {
		closeAll()
		return nil, err
	}
	stderr := pipes[2][1]
	if s.Stdio&StderrToStdout != 0 {
		stderr = pipes[1][1] // 2>&1 at the deputy: one pipe keeps the order of both
	}
	proc, err := startDirect(s, []*os.File{pipes[0][0], pipes[1][1], stderr})
	if err != nil {
		unix.Close(stdinR)
		closeAll()
		return nil, err
	}
	closeFiles(pipes[0][0], pipes[1][1], pipes[2][1]) // the command's ends
	p := &Proc{Pid: proc.Pid, Cmd: proc.Pid, process: proc, stdinR: stdinR,
		Stdin: pipes[0][1], Stdout: pipes[1][0], Stderr: pipes[2][0]}
	p.in = newInbox(p.Stdin)
	return p, nil
}

// setupTerminal gives the pty the deputy's settings and size, and to the
// caller (as login does).
func setupTerminal(slave *os.File, s *Spec) error {
	fd := int(slave.Fd())
	if len(s.Termios) > 0 {
		t, err := DecodeTermios(s.Termios)
		if err != nil {
			return err
		}
		if err := unix.IoctlSetTermios(fd, unix.TCSETS, t); err != nil {
			return fmt.Errorf("terminal settings: %w", err)
		}
	}
	if s.Rows != 0 && s.Cols != 0 {
		if err := SetWinsize(slave, s.Rows, s.Cols); err != nil {
			return fmt.Errorf("terminal size: %w", err)
		}
	}
	if err := unix.Fchown(fd, s.UID, -1); err != nil {
		return fmt.Errorf("terminal owner: %w", err)
	}
	return unix.Fchmod(fd, 0o620)
}

func (p *Proc) closeAll() {
	if p.in != nil {
		p.in.stop()
	}
	for _, c := range []io.Closer{p.Stdin, p.Stdout, p.Stderr} {
		if c != nil {
			c.Close()
		}
	}
	if p.stdinR >= 0 {
		unix.Close(p.stdinR)
		p.stdinR = -1
	}
}

// Adopt makes a Proc of a process that this one did not start but is
// the parent of (a process restored here after a move), with the agent's
// ends of its new stdio (nil without) and stdinR, a copy of the reading
// end of its stdin pipe (or -1). It is its own process group.
func Adopt(pid int, stdin io.WriteCloser, stdinR int, stdout, stderr io.ReadCloser) (*Proc, error) {
	proc, err := os.FindProcess(pid)
	if err != nil {
		return nil, err
	}
	p := &Proc{Pid: pid, Cmd: pid, Stdin: stdin, Stdout: stdout, Stderr: stderr, process: proc, stdinR: stdinR}
	if stdin != nil {
		p.in = newInbox(stdin)
	} else {
		p.in = newInbox(nopWriteCloser{})
	}
	return p, nil
}

type nopWriteCloser struct{}

func (nopWriteCloser) Write(b []byte) (int, error) { return len(b), nil }
func (nopWriteCloser) Close() error                { return nil }

// HoldWait keeps Wait from collecting anything (a stop, an exit) until
// ReleaseWait: the process is being traced for a move.
func (p *Proc) HoldWait() { p.gate.Lock() }

// ReleaseWait lets Wait go on.
func (p *Proc) ReleaseWait() { p.gate.Unlock() }

// Wait waits for the process to end and returns how. It reports stops
// and continues on the way (the signal that stopped it). It reaps the
// process; call it once. It looks first without collecting (WNOWAIT), then
// collects under the gate that HoldWait closes, so that it never takes the
// stops of a tracer of the process in this program.
func (p *Proc) Wait(stopped func(sig int), continued func()) Status {
	if p.wait != nil {
		return p.wait(stopped, continued)
	}
	for {
		var si unix.Siginfo
		err := unix.Waitid(unix.P_PID, p.Pid, &si, unix.WEXITED|unix.WSTOPPED|unix.WCONTINUED|unix.WNOWAIT|unix.WALL, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		var ws unix.WaitStatus
		var got int
		if err == nil {
			p.gate.Lock()
			got, err = unix.Wait4(p.Pid, &ws, unix.WUNTRACED|unix.WCONTINUED|unix.WALL|unix.WNOHANG, nil)
			p.gate.Unlock()
			if errors.Is(err, unix.EINTR) || err == nil && got == 0 {
				continue // a tracer's stop, taken by the tracer
			}
		}
		if err != nil {
			p.process.Release()
			return Status{Code: ExitLost, Lost: true}
		}
		switch {
		case ws.Stopped():
			if stopped != nil {
				stopped(int(ws.StopSignal()))
			}
		case ws.Continued():
			if continued != nil {
				continued()
			}
		case ws.Exited():
			p.process.Release()
			return Status{Code: ws.ExitStatus()}
		case ws.Signaled():
			p.process.Release()
			return Status{Signal: int(ws.Signal()), Core: ws.CoreDump()}
		}
	}
}

// Signal sends sig to the command's process group (and SIGCONT also to
// the helper leading a tty session, which stops with its command).
func (p *Proc) Signal(sig int) error {
	err := unix.Kill(-p.Cmd, unix.Signal(sig))
	if p.Cmd != p.Pid && (sig == int(unix.SIGCONT) || sig == int(unix.SIGKILL)) {
		unix.Kill(p.Pid, unix.Signal(sig))
	}
	return err
}

// Resize changes the pty's size (SIGWINCH follows); no-op without one.
func (p *Proc) Resize(rows, cols uint16) error {
	if p.pty == nil {
		return nil
	}
	return SetWinsize(p.pty, rows, cols)
}

// Hangup does what a terminal hang-up does: SIGHUP then SIGCONT to the
// process group (the kernel sends them when the pty's master closes).
// Output that follows is still read and discarded by the caller.
func (p *Proc) Hangup() {
	p.Signal(int(unix.SIGHUP))
	p.Signal(int(unix.SIGCONT))
}

// CloseStdin closes the process's input (a pipe) or, with a tty, sends
// the terminal's end-of-file character.
func (p *Proc) CloseStdin() error {
	if p.pty == nil {
		p.in.close()
		if p.closeStdin != nil {
			p.closeStdin()
		}
		return nil
	}
	t, err := unix.IoctlGetTermios(int(p.pty.Fd()), unix.TCGETS)
	if err != nil {
		return err
	}
	p.in.put([]byte{t.Cc[unix.VEOF]})
	return nil
}

// Close releases the agent's ends of the stdio.
func (p *Proc) Close() { p.closeAll() }
