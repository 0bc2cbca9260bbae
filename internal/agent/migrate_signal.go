package agent

import (
	"context"
	"time"

	"github.com/ssi-cluster/ssi/internal/authz"
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
	sig int
	act actor
}

// holdSignals holds the signals to cpid, whose owner is owner and which
// moves to node to, until releaseSignals.
func (m *migrations) holdSignals(cpid int64, owner authz.Owner, to int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.held == nil {
		m.held, m.owners, m.gone = map[int64][]heldSignal{}, map[int64]authz.Owner{}, map[int64]movedTo{}
		m.targets = map[int64]int{}
	}
	m.held[cpid], m.owners[cpid], m.targets[cpid] = []heldSignal{}, owner, to
}

// sentTo is the node this node sent process cpid to: while it moves
// (its signals held) or for movedMemory after; 0 if none.
func (m *migrations) sentTo(cpid int64) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.held[cpid]; ok {
		return m.targets[cpid]
	}
	if g, ok := m.gone[cpid]; ok && time.Now().Before(g.until) {
		return g.node
	}
	return 0
}

// releaseSignals ends the holding and returns what was held; with node
// not 0, the process moved there.
func (m *migrations) releaseSignals(cpid int64, node int) []heldSignal {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := m.held[cpid]
	delete(m.held, cpid)
	delete(m.owners, cpid)
	delete(m.targets, cpid)
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
// A held signal is allowed (decide) as it is held.
func (a *Agent) moveSignal(cpid int64, sig int, act actor) (bool, error) {
	m := a.mig
	m.mu.Lock()
	if held, ok := m.held[cpid]; ok {
		if err := a.decide(authz.SignalAction(sig), act, cpid, m.owners[cpid], false); err != nil {
			m.mu.Unlock()
			return true, err
		}
		m.held[cpid] = append(held, heldSignal{sig, act})
		m.mu.Unlock()
		a.log.Info("signal held while the process moves", "cpid", showCPID(cpid), "signal", sig, "uid", act.uid, "from", act.node)
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
	return true, a.signalOn(context.Background(), g.node, cpid, sig, act)
}

// deliverHeld sends the signals held during a move: to node (where it
// went) or, after an abort, here.
func (a *Agent) deliverHeld(cpid vproc.CPID, pid int, node int, held []heldSignal) {
	for _, h := range held {
		var err error
		switch {
		case node != 0:
			err = a.signalOn(context.Background(), node, int64(cpid), h.sig, h.act)
		case a.mig.session(int64(cpid)) != nil:
			err = a.signalRun(int64(cpid), h.sig, h.act)
		default:
			err = a.signalLocal(pid, false, h.sig, h.act)
		}
		if err != nil {
			a.log.Warn("a signal held during a move could not be delivered", "cpid", showCPID(int64(cpid)), "signal", h.sig, "err", err)
		}
	}
}
