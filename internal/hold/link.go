package hold

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ssi-cluster/ssi/internal/rexec"
)

// dialTimeout bounds connecting to a holder and reading its Info.
const dialTimeout = 5 * time.Second

// Link is an agent's connection to the holder of one process.
type Link struct {
	Info Info
	Path string      // the holder's socket
	Proc *rexec.Proc // the process, as the agent's session sees it

	conn   *rexec.StreamConn
	events chan event

	mu       sync.Mutex
	sink     func(rexec.Frame) // takes the counted frames, in order
	got      int64             // the number of the last counted frame received
	autoAck  bool
	replayed bool
}

// event is a stop, a continue or the end, from the holder to Wait.
type event struct {
	t   rexec.Type
	sig int
	st  rexec.Status
}

// SocketPath is where the holder of cpid listens in dir.
func SocketPath(dir string, cpid int64) string {
	return filepath.Join(dir, strconv.FormatInt(cpid, 10)+".sock")
}

// CPIDOf is the cluster pid a socket in dir is named by (ok false: not
// a holder's socket).
func CPIDOf(name string) (int64, bool) {
	s, ok := strings.CutSuffix(name, ".sock")
	if !ok {
		return 0, false
	}
	c, err := strconv.ParseInt(s, 10, 64)
	return c, err == nil && c > 0
}

// PrepareDir makes dir, the holders' sockets' directory, for this
// process's user alone (0700).
func PrepareDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return os.Chmod(dir, 0o700)
}

// Start starts a holder (exe run as Arg) that starts spec, already
// confined by the agent, and connects to it. A command that cannot be
// started is an *rexec.ExecError, as a shell would report it.
func Start(spec *rexec.Spec, dir, exe string) (*Link, error) {
	if err := PrepareDir(dir); err != nil {
		return nil, err
	}
	b, err := json.Marshal(spec)
	if err != nil {
		return nil, err
	}
	specR, specW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	repR, repW, err := os.Pipe()
	if err != nil {
		specR.Close()
		specW.Close()
		return nil, err
	}
	path := SocketPath(dir, spec.CPID)
	cmd := exec.Command(exe, Arg, path)
	cmd.Env, cmd.Dir = []string{}, "/"
	cmd.ExtraFiles = []*os.File{specR, repW} // specFD, reportFD
	// A session of its own: the agent's process group and terminal are
	// not the holder's.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	specR.Close()
	repW.Close()
	if err != nil {
		specW.Close()
		repR.Close()
		return nil, fmt.Errorf("start the holder: %w", err)
	}
	go cmd.Wait() // reaped while this agent lives; init's after
	go func() {
		specW.Write(b) // larger than a pipe's buffer: written while the holder reads
		specW.Close()
	}()
	var rep report
	rb, _ := io.ReadAll(io.LimitReader(repR, 64<<10))
	repR.Close()
	if err := json.Unmarshal(rb, &rep); err != nil {
		return nil, fmt.Errorf("the holder gave no report (%q)", rb)
	}
	switch {
	case rep.Msg != "":
		return nil, &rexec.ExecError{Code: rep.Code, Msg: rep.Msg}
	case rep.Err != "":
		return nil, errors.New(rep.Err)
	}
	return Dial(path)
}

// Dial connects to the holder at path, checks that it runs as this
// process's user (SO_PEERCRED), and reads its Info and files.
func Dial(path string) (*Link, error) {
	c, err := net.DialTimeout("unix", path, dialTimeout)
	if err != nil {
		return nil, err
	}
	uc := c.(*net.UnixConn)
	if err := peerIsUs(uc); err != nil {
		uc.Close()
		return nil, err
	}
	uc.SetReadDeadline(time.Now().Add(dialTimeout))
	first, files, err := rexec.ReadFiles(uc, 3)
	if err != nil {
		uc.Close()
		return nil, fmt.Errorf("holder %s: %w", path, err)
	}
	conn := rexec.NewStreamConn(uc, io.MultiReader(bytes.NewReader(first), uc))
	f, err := conn.Recv()
	uc.SetReadDeadline(time.Time{})
	if err == nil && f.Type != rexec.THeld {
		err = fmt.Errorf("first frame %s, not held", f.Type)
	}
	var info Info
	if err == nil {
		err = json.Unmarshal(f.Data, &info)
	}
	if err == nil && (info.Spec == nil || info.Cmd <= 0 || info.Pid <= 0) {
		err = errors.New("incomplete record")
	}
	if err != nil {
		uc.Close()
		closeFiles(files)
		return nil, fmt.Errorf("holder %s: %w", path, err)
	}
	return newLink(path, info, conn, files), nil
}

func newLink(path string, info Info, conn *rexec.StreamConn, files []*os.File) *Link {
	l := &Link{Info: info, Path: path, conn: conn, events: make(chan event, 64)}
	take := func(bit fileMask) *os.File {
		if info.Files&bit == 0 || len(files) == 0 {
			return nil
		}
		f := files[0]
		files = files[1:]
		return f
	}
	stdin, stdinRf, pty := take(fileStdin), take(fileStdinR), take(filePty)
	closeFiles(files) // any more than named
	stdin = pollable(stdin)
	stdinR := -1
	if stdinRf != nil {
		if fd, err := dupFile(stdinRf); err == nil {
			stdinR = fd
		}
		stdinRf.Close()
	}
	l.Proc = rexec.Held(info.Pid, info.Cmd, stdin, stdinR, pty, nil, nil, l.wait, func() {
		l.conn.Send(rexec.Frame{Type: rexec.TStdinEOF})
	})
	go l.loop()
	return l
}

