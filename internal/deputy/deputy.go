package deputy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ssi-cluster/ssi/internal/api"
	"github.com/ssi-cluster/ssi/internal/client"
	"github.com/ssi-cluster/ssi/internal/relink"
	"github.com/ssi-cluster/ssi/internal/rexec"
)

// Options describe one run.
type Options struct {
	Argv      []string
	Env       []string // default: this process's environment
	Node      int      // 0 with Fast: the best node; 0 without: this node
	Fast      bool
	NoMigrate bool
	LogOutput bool // output to the executing agent's log (run -d)
	Stdin     *os.File
	Stdout    io.Writer
	Stderr    io.Writer
	// Started, if set, is told what runs where once it does.
	Started func(rexec.Started)
}

// forwarded are the signals a deputy passes on. SIGTTIN and SIGTTOU keep
// their default action (they stop the deputy, as job control wants);
// SIGCHLD and SIGURG are the runtime's.
var forwarded = []os.Signal{unix.SIGHUP, unix.SIGINT, unix.SIGQUIT, unix.SIGUSR1, unix.SIGUSR2, unix.SIGTERM,
	unix.SIGALRM, unix.SIGTSTP, unix.SIGCONT, unix.SIGWINCH, unix.SIGPIPE, unix.SIGVTALRM, unix.SIGPROF,
	unix.SIGXCPU, unix.SIGXFSZ, unix.SIGPWR, unix.SIGSYS}

// Run runs one command through the agent cl talks to and returns how it
// ended. Errors before the process starts come back as a Status too (with
// the agent's message printed on Stderr), so the caller only exits.
func Run(ctx context.Context, cl *client.Client, o Options) rexec.Status {
	sigc := make(chan os.Signal, 16)
	signal.Notify(sigc, forwarded...)
	defer signal.Stop(sigc)
	s := newSession(cl, o, 0)
	growPipe(o.Stdin)
	if f, ok := o.Stdout.(*os.File); ok {
		growPipe(f)
	}
	if o.Stdin != nil && isTerminal(o.Stdin) {
		if f, ok := o.Stdout.(*os.File); ok && isTerminal(f) {
			s.term = &terminal{fd: int(o.Stdin.Fd())}
		}
	}
	if s.term == nil {
		s.passStdio()
	}
	go s.forwardSignals(ctx, sigc)
	defer s.term.restore()
	return s.run(ctx)
}

// passStdio chooses the streams the agent is to write itself (see
// rexec.Spec.Stdio): stdout and stderr through pipes of the deputy's
// (sink.go) if they are pipes or files, as they are if /dev/null. Stdin
// stays with the deputy, which keeps what it sent until the process's
// node has it (input.go).
func (s *session) passStdio() {
	var first unix.Stat_t // stdout's, when piped
	for i, w := range []io.Writer{s.o.Stdout, s.o.Stderr} {
		f, ok := w.(*os.File)
		var st unix.Stat_t
		if !ok || unix.Fstat(int(f.Fd()), &st) != nil {
			continue
		}
		bit := [2]rexec.StdioMask{rexec.PassStdout, rexec.PassStderr}[i]
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG, unix.S_IFIFO:
			if i == 1 && s.piped[0] && st.Dev == first.Dev && st.Ino == first.Ino { // 2>&1
				s.shared, s.pass = true, s.pass|rexec.StderrToStdout
				continue
			}
			s.piped[i], s.pass, first = true, s.pass|bit, st
		default:
			if rexec.IsDevNull(&st) {
				s.asIs[i], s.pass = f, s.pass|bit
			}
		}
	}
}

// makeSinks makes where the process's output goes (sink.go).
func (s *session) makeSinks(ctx context.Context) {
	broke := func() { s.signal(ctx, int(unix.SIGPIPE)) }
	s.sinks[0] = &sink{w: s.o.Stdout, outMu: s.outMu, broke: broke}
	s.sinks[1] = &sink{w: s.o.Stderr, outMu: s.outMu, broke: broke}
	if s.shared {
		s.sinks[1] = s.sinks[0]
	}
}

// connFiles makes the files passed to one agent with the start frame, in
// the order of Spec.Stdio; sent are the writing ends of new output pipes,
// to be closed once passed (the pipe then ends when the agent closes it
// or goes).
func (s *session) connFiles() (files, sent []*os.File, err error) {
	for i := range 2 {
		switch {
		case s.asIs[i] != nil:
			files = append(files, s.asIs[i])
		case s.piped[i]:
			w, err := s.sinks[i].pipe()
			if err != nil {
				closeFiles(sent)
				return nil, nil, fmt.Errorf("making the output pipe: %w", err)
			}
			files, sent = append(files, w), append(sent, w)
		}
	}
	return files, sent, nil
}

func closeFiles(fs []*os.File) {
	for _, f := range fs {
		f.Close()
	}
}

