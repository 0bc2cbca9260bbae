package agent

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ssi-cluster/ssi/internal/rexec"
	"github.com/ssi-cluster/ssi/internal/state"
	"github.com/ssi-cluster/ssi/internal/transport"
	"github.com/ssi-cluster/ssi/internal/vproc"
)

// The executing side of `ssi run`: a process started here for a deputy,
// its output streamed back, its stops and exit reported.

// outputGrace is how long output is still read after the process ended
// (a child it left behind may hold the pipe open).
const outputGrace = 2 * time.Second

// grpcConn is a rexec.Conn over a gRPC stream.
type grpcConn struct {
	s  transport.Stream
	mu sync.Mutex
}

func (c *grpcConn) Send(f rexec.Frame) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.s.SendMsg(&f)
}

func (c *grpcConn) Recv() (rexec.Frame, error) {
	var f rexec.Frame
	err := c.s.RecvMsg(&f)
	return f, err
}

// Exec runs a process here for a deputy whose home agent calls.
func (h *rpcHandler) Exec(s transport.Stream) error {
	a := h.agent()
	conn := &grpcConn{s: s}
	f, err := conn.Recv()
	if err != nil {
		return err
	}
	if f.Type != rexec.TStart {
		return status.Errorf(codes.InvalidArgument, "the first frame is %s, not start", f.Type)
	}
	spec, err := rexec.ParseSpec(f.Data)
	if err != nil {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	peer, _ := transport.PeerFrom(s.Context())
	home := 0
	a.store.FSM.Read(func(reg *state.Registry) {
		if n := reg.ByID(peer); n != nil {
			home = n.Number
		}
	})
	if home == 0 || spec.Home != home || vproc.CPID(spec.CPID).Node() != home {
		return status.Errorf(codes.PermissionDenied, "node %q may run processes only with its own home and cluster pids", peer)
	}
	a.execute(s.Context(), spec, conn)
	return nil
}

// execute runs spec here and serves its deputy over conn until the
// process ends. ctx ending (the deputy or its node gone) hangs the process
// up, as a terminal hang-up would: SIGHUP, then its output is discarded.
func (a *Agent) execute(ctx context.Context, spec *rexec.Spec, conn rexec.Conn) {
	self := a.Identity().Number
	if spec.UID == 0 && spec.Home != self && !a.cfg.AllowRemoteRoot {
		a.log.Warn("refused to run as root for another node", "home", spec.Home, "argv", spec.Argv)
		refuseRun(conn, rexec.ExitCannotRun, fmt.Sprintf("node %d does not run processes as root for other nodes (allow_remote_root is off)", self))
		return
	}
	p, err := rexec.Start(spec, a.shim)
	if err != nil {
		a.log.Error("remote execution failed to start", "argv", spec.Argv, "err", err)
		refuseRun(conn, rexec.ExitCannotRun, fmt.Sprintf("node %d: %v", self, err))
		return
	}
	defer p.Close()
	rec := &runRec{CPID: spec.CPID, PPid: spec.PPid, PGid: spec.PGid, Home: spec.Home,
		UID: spec.UID, Argv: spec.Argv, Attached: true, NoMigrate: spec.NoMigrate}
	if p.Pid != p.Cmd {
		rec.Helper = p.Pid
	}
	a.track.addRun(p.Cmd, rec)
	defer a.track.dropRun(p.Cmd)
	a.log.Info("remote execution", "cpid", showCPID(spec.CPID), "pid", p.Cmd, "home", spec.Home,
		"uid", spec.UID, "user", a.userName(spec.UID), "argv", spec.Argv, "dir", spec.Dir, "tty", spec.Tty)
	a.metrics.execs.Inc()

	var gone atomic.Bool // the deputy is gone: no more frames
	send := func(f rexec.Frame) {
		if !gone.Load() && conn.Send(f) != nil {
			gone.Store(true)
		}
	}
	send(rexec.JSON(rexec.TStarted, rexec.Started{CPID: spec.CPID, Node: self, Pid: p.Cmd}))

	var pumps sync.WaitGroup
	for _, out := range []struct {
		r io.Reader
		t rexec.Type
	}{{p.Stdout, rexec.TStdout}, {p.Stderr, rexec.TStderr}} {
		if out.r == nil {
			continue
		}
		pumps.Add(1)
		go func() {
			defer pumps.Done()
			if spec.LogOutput {
				a.logOutput(spec, out.r, out.t)
				return
			}
			buf := make([]byte, rexec.Chunk)
			for {
				n, err := out.r.Read(buf)
				if n > 0 {
					send(rexec.Frame{Type: out.t, Data: buf[:n]})
				}
				if err != nil {
					return
				}
			}
		}()
	}

	hungUp := make(chan struct{})
	var hangOnce sync.Once
	hangup := func(why string) {
		hangOnce.Do(func() {
			gone.Store(true)
			a.track.setAttached(p.Cmd, false)
			a.log.Info("remote process hung up", "cpid", showCPID(spec.CPID), "pid", p.Cmd, "why", why)
			p.Hangup()
			close(hungUp)
		})
	}
	done := make(chan struct{})
	go a.watchHome(ctx, spec.Home, done, hangup)
	go func() {
		for {
			f, err := conn.Recv()
			if err != nil {
				select {
				case <-done:
				default:
					hangup("its deputy's stream ended: " + err.Error())
				}
				return
			}
			switch f.Type {
			case rexec.TStdin:
				p.Stdin.Write(f.Data) // a process that closed its stdin drops input
			case rexec.TStdinEOF:
				p.CloseStdin()
			case rexec.TWinsize:
				p.Resize(rexec.Winsize(f))
			}
		}
	}()

	st := p.Wait(func(sig int) {
		send(rexec.Frame{Type: rexec.TStopped, Data: []byte{byte(sig)}})
	}, func() {
		send(rexec.Frame{Type: rexec.TContinued})
	})
	close(done)
	waitOrClose(&pumps, outputGrace, p)
	a.log.Info("remote process ended", "cpid", showCPID(spec.CPID), "pid", p.Cmd, "code", st.Code, "signal", st.Signal)
	send(rexec.JSON(rexec.TExit, st))
}

// watchHome hangs up when ctx ends or the home node is no longer up.
func (a *Agent) watchHome(ctx context.Context, home int, done <-chan struct{}, hangup func(string)) {
	why := a.waitNodeGone(ctx, home, done)
	select {
	case <-done:
		return
	default:
	}
	if why != "" {
		hangup(fmt.Sprintf("home node %d %s", home, why))
	} else if ctx.Err() != nil {
		hangup("its deputy's stream ended")
	}
}

// waitOrClose waits for the output pumps, at most grace, then closes the
// process's pipes so that they end.
func waitOrClose(wg *sync.WaitGroup, grace time.Duration, p *rexec.Proc) {
	ch := make(chan struct{})
	go func() { wg.Wait(); close(ch) }()
	select {
	case <-ch:
	case <-time.After(grace):
		p.Close()
		<-ch
	}
}

// logOutput writes a detached process's output to the agent's log, a
// record a line.
func (a *Agent) logOutput(spec *rexec.Spec, r io.Reader, t rexec.Type) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), 64<<10)
	for sc.Scan() {
		a.log.Info("output", "cpid", showCPID(spec.CPID), "stream", t.String(), "line", sc.Text())
	}
	io.Copy(io.Discard, r)
}

// refuseRun tells a deputy its process could not be run.
func refuseRun(conn rexec.Conn, code int, msg string) {
	conn.Send(rexec.Frame{Type: rexec.TError, Data: []byte(msg)})
	conn.Send(rexec.JSON(rexec.TExit, rexec.Status{Code: code}))
}
