package agent

import (
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ssi-cluster/ssi/internal/hold"
	"github.com/ssi-cluster/ssi/internal/relink"
	"github.com/ssi-cluster/ssi/internal/rexec"
)

// runSession is a process running here for a deputy (or, native, a
// process restored here after a move, which has none): the agent's ends
// of its stdio, its record, and the stream to its home, which changes
// when the home re-attaches after a move or after the stream broke. It
// lives from the process's start (or restore) here to its end or its
// move away.
//
// What it sends its home goes through out (relink.Outbox), numbered and
// kept until the home acknowledges it, by one writer per attachment
// (write): a home that re-attaches after a break gets what it missed.
// While no home is attached but one may come (awaitHome), the process is
// kept with its output for the grace period (expectAttach), its output
// pumps waiting once relink.Window bytes (or WindowFrames frames) are
// unacknowledged: its writes then block, nothing is dropped.
type runSession struct {
	a     *Agent
	spec  *rexec.Spec // nil for a native process
	p     *rexec.Proc
	rec   *runRec
	grace time.Duration // how long it waits for a home that went (spec.GraceMS or run_grace)
	held  *hold.Link    // the process's holder (session_held.go); nil for a process restored here

	mu      sync.Mutex
	cond    *sync.Cond    // on mu: out, sent, flushed or the attachment changed
	conn    rexec.Conn    // the home's stream; nil while none is attached
	connEnd chan struct{} // closed when conn's use ends
	gen     int           // attachments so far (a stale timer or reader sees it changed)
	hungUp  bool          // its deputy went, or never came back: output is discarded
	hold    chan struct{} // set during a move: closed by THold
	// awaitHome: no home attached, one may come (after a move, or a
	// broken stream, within the grace); output is kept in out. Attaching
	// or hanging up ends it, so while it holds, conn is nil and hungUp
	// false.
	awaitHome bool
	out       relink.Outbox // counted frames for the home, until it acknowledges them
	sent      int64         // the last frame given to the writer of conn
	flushed   int64         // the last frame the writer of conn sent
	inRecv    int64         // the home's counted frames received (queued in inQ or passed on)
	inBase    int64         // the deputy's input frames before this session's first (those that came with a move)
	arrived   time.Time     // when it moved here (zero: it started here)
	born      time.Time     // when it started, on the first node (zero: its start here, from /proc)
	inQ       []rexec.Frame // received, for the input loop to pass on
	in        relink.Acks   // the home's counted frames passed on to the process
	inAck     int64         // the acknowledgement of input for the writer to send
	inAcked   int64         // the last one it sent on conn
	inLoop    bool          // the input loop runs
	stopPumps bool          // the pipes are being closed: pumps wait no more
	pumped    atomic.Int64  // bytes of output read from the process so far
	finished  bool          // the last frame (Exit or Moved) was sent: a stream ending now is no break
	moved     *rexec.Moved  // set at a move's commit: end with Moved
	skipStops int           // stops to leave unreported (restored stopped)
	pumps     sync.WaitGroup
	pumping   bool
	done      chan struct{} // closed when the session has ended
	// releaseDue: the holder of the ended process may go (releaseHeld);
	// lastSent: the last frame any attachment sent.
	releaseDue bool
	lastSent   int64
}

func (a *Agent) newSession(spec *rexec.Spec, p *rexec.Proc, rec *runRec) *runSession {
	s := &runSession{a: a, spec: spec, p: p, rec: rec, done: make(chan struct{}), grace: a.runGrace()}
	if spec != nil && spec.GraceMS > 0 {
		s.grace = min(time.Duration(spec.GraceMS)*time.Millisecond, maxGrace)
	}
	s.cond = sync.NewCond(&s.mu)
	return s
}

// maxGrace bounds the grace a home may ask a node to keep a process for.
const maxGrace = 10 * time.Minute

// arrivedAt is when the process moved here (zero if it started here).
func (s *runSession) arrivedAt() time.Time { return s.arrived }

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
	if s.held == nil {
		s.noteRestored() // what an agent that restarts says of it (restored.go)
	}
	go s.wait()
}

func (s *runSession) wait() {
	stopped, continued := func(sig int) {
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
	}
	if s.held != nil {
		stopped, continued = nil, nil // the holder's frames
	}
	st := s.p.Wait(stopped, continued)
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
		s.drainOutput()
	}
	s.a.track.dropRun(s.pid(), s.rec)
	if moved != nil {
		s.a.log.Info("process moved away", "cpid", cpid, "pid", s.pid(), "node", moved.Node, "new_pid", moved.Pid)
		if s.held == nil { // else the holder's last frame
			s.send(rexec.JSON(rexec.TMoved, moved))
		}
	} else if !s.native() {
		s.a.log.Info("remote process ended", "cpid", cpid, "pid", s.pid(), "code", st.Code, "signal", st.Signal)
		if s.held == nil {
			s.send(rexec.JSON(rexec.TExit, st))
		}
	}
	s.flush()
	s.mu.Lock()
	s.finished = true
	s.mu.Unlock()
	// Its last output and status are kept for a home that may still
	// come for them (re-attaching after a move or a broken stream).
	s.mu.Lock()
	keep := !s.native() && !s.hungUp
	s.mu.Unlock()
	s.a.mig.retire(s.rec.CPID, s, keep)
	s.p.Close()
	if s.held != nil {
		go s.releaseHeld()
	} else {
		s.forgetRestored()
	}
	s.mu.Lock()
	if s.connEnd != nil {
		close(s.connEnd)
		s.connEnd, s.conn = nil, nil
	}
	close(s.done)
	s.cond.Broadcast()
	s.mu.Unlock()
}