// pollable returns the stdin pipe's writing end as a file of the
// runtime's poller (received files are not), so that a write can be cut
// short by a deadline (a move drains the input: rexec.Proc.DrainStdin).
// The holder's own end is already non-blocking: it is the same pipe.
func pollable(f *os.File) *os.File {
	if f == nil {
		return nil
	}
	defer f.Close()
	fd, err := dupFile(f)
	if err != nil {
		return nil
	}
	syscall.SetNonblock(fd, true)
	return os.NewFile(uintptr(fd), "stdin")
}

// dupFile duplicates f's descriptor (close-on-exec) without changing
// its blocking mode (File.Fd would make it blocking, for every holder of
// the same pipe).
func dupFile(f *os.File) (int, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd, derr := -1, error(nil)
	if err := rc.Control(func(u uintptr) { fd, derr = unix.FcntlInt(u, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		return -1, err
	}
	return fd, derr
}

func closeFiles(fs []*os.File) {
	for _, f := range fs {
		f.Close()
	}
}

// loop takes the holder's frames until the process's end or the
// connection's: each counted frame goes to the sink, in order, and stops,
// continues and the end also to Wait.
func (l *Link) loop() {
	for {
		f, err := l.conn.Recv()
		if err != nil {
			l.events <- event{t: rexec.TExit, st: rexec.Status{Code: rexec.ExitLost, Lost: true}} // the holder died
			return
		}
		if !rexec.Counted(f.Type) {
			continue
		}
		l.mu.Lock()
		l.got++
		sink, auto, n := l.sink, l.autoAck, l.got
		l.mu.Unlock()
		if sink != nil {
			sink(f)
		}
		if auto {
			l.Ack(n)
		}
		switch f.Type {
		case rexec.TStopped:
			l.events <- event{t: f.Type, sig: int(f.Data[0])}
		case rexec.TContinued:
			l.events <- event{t: f.Type}
		case rexec.TMoved:
			l.events <- event{t: rexec.TExit}
			return
		case rexec.TExit:
			st, err := rexec.ParseStatus(f.Data)
			if err != nil {
				st = rexec.Status{Code: rexec.ExitLost, Lost: true}
			}
			l.events <- event{t: rexec.TExit, st: st}
			return
		}
	}
}

// wait is the Proc's Wait: the holder's stops, continues and end.
func (l *Link) wait(stopped func(int), continued func()) rexec.Status {
	for e := range l.events {
		switch e.t {
		case rexec.TStopped:
			if stopped != nil {
				stopped(e.sig)
			}
		case rexec.TContinued:
			if continued != nil {
				continued()
			}
		case rexec.TExit:
			return e.st
		}
	}
	return rexec.Status{Code: rexec.ExitLost, Lost: true}
}

// Replay asks for the counted frames after n (what the home has: a new
// run, 0), given to sink in order; only the first call counts: the
// holder sends none before it.
func (l *Link) Replay(n int64, sink func(rexec.Frame)) {
	l.mu.Lock()
	first := !l.replayed
	if first {
		l.replayed, l.got, l.sink = true, n, sink
	}
	l.mu.Unlock()
	if first {
		l.conn.Send(rexec.CountFrame(rexec.TReplay, n))
	}
}

// Ack tells the holder that the home has the counted frames up to n.
func (l *Link) Ack(n int64) { l.conn.Send(rexec.AckFrame(n)) }

// Passed tells the holder that n counted frames of input are passed on
// to the process (for an agent that re-adopts it).
func (l *Link) Passed(n int64) { l.conn.Send(rexec.CountFrame(rexec.TPassed, n)) }

// Moved tells the holder that the process moved (m: where): its end
// here is the commit's kill, and Moved is its last frame.
func (l *Link) Moved(m *rexec.Moved) { l.conn.Send(rexec.JSON(rexec.TMoved, m)) }

// AutoAck acknowledges the frames as soon as they are received from
// here on (no home takes them: logged, or discarded after a hang-up).
func (l *Link) AutoAck() {
	l.mu.Lock()
	l.autoAck = true
	n := l.got
	l.mu.Unlock()
	l.Ack(n)
}

// Release tells the holder that the process's end is told: it ends.
func (l *Link) Release() {
	l.conn.Send(rexec.Frame{Type: rexec.TRelease})
	l.conn.Close()
}

// Close drops the connection and the agent's copies of the process's
// stdio (the holder carries on).
func (l *Link) Close() {
	l.conn.Close()
	l.Proc.Close()
}

// Inject gives the holder a frame of the agent's own for the session's
// stream (Moving, Resume): the holder numbers it among its frames and
// sends it back in order.
func (l *Link) Inject(f rexec.Frame) { l.conn.Send(f) }