// delivered notes what the agent says it has handled.
func (s *session) delivered(d rexec.Delivered) {
	s.mu.Lock()
	s.got = d.Frames
	if d.Node > 0 {
		s.gotNode, s.gotPid = int(d.Node), int(d.Pid)
	}
	s.mu.Unlock()
	if s.shared {
		s.sinks[0].ack(d.Stdout + d.Stderr)
		return
	}
	s.sinks[0].ack(d.Stdout)
	s.sinks[1].ack(d.Stderr)
}

// drained waits until the output pipes of the agent before are read to
// their ends, at most until deadline.
func (s *session) drained(deadline time.Time) bool {
	ok := true
	for _, k := range s.sinks {
		ok = k.drained(deadline) && ok
	}
	return ok
}

// outputEnd bounds the wait, once the process ended, for the agent to
// close the output pipes it wrote.
const outputEnd = 10 * time.Second

// session is one process's stream.
type session struct {
	cl   *client.Client
	o    Options
	tid  int
	term *terminal
	// job and rank: an instance of an --np job (nil for a single run).
	job  *jobStops
	rank int

	mu      sync.Mutex
	started *rexec.Started
	queued  []int // signals received before the process started
	conn    *rexec.StreamConn
	outMu   *sync.Mutex // serializes writes to Stdout/Stderr between sessions

	// What is passed to the agent (passStdio): the streams, stdout and
	// stderr as they are (asIs) or through pipes (piped; shared: stderr
	// into stdout's), and where output goes (sinks).
	pass   rexec.StdioMask
	asIs   [2]*os.File
	piped  [2]bool
	shared bool
	sinks  [2]*sink
	// input keeps what the deputy sent until the node has it (has:
	// what the agent last said of it; input.go).
	input *relink.Input
	has   rexec.InputHas
	// legacy: the home agent is of a version before Spec.Exact; it
	// tells nothing of the input, which is then not kept.
	legacy bool
	// got: the counted frames of the process's stream its home agent
	// has handled (TDelivered), which the next agent resumes from (rejoin),
	// in the session on node gotNode as pid gotPid (0: the one it started
	// in).
	got             int64
	gotNode, gotPid int
}

func newSession(cl *client.Client, o Options, tid int) *session {
	return &session{cl: cl, o: o, tid: tid, outMu: &sync.Mutex{}}
}

func (s *session) errorf(format string, args ...any) {
	s.term.restore()
	s.outMu.Lock()
	defer s.outMu.Unlock()
	fmt.Fprintf(s.o.Stderr, "ssi: "+format+"\n", args...)
}

// stopSelf stops the deputy (SIGSTOP), its terminal restored first, so
// that its shell sees the job stopped.
func (s *session) stopSelf() {
	s.term.restore()
	unix.Kill(unix.Getpid(), unix.SIGSTOP)
}

func (s *session) spec() *rexec.Spec {
	env := s.o.Env
	if env == nil {
		env = os.Environ()
	}
	dir, err := os.Getwd()
	if err != nil {
		dir = "/"
	}
	spec := &rexec.Spec{Argv: s.o.Argv, Env: env, Dir: dir, Node: s.o.Node, Fast: s.o.Fast,
		NoMigrate: s.o.NoMigrate, LogOutput: s.o.LogOutput, Thread: s.tid, Stdio: s.pass, Exact: true,
		SessionDelivered: true}
	if s.term != nil {
		spec.Tty = true
		if t, err := unix.IoctlGetTermios(s.term.fd, unix.TCGETS); err == nil {
			spec.Termios = rexec.EncodeTermios(t)
		}
		spec.Rows, spec.Cols, _ = rexec.GetWinsize(s.term.fd)
	}
	return spec
}