// flush waits until the attached home's writer has sent everything, or
// the home is no longer attached.
func (s *runSession) flush() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.conn != nil && s.flushed < s.out.Last() {
		s.cond.Wait()
	}
}

// send hands f to the home: kept (counted frames) and sent by the writer
// of the attached home, or kept for a home that may come (awaitHome);
// with no home attached or to come, f is dropped.
func (s *runSession) send(f rexec.Frame) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == nil && !s.awaitHome {
		return
	}
	s.out.Put(f)
	s.cond.Broadcast()
}

// waitRoom waits, before output is read from the process, until less
// than a window (Outbox.Full) waits for the home's acknowledgement (or
// no home is to come, or the pipes are being closed).
func (s *runSession) waitRoom() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.out.Full() && (s.conn != nil || s.awaitHome) && !s.stopPumps {
		s.cond.Wait()
	}
}

// write sends conn what is kept for it, in order, as it comes, until conn
// is no longer the attached stream or breaks.
func (s *runSession) write(conn rexec.Conn) {
	for {
		s.mu.Lock()
		for s.conn == conn && s.sent >= s.out.Last() && s.inAck <= s.inAcked {
			s.cond.Wait()
		}
		if s.conn != conn {
			s.mu.Unlock()
			return
		}
		fs, ok := s.out.From(s.sent)
		s.sent = s.out.Last()
		if s.inAck > s.inAcked {
			s.inAcked = s.inAck
			fs = append(fs, rexec.AckFrame(s.inAck))
		}
		s.mu.Unlock()
		if !ok { // cannot happen: acks never pass what was sent
			s.detach(conn, "its stream lost frames")
			return
		}
		for _, f := range fs {
			if conn.Send(f) != nil {
				s.detach(conn, "its stream broke")
				return
			}
		}
		s.mu.Lock()
		if s.conn == conn {
			s.flushed = max(s.flushed, s.sent)
			s.lastSent = max(s.lastSent, s.flushed)
			s.cond.Broadcast()
		}
		s.mu.Unlock()
	}
}

// serve attaches conn, the home's stream, and serves it until the
// session ends, moves away, or conn or ctx end (then the process waits
// for its home for the grace period, or, told so, is hung up).
func (s *runSession) serve(ctx context.Context, conn rexec.Conn, received int64) {
	if end := s.attachConn(ctx, conn, received); end != nil {
		<-end
	}
}

