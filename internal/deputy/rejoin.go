package deputy

import (
	"context"
	"errors"
	"net"
	"time"

	"github.com/ssi-cluster/ssi/internal/rexec"
)

// rejoinWait bounds how long a deputy whose home agent went waits for
// the next one (an agent restarted by systemd is back within seconds;
// the process's node keeps it for run_grace, 30 s by default).
const rejoinWait = 25 * time.Second

// rejoin re-attaches the deputy to its process through the next home
// agent, after the one it had went (stopped, killed, restarted): a Start
// with Attach (its cluster pid) and Received (the counted frames of its
// stream that the agent before handled, TDelivered, and the session they
// count in: Node, ReceivedPid) and the last InputHas, with the same
// stdio (new output pipes: sink.go). The agent re-attaches to the
// process's node, which sends what follows, and says from where to send
// the input again (input.go). It fails if the process
// had not started, or no agent took the deputy back within rejoinWait.
func (s *session) rejoin(ctx context.Context) (*rexec.StreamConn, net.Conn, error) {
	s.mu.Lock()
	st, got, has, legacy := s.started, s.got, s.has, s.legacy
	gotNode, gotPid := s.gotNode, s.gotPid
	s.conn = nil
	s.mu.Unlock()
	if st == nil {
		return nil, nil, errors.New("not started")
	}
	spec := s.spec()
	spec.Attach, spec.Received, spec.Node = st.CPID, got, st.Node
	if gotNode > 0 {
		// The session got counts in: the node the process left, if it
		// moved before the agent told the deputy of its next session
		// (that node keeps the end of the session for it).
		spec.Node, spec.ReceivedPid = gotNode, gotPid
	}
	spec.InputBase, spec.InputNode, spec.InputPid = has.Base, has.Node, has.Pid
	deadline := time.Now().Add(rejoinWait)
	for time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
		// What the agent before wrote into the output pipes is all
		// written out first: the next one resends from its last
		// Delivered, and the sinks skip what they have (sink.go).
		if !s.drained(deadline) {
			break
		}
		for _, k := range s.sinks {
			if legacy {
				k.ackWritten() // an agent before Delivered: nothing skipped, as then
			}
			k.rejoin()
		}
		conn, raw, err := s.cl.Run(ctx)
		if err != nil {
			continue
		}
		files, sent, err := s.connFiles()
		if err == nil {
			err = conn.SendFiles(rexec.JSON(rexec.TStart, spec), files...)
			closeFiles(sent)
		}
		if err != nil {
			raw.Close()
			continue
		}
		s.mu.Lock()
		s.conn = conn
		s.mu.Unlock()
		return conn, raw, nil
	}
	return nil, nil, errors.New("no agent took the deputy back")
}
