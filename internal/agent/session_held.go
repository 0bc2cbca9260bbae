package agent

import (
	"bufio"
	"bytes"
	"time"

	"github.com/ssi-cluster/ssi/internal/hold"
	"github.com/ssi-cluster/ssi/internal/rexec"
)

// A runSession of a held process (package hold). The holder, not the
// agent, reads the process's output, collects its stops and its end, and
// keeps the session's counted frames to the home, numbered from 1 at the
// process's start, until the home acknowledges them: it is the session's
// outbox of record, and out (relink.Outbox) the agent's copy of what it
// has not acknowledged. The holder's frames come in order (fromHolder)
// and are put in out as they come, so both number them alike; the frames
// the agent adds (Moving, Resume; Moved at a move's commit) go through
// the holder (sendOwn), which numbers them in its stream. The home's
// acknowledgements are passed on (TAck), and so is the count of input
// passed on to the process (TPassed). An agent that restarts re-adopts
// the process (readopt, adopt): its home re-attaches with Received, and
// the holder sends the frames after that one.

// adopt makes s the session of a process held before this agent started,
// waiting for its home: the input passed on so far is the holder's count.
func (s *runSession) adopt(l *hold.Link) {
	s.held = l
	s.awaitHome = true
	s.inRecv = l.Info.Passed
	s.in.Resume(l.Info.Passed)
}

// replayHeldLocked asks the holder for its frames after out's last
// (s.mu held): a new run's from the first, a re-adopted one's from what
// its home has.
func (s *runSession) replayHeldLocked() {
	if s.spec.LogOutput || s.hungUp {
		s.held.AutoAck()
	}
	s.held.Replay(s.out.Last(), s.fromHolder)
}

// fromHolder takes the holder's next counted frame.
func (s *runSession) fromHolder(f rexec.Frame) {
	if s.spec.LogOutput && (f.Type == rexec.TStdout || f.Type == rexec.TStderr) {
		sc := bufio.NewScanner(bytes.NewReader(f.Data))
		for sc.Scan() {
			s.a.log.Info("output", "cpid", showCPID(s.rec.CPID), "stream", f.Type.String(), "line", sc.Text())
		}
		f = rexec.Frame{Type: f.Type} // numbered all the same
	}
	s.send(f)
}

// sendOwn sends a frame the agent adds to the session's stream: through
// the holder, for a held process, which numbers it.
func (s *runSession) sendOwn(f rexec.Frame) {
	if s.held != nil {
		s.held.Inject(f)
		return
	}
	s.send(f)
}

// releaseHeld lets the holder of an ended process go once its last frame
// is acknowledged or was sent on the home's stream (the stream ends after
// it: the home's last acknowledgement may never come), the process was
// hung up, or the grace ran out: until then an agent that restarts finds
// the end kept for the home. (A restart in the moment between the last
// frame's send and its arrival at the home loses that end; a stream that
// breaks then is served from the ended session the agent keeps.)
func (s *runSession) releaseHeld() {
	t := time.AfterFunc(s.grace, func() {
		s.mu.Lock()
		s.releaseDue = true
		s.cond.Broadcast()
		s.mu.Unlock()
	})
	defer t.Stop()
	s.mu.Lock()
	for !s.hungUp && !s.releaseDue && s.out.Base() < s.out.Last() && s.lastSent < s.out.Last() {
		s.cond.Wait()
	}
	s.mu.Unlock()
	s.held.Release()
}