// attachConn attaches conn, the home's stream, which has received the
// session's counted frames up to received, and returns a channel closed
// when its use ends; nil if it could not attach (answered on conn): the
// session has ended (then conn is given the rest of what was kept for
// it, if it was) or lost what the home missed.
func (s *runSession) attachConn(ctx context.Context, conn rexec.Conn, received int64) <-chan struct{} {
	end := make(chan struct{})
	s.mu.Lock()
	// The input received so far is queued or passed on (read, input): no
	// input of a stale attachment is counted once gen changes below.
	base := s.inBase
	started := rexec.JSON(rexec.TStarted, rexec.Started{CPID: s.rec.CPID, Node: s.a.Identity().Number, Pid: s.pid(), Received: s.inRecv, InputBase: &base})
	if s.held != nil && !s.pumping {
		s.out.Skip(received) // re-adopted: the holder has the frames after received
	}
	rest, ok := s.out.From(received)
	select {
	case <-s.done:
		s.mu.Unlock()
		st := rexec.Started{CPID: s.rec.CPID, Node: s.a.Identity().Number, Pid: s.pid(), Received: s.inRecv, InputBase: &base, Ended: true}
		started = rexec.JSON(rexec.TStarted, st)
		if !ok || len(rest) == 0 {
			refuseRun(conn, rexec.ExitLost, fmt.Sprintf("process %s ended or moved on", showCPID(s.rec.CPID)))
			return nil
		}
		s.a.log.Info("home re-attached to a process that had ended", "cpid", showCPID(s.rec.CPID), "pid", s.pid())
		sendAll(conn, started, rest)
		return nil
	default:
	}
	if !ok {
		s.mu.Unlock()
		refuseRun(conn, rexec.ExitLost, fmt.Sprintf("process %s was hung up: its home did not come back within %s", showCPID(s.rec.CPID), s.grace))
		return nil
	}
	if s.connEnd != nil {
		close(s.connEnd) // a stale attachment
	}
	s.conn, s.connEnd, s.hungUp, s.awaitHome = conn, end, false, false
	s.gen++
	s.out.Ack(received)
	s.sent, s.flushed, s.inAcked = received, received, 0
	s.cond.Broadcast()
	// Started goes first, before what was kept: the writer starts after.
	broken := conn.Send(started) != nil
	if !s.pumping {
		s.startPumpsLocked()
	}
	if !s.inLoop {
		s.inLoop = true
		go s.input()
	}
	gen := s.gen
	s.mu.Unlock()
	if broken {
		s.detach(conn, "its stream broke")
	}
	go s.write(conn)
	go s.read(conn, gen, end)
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

// detach ends conn's attachment because it broke (why): unless the
// process has moved on, it waits for its home to re-attach, for the
// grace period, its output kept (expectAttach).
func (s *runSession) detach(conn rexec.Conn, why string) {
	s.mu.Lock()
	if s.conn != conn || s.connEnd == nil {
		s.mu.Unlock()
		return
	}
	close(s.connEnd)
	s.conn, s.connEnd = nil, nil
	// Ended or moved: nothing to wait for (a home that missed the last
	// frames finds them kept, retire).
	over := s.moved != nil || s.finished
	if !over {
		s.awaitHome = true
	}
	gen := s.gen
	s.cond.Broadcast()
	s.mu.Unlock()
	if over {
		return
	}
	s.a.log.Warn("lost the stream to a remote process's home; keeping the process for it", "cpid", showCPID(s.rec.CPID),
		"pid", s.pid(), "why", why, "grace", s.grace)
	go s.expectAttachGen(gen, s.grace)
}

// hangup hangs the process up at once (SIGHUP, then SIGCONT): its deputy
// is gone; output is discarded from then on.
func (s *runSession) hangup(conn rexec.Conn, why string) {
	s.mu.Lock()
	if s.conn != conn || s.connEnd == nil {
		s.mu.Unlock()
		return
	}
	close(s.connEnd)
	s.conn, s.connEnd = nil, nil
	moving := s.moved != nil
	if !moving {
		s.hungUpLocked()
	}
	s.mu.Unlock()
	if moving {
		return
	}
	s.a.log.Info("remote process hung up", "cpid", showCPID(s.rec.CPID), "pid", s.pid(), "why", why)
	s.p.Hangup()
}

// hungUpLocked marks the session hung up (s.mu held): nothing is kept
// for a home any more, and pumps read on (to discard).
func (s *runSession) hungUpLocked() {
	s.hungUp, s.awaitHome = true, false
	s.out.Clear()
	if s.held != nil {
		s.held.AutoAck()
	}
	if !s.pumping {
		s.startPumpsLocked()
	}
	s.cond.Broadcast()
}

// expectAttach hangs the process up if no home attaches within d (a
// process restored here whose home never came back).
func (s *runSession) expectAttach(d time.Duration) {
	s.mu.Lock()
	gen := s.gen
	s.mu.Unlock()
	s.expectAttachGen(gen, d)
}

// expectAttachGen hangs the process up if no home attached after
// attachment gen within d.
func (s *runSession) expectAttachGen(gen int, d time.Duration) {
	select {
	case <-s.done:
		return
	case <-time.After(d):
	}
	s.mu.Lock()
	lonely := s.conn == nil && !s.hungUp && s.moved == nil && s.gen == gen
	if lonely {
		s.hungUpLocked()
	}
	s.mu.Unlock()
	if lonely {
		s.a.log.Warn("no home attached to a remote process; hung up", "cpid", showCPID(s.rec.CPID), "pid", s.pid(), "after", d)
		s.p.Hangup()
	}
}

// drainOutput waits, once the process has ended, for its output to be
// read to the end. The pipes are closed only when the pumps made no
// progress for outputGrace while free to read: a child left behind that
// holds a pipe open and writes nothing. A pump held back by flow control
// (its home slow to acknowledge, as under heavy load) or still reading is
// waited for: closing then dropped up to a pipe's worth of the end of the
// output, with the exit status still 0.
func (s *runSession) drainOutput() {
	done := make(chan struct{})
	go func() { s.pumps.Wait(); close(done) }()
	last := s.pumped.Load()
	for {
		select {
		case <-done:
			return
		case <-time.After(outputGrace):
		}
		now := s.pumped.Load()
		s.mu.Lock()
		held := s.out.Full() && (s.conn != nil || s.awaitHome)
		s.mu.Unlock()
		if now != last || held {
			last = now
			continue
		}
		s.p.Close()
		s.mu.Lock()
		s.stopPumps = true
		s.cond.Broadcast()
		s.mu.Unlock()
		<-done
		return
	}
}

// startPumpsLocked starts reading the process's output (s.mu held).
func (s *runSession) startPumpsLocked() {
	s.pumping = true
	if s.held != nil {
		s.replayHeldLocked()
		return
	}
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
				s.waitRoom()
				n, err := out.r.Read(buf)
				s.pumped.Add(int64(n))
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
