package agent

import (
	"context"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ssi-cluster/ssi/internal/vproc"
)

// Signals to a process that moves: from its freeze on they are held (a
// signal queued in the frozen copy would die with it) and, once the move
// is decided, sent to where it is; for a while after it left, a signal
// that still comes here is sent on to its new node.

// movedMemory is how long a node sends on the signals of a process that
// left it.
const movedMemory = time.Minute

// heldSignal is a signal held during a move's freeze.
type heldSignal struct {
	sig, uid int
	from     string
}

// holdSignals holds the signals to cpid, whose owner is owner, until
// releaseSignals.
func (m *migrations) holdSignals(cpid int64, owner int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.held == nil {
		m.held, m.owners, m.gone = map[int64][]heldSignal{}, map[int64]int{}, map[int64]movedTo{}
	}
	m.held[cpid], m.owners[cpid] = []heldSignal{}, owner
}

// releaseSignals ends the holding and returns what was held; with node
// not 0, the process moved there.
func (m *migrations) releaseSignals(cpid int64, node int) []heldSignal {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := m.held[cpid]
	delete(m.held, cpid)
	delete(m.owners, cpid)
	if node != 0 {
		m.gone[cpid] = movedTo{node: node, until: time.Now().Add(movedMemory)}
	}
	return out
}

// movedTo is where a process that left this node went.
type movedTo struct {
	node  int
	until time.Time
}

// moveSignal takes a signal to cpid if the process is moving (held) or
// has just left (sent on); false: deliver it as usual.
func (a *Agent) moveSignal(cpid int64, sig, uid int, from string) (bool, error) {
	m := a.mig
	m.mu.Lock()
	if held, ok := m.held[cpid]; ok {
		owner := m.owners[cpid]
		if uid != 0 && uid != owner {
			m.mu.Unlock()
			return true, status.Errorf(codes.PermissionDenied, "process %d belongs to uid %d, not to you (uid %d)", cpid, owner, uid)
		}
		m.held[cpid] = append(held, heldSignal{sig, uid, from})
		m.mu.Unlock()
		a.log.Info("signal held while the process moves", "cpid", showCPID(cpid), "signal", sig, "uid", uid, "from", from)
		return true, nil
	}
	g, ok := m.gone[cpid]
	if ok && time.Now().After(g.until) {
		delete(m.gone, cpid)
		ok = false
	}
	m.mu.Unlock()
	if !ok {
		return false, nil
	}
	return true, a.signalOn(context.Background(), g.node, cpid, sig, uid, "a move")
}

// deliverHeld sends the signals held during a move: to node (where it
// went) or, after an abort, here.
func (a *Agent) deliverHeld(cpid vproc.CPID, pid int, node int, held []heldSignal) {
	for _, h := range held {
		var err error
		switch {
		case node != 0:
			err = a.signalOn(context.Background(), node, int64(cpid), h.sig, h.uid, "a move")
		case a.mig.session(int64(cpid)) != nil:
			err = a.signalRun(int64(cpid), h.sig, h.uid, h.from)
		default:
			err = a.signalLocal(pid, false, h.sig, h.uid, h.from)
		}
		if err != nil {
			a.log.Warn("a signal held during a move could not be delivered", "cpid", showCPID(int64(cpid)), "signal", h.sig, "err", err)
		}
	}
}
