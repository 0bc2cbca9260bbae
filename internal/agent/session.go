package agent

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/ssi-cluster/ssi/internal/rexec"
)

// runSession is a process running here for a deputy (or, native, a
// process restored here after a move, which has none): the agent's ends
// of its stdio, its record, and the stream to its home, which changes
// when the home re-attaches after a move. It lives from the process's
// start (or restore) here to its end or its move away.
type runSession struct {
	a    *Agent
	spec *rexec.Spec // nil for a native process
	p    *rexec.Proc
	rec  *runRec

	mu      sync.Mutex
	conn    rexec.Conn    // the home's stream; nil while none is attached
	connEnd chan struct{} // closed when conn's use ends
	hungUp  bool          // its deputy went: output is discarded
	hold    chan struct{} // set during a move: closed by THold
	// awaitHome: restored after a move, no home attached yet; frames are
	// kept. Attaching or hanging up ends it (takeKeptLocked), so while it
	// holds, conn is nil and hungUp false.
	awaitHome bool
	kept      []rexec.Frame // what was sent while awaitHome (see keepLocked)
	keptBytes int           // output in kept
	moved     *rexec.Moved  // set at a move's commit: end with Moved
	skipStops int           // stops to leave unreported (restored stopped)
	pumps     sync.WaitGroup
	pumping   bool
	done      chan struct{} // closed when the session has ended
}

func (a *Agent) newSession(spec *rexec.Spec, p *rexec.Proc, rec *runRec) *runSession {
	return &runSession{a: a, spec: spec, p: p, rec: rec, done: make(chan struct{})}
}

// pid is the process's local pid.
func (s *runSession) pid() int { return s.p.Cmd }

// native: the process was not run for a deputy (a native process that
// moved here): no home stream.
func (s *runSession) native() bool { return s.spec == nil }

// start registers the session and waits for the process in the
// background: when it ends, or has moved, the session ends.
func (s *runSession) start() {
	s.a.track.addRun(s.pid(), s.rec)
	s.a.mig.add(s.rec.CPID, s)
	go s.wait()
}

func (s *runSession) wait() {
	st := s.p.Wait(func(sig int) {
		s.mu.Lock()
		skip := s.skipStops > 0
		if skip {
			s.skipStops--
		}
		s.mu.Unlock()
		if !skip {
			s.send(rexec.Frame{Type: rexec.TStopped, Data: []byte{byte(sig)}})
		}
	}, func() {
		s.send(rexec.Frame{Type: rexec.TContinued})
	})
	s.mu.Lock()
	moved := s.moved
	if !s.pumping && !s.native() && s.moved == nil {
		s.startPumpsLocked() // never attached: read what is left
	}
	s.mu.Unlock()
	cpid := showCPID(s.rec.CPID)
	if s.native() {
		if moved == nil {
			s.a.log.Info("process ended", "cpid", cpid, "pid", s.pid(), "code", st.Code, "signal", st.Signal)
			s.a.nativeEnded(s.rec.CPID)
		}
	} else {
		waitOrClose(&s.pumps, outputGrace, s.p)
	}
	s.a.track.dropRun(s.pid())
	// Ending before its home re-attached after a move: its last output
	// and status are kept for the home, which is on its way.
	s.mu.Lock()
	keep := s.awaitHome
	s.mu.Unlock()
	s.a.mig.retire(s.rec.CPID, s, keep)
	if moved != nil {
		s.a.log.Info("process moved away", "cpid", cpid, "pid", s.pid(), "node", moved.Node, "new_pid", moved.Pid)
		s.send(rexec.JSON(rexec.TMoved, moved))
	} else if !s.native() {
		s.a.log.Info("remote process ended", "cpid", cpid, "pid", s.pid(), "code", st.Code, "signal", st.Signal)
		s.send(rexec.JSON(rexec.TExit, st))
	}
	s.p.Close()
	s.mu.Lock()
	if s.connEnd != nil {
		close(s.connEnd)
		s.connEnd, s.conn = nil, nil
	}
	close(s.done)
	s.mu.Unlock()
}

// keptMax bounds the output kept for a home that has not re-attached.
// The process's pipes are not read before then, unless it ends, so
// what is kept is what its pipes held at its end.
const keptMax = 1 << 20

// send sends f to the attached home; while the home of a moved process
// has yet to re-attach, f is kept for it (keepLocked); otherwise, with no
// home attached, f is dropped.
func (s *runSession) send(f rexec.Frame) {
	s.mu.Lock()
	c := s.conn
	if s.awaitHome {
		s.keepLocked(f)
	}
	s.mu.Unlock()
	if c != nil && c.Send(f) != nil {
		s.detach(c, "its stream broke")
	}
}

// keepLocked keeps a copy of f for the home (s.mu held); output beyond
// keptMax is dropped, with a warning, never the process's status.
func (s *runSession) keepLocked(f rexec.Frame) {
	if f.Type == rexec.TStdout || f.Type == rexec.TStderr {
		if s.keptBytes+len(f.Data) > keptMax {
			s.a.log.Warn("output of a moved process dropped: its home has not re-attached", "cpid", showCPID(s.rec.CPID), "bytes", len(f.Data))
			return
		}
		s.keptBytes += len(f.Data)
	}
	f.Data = append([]byte(nil), f.Data...)
	s.kept = append(s.kept, f)
}

