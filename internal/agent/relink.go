package agent

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/ssi-cluster/ssi/internal/relink"
	"github.com/ssi-cluster/ssi/internal/rexec"
)

// The home side of a run's re-attachment (package relink; rexec's doc,
// Re-attaching): a stream to the process's node that breaks, or whose
// node is committed down, is suspected, not dead. The relay holds the
// deputy's input, waits up to run_grace for the node to answer again,
// and re-attaches (reattach) with what it has received; the node sends
// the rest of the output and says what it has of the input, and the
// relay sends the rest of that. The process is lost only when its node
// says it has it no more, or the grace runs out.

// runGrace is how long a suspected run waits for its node (run_grace).
func (a *Agent) runGrace() time.Duration { return time.Duration(a.cfg.RunGrace) }

// reattachEvery is how often a suspected run tries its node while it is
// up in the registry (the registry changing wakes it too).
const reattachEvery = 500 * time.Millisecond

// hangupWait is how long a stream outlives its deputy, for the Hangup
// sent on it to reach the node (which then ends the stream itself).
const hangupWait = 5 * time.Second

// reattachAnswer bounds the wait for a node's answer to a re-attachment.
const reattachAnswer = 10 * time.Second

// runLink is one stream to the node running a run's process, cancelled
// when that node is committed down (down then says why).
type runLink struct {
	rexec.Conn
	node int
	stop context.CancelFunc
	down atomic.Pointer[string]
	// The last acknowledgement to send, sent by its own goroutine: the
	// relay, which reads the output, never waits to acknowledge it.
	ackN    atomic.Int64
	ackWake chan struct{}
}

// dialRun opens a stream to node for spec (a start, or a re-attachment
// with spec.Attach), which ends when ctx does or node is committed down.
func (a *Agent) dialRun(ctx context.Context, node int, spec *rexec.Spec) (*runLink, error) {
	lctx, cancel := context.WithCancel(ctx)
	c, err := a.openExec(lctx, node, spec)
	if err != nil {
		cancel()
		return nil, err
	}
	l := &runLink{Conn: c, node: node, stop: cancel, ackWake: make(chan struct{}, 1)}
	go func() {
		if why := a.waitNodeGone(lctx, node, nil); why != "" {
			l.down.Store(&why)
			cancel()
		}
	}()
	go l.acks(lctx)
	return l, nil
}

// ack acknowledges the session's counted frames up to n (soon).
func (l *runLink) ack(n int64) {
	l.ackN.Store(n)
	select {
	case l.ackWake <- struct{}{}:
	default:
	}
}

// acks sends the last acknowledgement asked for until ctx ends.
func (l *runLink) acks(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-l.ackWake:
			if l.Send(rexec.AckFrame(l.ackN.Load())) != nil {
				return
			}
		}
	}
}

// why says why l broke with err.
func (l *runLink) why(err error) string {
	if d := l.down.Load(); d != nil {
		return fmt.Sprintf("node %d went down (%s)", l.node, *d)
	}
	return fmt.Sprintf("lost the connection to node %d (%v)", l.node, err)
}

// sessionAt is where a home stands in a session: the counted frames it
// has received of the session of pid (0: the one its node runs).
type sessionAt struct {
	received int64
	pid      int
}

// goneError: the node answered that it has the process no more.
type goneError struct{ msg string }

func (e *goneError) Error() string { return e.msg }

// reattach re-attaches the home to the process spec.CPID on node: it
// opens a stream with spec.Attach, telling the node the session's counted
// frames the home has received (at), and returns the stream and
// the node's Started (Received: what it has of the input; the caller
// sends the rest, heldInput.resume). A *goneError says the node has no
// such process (ended and forgotten, moved on, or hung up); any other
// error may pass. This is the one entry point for a home to re-attach to
// its process, whatever broke the stream (a partition, a false down, an
// agent restarted on either side).
func (a *Agent) reattach(ctx context.Context, spec *rexec.Spec, node int, at0 sessionAt) (*runLink, rexec.Started, error) {
	at := *spec
	at.Attach, at.Received, at.ReceivedPid = spec.CPID, at0.received, at0.pid
	l, err := a.dialRun(ctx, node, &at)
	if err != nil {
		return nil, rexec.Started{}, err
	}
	t := time.AfterFunc(reattachAnswer, l.stop)
	defer t.Stop()
	f, err := l.Recv()
	switch {
	case err != nil:
		l.stop()
		return nil, rexec.Started{}, err
	case f.Type == rexec.TStarted:
		st, err := rexec.ParseStarted(f.Data)
		if err != nil {
			l.stop()
			return nil, st, err
		}
		return l, st, nil
	case f.Type == rexec.TError:
		l.stop()
		return nil, rexec.Started{}, &goneError{fmt.Sprintf("node %d says: %s", node, f.Data)}
	}
	l.stop()
	return nil, rexec.Started{}, fmt.Errorf("node %d answered a re-attachment with %s", node, f.Type)
}

// awaitReattach tries to re-attach (reattach) to the process on node
// until it does, the node says it has it no more, or lk's grace runs
// out (then lk says why the process is lost), or ctx ends; the new link
// lives in lctx.
func (a *Agent) awaitReattach(ctx, lctx context.Context, lk *relink.Link, spec *rexec.Spec, node int, at sessionAt) (*runLink, rexec.Started, error) {
	for {
		if lk.Expire(time.Now()) {
			return nil, rexec.Started{}, errors.New(lk.Why())
		}
		changed := a.store.FSM.Changed()
		wait := lk.Left(time.Now())
		n, err := a.upNode(node)
		if n != nil && err != nil {
			lk.Recause(fmt.Sprintf("node %d went down (it is %s)", node, n.State))
		}
		if err == nil {
			l, st, err := a.reattach(lctx, spec, node, at)
			var gone *goneError
			switch {
			case err == nil && lk.Reattached():
				return l, st, nil
			case err == nil:
				l.stop() // too late: the process was declared lost
				return nil, rexec.Started{}, errors.New(lk.Why())
			case errors.As(err, &gone):
				lk.Gone(fmt.Sprintf("%s; %s", lk.Why(), gone.msg))
				return nil, rexec.Started{}, errors.New(lk.Why())
			}
			wait, changed = min(wait, reattachEvery), nil
		}
		select {
		case <-ctx.Done():
			return nil, rexec.Started{}, ctx.Err()
		case <-changed:
		case <-time.After(wait):
		}
	}
}