func (s *session) run(ctx context.Context) rexec.Status {
	s.makeSinks(ctx)
	conn, raw, err := s.cl.Run(ctx)
	if err != nil {
		s.errorf("%v", err)
		return rexec.Status{Code: rexec.ExitCannotRun}
	}
	defer func() { raw.Close() }()
	s.mu.Lock()
	s.conn = conn
	s.input = relink.NewInput(conn)
	s.mu.Unlock()
	defer s.input.Close()
	files, sent, err := s.connFiles()
	if err == nil {
		err = conn.SendFiles(rexec.JSON(rexec.TStart, s.spec()), files...)
		closeFiles(sent)
	}
	if err != nil {
		s.errorf("sending the run request: %v", err)
		return rexec.Status{Code: rexec.ExitCannotRun}
	}
	for {
		f, err := conn.Recv()
		if err != nil {
			// The home agent went (restarted, upgraded): the process
			// runs on; the next agent re-attaches this deputy to it,
			// and says from where to send the input again (InputFrom).
			s.input.Suspend()
			nc, nraw, rerr := s.rejoin(ctx)
			if rerr != nil {
				s.errorf("lost the agent (%v); the process was hung up", err)
				return rexec.Status{Code: rexec.ExitLost, Lost: true}
			}
			raw.Close()
			conn, raw = nc, nraw
			continue
		}
		switch f.Type {
		case rexec.TDelivered:
			d, err := rexec.ParseDelivered(f)
			if err != nil {
				s.errorf("%v", err)
				continue
			}
			s.delivered(d)
		case rexec.TStarted:
			st, err := rexec.ParseStarted(f.Data)
			if err != nil {
				s.errorf("%v", err)
				continue
			}
			s.onStarted(ctx, st)
		case rexec.TAck: // from a home agent of a version before Spec.Exact
			s.mu.Lock()
			s.got = rexec.Ack(f)
			s.mu.Unlock()
		case rexec.TInputHas:
			h, err := rexec.ParseInputHas(f.Data)
			if err != nil {
				s.errorf("%v", err)
				continue
			}
			s.inputHas(h)
		case rexec.TInputFrom:
			s.inputFrom(conn, rexec.Ack(f))
		case rexec.TStdout:
			s.sinks[0].give(f.Data)
		case rexec.TStderr:
			s.sinks[1].give(f.Data)
		case rexec.TStopped:
			// The deputy stops with its process, so that its shell
			// sees the job stop; an --np launcher once all its
			// instances have (jobStops).
			if s.job == nil || s.job.stop(s.rank) {
				s.stopSelf()
			}
		case rexec.TContinued:
			if s.job != nil {
				s.job.cont(s.rank)
			}
		case rexec.TError:
			s.errorf("%s", f.Data)
		case rexec.TExit:
			st, err := rexec.ParseStatus(f.Data)
			if err != nil {
				s.errorf("%v", err)
				return rexec.Status{Code: rexec.ExitLost, Lost: true}
			}
			if !s.drained(time.Now().Add(outputEnd)) {
				s.errorf("the agent kept the output pipe open %v after the process ended; output may be cut short", outputEnd)
			}
			return st
		}
	}
}

func (s *session) onStarted(ctx context.Context, st rexec.Started) {
	s.mu.Lock()
	s.started = &st
	s.has = rexec.InputHas{Node: st.Node, Pid: st.Pid}
	s.legacy = !st.Exact
	queued := s.queued
	s.queued = nil
	s.mu.Unlock()
	if s.o.Started != nil {
		s.o.Started(st)
	}
	s.term.raw()
	for _, sig := range queued {
		s.signal(ctx, sig)
	}
	go s.pumpStdin()
}

// signal forwards sig to the remote process group, or keeps it for when
// the process has started.
func (s *session) signal(ctx context.Context, sig int) {
	s.mu.Lock()
	st := s.started
	if st == nil {
		s.queued = append(s.queued, sig)
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := s.cl.Signal(ctx, api.SignalRequest{CPID: st.CPID, Signal: sig}); err != nil {
		var ce *client.Error
		if !errors.As(err, &ce) || ce.Status != 404 { // gone already: nothing to say
			s.errorf("forwarding signal %d: %v", sig, err)
		}
	}
}

// forwardSignals passes the deputy's signals on; with a terminal, SIGWINCH
// becomes a window-size frame.
func (s *session) forwardSignals(ctx context.Context, sigc <-chan os.Signal) {
	for sig := range sigc {
		n := int(sig.(syscall.Signal))
		switch sig {
		case unix.SIGWINCH:
			if s.term != nil {
				if rows, cols, err := rexec.GetWinsize(s.term.fd); err == nil {
					s.send(rexec.WinsizeFrame(rows, cols))
				}
			}
			continue
		case unix.SIGCONT:
			s.term.raw()
		case unix.SIGPIPE:
			continue // a write to stdout failing says so (EPIPE)
		}
		s.signal(ctx, n)
	}
}

// pumpStdin sends stdin to the process. A terminal is read only while the
// deputy is in the foreground, so a job put in the background does not
// steal the shell's input (nor stop on SIGTTIN while its process runs).
func (s *session) pumpStdin() {
	in := s.o.Stdin
	if in == nil {
		s.send(rexec.Frame{Type: rexec.TStdinEOF})
		return
	}
	fd := int(in.Fd())
	tty := isTerminal(in)
	buf := make([]byte, rexec.Chunk)
	for {
		if tty {
			if !foreground(fd) {
				time.Sleep(100 * time.Millisecond)
				continue
			}
			pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
			if n, err := unix.Poll(pfd, 100); err != nil || n == 0 || !foreground(fd) {
				continue
			}
		}
		n, err := in.Read(buf)
		if n > 0 && s.send(rexec.Frame{Type: rexec.TStdin, Data: buf[:n]}) != nil {
			return // the run is over
		}
		if err != nil {
			s.send(rexec.Frame{Type: rexec.TStdinEOF})
			return
		}
	}
}

// growPipe gives a pipe 1 MiB of buffer (from 64 KiB): a stream through
// the deputy then moves in larger, fewer frames.
func growPipe(f *os.File) {
	if f == nil {
		return
	}
	var st unix.Stat_t
	if unix.Fstat(int(f.Fd()), &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFIFO {
		unix.FcntlInt(f.Fd(), unix.F_SETPIPE_SZ, 1<<20)
	}
}

// Exit ends the deputy as its process ended: the same exit status, or
// death by the same signal (without a core of the deputy's own).
func Exit(st rexec.Status) { rexec.ExitAs(st) }