// takeKeptLocked ends the keeping and returns what was kept (s.mu held).
func (s *runSession) takeKeptLocked() []rexec.Frame {
	kept := s.kept
	s.kept, s.keptBytes, s.awaitHome = nil, 0, false
	return kept
}

// serve attaches conn, the home's stream, and serves it until the
// session ends, moves away, or conn or ctx end (then the process is hung
// up, as a terminal hang-up would).
func (s *runSession) serve(ctx context.Context, conn rexec.Conn) {
	if end := s.attachConn(ctx, conn); end != nil {
		<-end
	}
}

// attachConn attaches conn, the home's stream, and returns a channel
// closed when its use ends; nil if the session has ended: then conn is
// given what was kept for it (the process ended before its home
// re-attached) or refused.
func (s *runSession) attachConn(ctx context.Context, conn rexec.Conn) <-chan struct{} {
	end := make(chan struct{})
	started := rexec.JSON(rexec.TStarted, rexec.Started{CPID: s.rec.CPID, Node: s.a.Identity().Number, Pid: s.pid()})
	s.mu.Lock()
	select {
	case <-s.done:
		kept := s.takeKeptLocked()
		s.mu.Unlock()
		if len(kept) == 0 {
			refuseRun(conn, rexec.ExitLost, fmt.Sprintf("process %s ended or moved on", showCPID(s.rec.CPID)))
			return nil
		}
		s.a.log.Info("home re-attached to a process that had ended", "cpid", showCPID(s.rec.CPID), "pid", s.pid())
		sendAll(conn, started, kept)
		return nil
	default:
	}
	if s.connEnd != nil {
		close(s.connEnd) // a stale attachment
	}
	s.conn, s.connEnd, s.hungUp = conn, end, false
	// Started and what was kept go first, in order, before any output.
	broken := !sendAll(conn, started, s.takeKeptLocked())
	if !s.pumping {
		s.startPumpsLocked()
	}
	s.mu.Unlock()
	if broken {
		s.detach(conn, "its stream broke")
	}
	go s.read(conn, end)
	go s.a.watchHome(ctx, s.rec.Home, end, func(why string) { s.detach(conn, why) })
	return end
}

// sendAll sends first, then rest, until a send fails; it reports whether
// all were sent.
func sendAll(conn rexec.Conn, first rexec.Frame, rest []rexec.Frame) bool {
	if conn.Send(first) != nil {
		return false
	}
	for _, f := range rest {
		if conn.Send(f) != nil {
			return false
		}
	}
	return true
}

// read takes the home's frames from conn until it ends.
func (s *runSession) read(conn rexec.Conn, end <-chan struct{}) {
	for {
		f, err := conn.Recv()
		if err != nil {
			select {
			case <-end:
			default:
				s.detach(conn, "its deputy's stream ended: "+err.Error())
			}
			return
		}
		switch f.Type {
		case rexec.TStdin:
			s.p.WriteStdin(f.Data) // copied
			f.Release()
		case rexec.TStdinEOF:
			s.p.CloseStdin()
		case rexec.TWinsize:
			s.p.Resize(rexec.Winsize(f))
		case rexec.THold:
			s.mu.Lock()
			if s.hold != nil {
				close(s.hold)
				s.hold = nil
			}
			s.mu.Unlock()
		}
	}
}

// detach ends conn's attachment; unless the process has moved on, it is
// hung up (SIGHUP, then SIGCONT) and its output is discarded from then on.
func (s *runSession) detach(conn rexec.Conn, why string) {
	s.mu.Lock()
	if s.conn != conn || s.connEnd == nil {
		s.mu.Unlock()
		return
	}
	close(s.connEnd)
	s.conn, s.connEnd = nil, nil
	moving := s.moved != nil
	if !moving {
		s.hungUp = true
	}
	s.mu.Unlock()
	if moving {
		return
	}
	s.a.log.Info("remote process hung up", "cpid", showCPID(s.rec.CPID), "pid", s.pid(), "why", why)
	s.p.Hangup()
}

// expectAttach hangs the process up if no home attaches within d (a
// process restored here whose home never came back).
func (s *runSession) expectAttach(d time.Duration) {
	select {
	case <-s.done:
		return
	case <-time.After(d):
	}
	s.mu.Lock()
	lonely := s.conn == nil && !s.hungUp && s.moved == nil
	if lonely {
		s.hungUp = true
		s.takeKeptLocked()
		if !s.pumping {
			s.startPumpsLocked()
		}
	}
	s.mu.Unlock()
	if lonely {
		s.a.log.Warn("no home attached to a moved process; hung up", "cpid", showCPID(s.rec.CPID), "pid", s.pid(), "after", d)
		s.p.Hangup()
	}
}

// startPumpsLocked starts reading the process's output (s.mu held).
func (s *runSession) startPumpsLocked() {
	s.pumping = true
	for _, out := range []struct {
		r io.Reader
		t rexec.Type
	}{{s.p.Stdout, rexec.TStdout}, {s.p.Stderr, rexec.TStderr}} {
		if out.r == nil {
			continue
		}
		s.pumps.Add(1)
		go func() {
			defer s.pumps.Done()
			if s.spec.LogOutput {
				s.a.logOutput(s.spec, out.r, out.t)
				return
			}
			buf := make([]byte, rexec.Chunk)
			for {
				n, err := out.r.Read(buf)
				if n > 0 {
					s.send(rexec.Frame{Type: out.t, Data: buf[:n]})
				}
				if err != nil {
					return
				}
			}
		}()
	}
}
