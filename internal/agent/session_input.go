package agent

import "github.com/ssi-cluster/ssi/internal/rexec"

// The input side of a runSession: the home's stream is read without ever
// waiting for the process (input is queued, and passed on by its own
// loop), so that acknowledgements of output are always read; input is
// acknowledged once passed on.

// read takes the home's frames from conn (attachment gen) until it ends.
// It never waits for the process: input is queued for the input loop
// (the home sends no more than relink.Window unacknowledged), so that
// acknowledgements of output are always read.
func (s *runSession) read(conn rexec.Conn, gen int, end <-chan struct{}) {
	for {
		f, err := conn.Recv()
		if err != nil {
			select {
			case <-end:
			default:
				s.detach(conn, "its home's stream ended: "+err.Error())
			}
			return
		}
		switch f.Type {
		case rexec.TAck:
			s.mu.Lock()
			n := int64(-1)
			if s.gen == gen {
				n = min(rexec.Ack(f), s.flushed)
				s.out.Ack(n)
				s.cond.Broadcast()
			}
			s.mu.Unlock()
			if s.held != nil && n >= 0 {
				s.held.Ack(n) // the holder keeps them no more
			}
		case rexec.THangup:
			s.hangup(conn, "its deputy is gone")
			return
		case rexec.THold:
			// After the input before it is passed on (input).
			s.mu.Lock()
			s.inQ = append(s.inQ, rexec.Frame{Type: rexec.THold})
			s.cond.Broadcast()
			s.mu.Unlock()
		default:
			if !rexec.Counted(f.Type) {
				continue
			}
			s.mu.Lock()
			stale := s.gen != gen
			if !stale {
				// A newer attachment has the input from where this
				// one stopped: a stale one's is dropped.
				// f keeps its buffer (the transport lent it) until
				// the input loop has passed it on.
				s.inRecv++
				s.inQ = append(s.inQ, f)
				s.cond.Broadcast()
			}
			s.mu.Unlock()
			if stale {
				f.Release()
				return
			}
		}
	}
}

// input passes the home's input to the process, in order, and has it
// acknowledged now and then once passed on (by the writer), until the
// session ends.
func (s *runSession) input() {
	for {
		s.mu.Lock()
		for len(s.inQ) == 0 && !s.ended() {
			s.cond.Wait()
		}
		if s.ended() {
			s.mu.Unlock()
			return
		}
		f := s.inQ[0]
		s.inQ[0] = rexec.Frame{}
		s.inQ = s.inQ[1:]
		s.mu.Unlock()
		switch f.Type {
		case rexec.THold: // the home holds its input: all of it is in
			s.mu.Lock()
			if s.hold != nil {
				close(s.hold)
				s.hold = nil
			}
			s.mu.Unlock()
			continue
		case rexec.TStdin:
			s.p.WriteStdin(f.Data) // copied
		case rexec.TStdinEOF:
			s.p.CloseStdin()
		case rexec.TWinsize:
			s.p.Resize(rexec.Winsize(f))
		}
		f.Release()
		s.mu.Lock()
		n, ack := s.in.Got(len(f.Data), f.Type == rexec.TStdinEOF || len(s.inQ) == 0)
		if ack {
			s.inAck = n // sent by the writer, never waited for here
			s.cond.Broadcast()
		}
		s.mu.Unlock()
		if s.held != nil {
			s.held.Passed(n) // for an agent that re-adopts the process
		}
	}
}

// ended reports whether the session has ended (s.mu held).
func (s *runSession) ended() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// inputBase is the deputy's input frames that this session's process has
// had: those that came with it and those received here (all passed on
// once the home holds its input for a move).
func (s *runSession) inputBase() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inBase + s.inRecv
}
