package deputy

import (
	"errors"
	"math"

	"github.com/ssi-cluster/ssi/internal/rexec"
)

// Input kept until the process has it, whatever happens to the home
// agent. The deputy numbers each counted frame it sends (stdin, its end,
// a window size) and keeps it (relink.Input) until the agent says the
// process's node has it (InputHas, with the session the node counts in:
// its node, pid and base, the deputy's frames before the session's
// first; a move starts a new one). A deputy whose agent went holds its
// input; the next agent re-attaches, maps what the node has to the
// deputy's count with the last InputHas, and asks for the rest
// (InputFrom), which the deputy sends before anything new.

// errNoInput: the run is over, or its input cannot go on.
var errNoInput = errors.New("the input is closed")

// send passes a counted frame of input on (kept until the node has it);
// it fails once the input is closed.
func (s *session) send(f rexec.Frame) error {
	s.mu.Lock()
	in, legacy := s.input, s.legacy
	s.mu.Unlock()
	if in == nil {
		return errNoInput // before the start: nothing to send it to
	}
	err := in.Pass(f)
	if legacy {
		in.Ack(math.MaxInt64) // nothing will say what the node has
	}
	return err
}

// inputHas notes what the node has of the input.
func (s *session) inputHas(h rexec.InputHas) {
	s.input.Ack(h.Frames)
	s.mu.Lock()
	s.has = h
	s.mu.Unlock()
}

// inputFrom sends conn, a next agent's stream, the input after frame n of
// the deputy's count, and what comes after; n < 0: the agent cannot say
// where the process's input stands (it said why), and the input ends.
func (s *session) inputFrom(conn rexec.Conn, n int64) {
	if n < 0 {
		s.input.Close()
		return
	}
	if err := s.input.Resume(conn, n, false); err != nil {
		s.errorf("the process's input cannot be completed (%v); it is closed", err)
		s.input.Close()
		conn.Send(rexec.Frame{Type: rexec.TStdinEOF})
	}
}
