package agent

import (
	"context"
	"errors"
	"fmt"
	"sync"
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

// goneError: the node answered that it has the process no more.
type goneError struct{ msg string }

func (e *goneError) Error() string { return e.msg }

// reattach re-attaches the home to the process spec.CPID on node: it
// opens a stream with spec.Attach, telling the node the session's counted
// frames the home has received (received), and returns the stream and
// the node's Started (Received: what it has of the input; the caller
// sends the rest, heldInput.resume). A *goneError says the node has no
// such process (ended and forgotten, moved on, or hung up); any other
// error may pass. This is the one entry point for a home to re-attach to
// its process, whatever broke the stream (a partition, a false down, an
// agent restarted on either side).
func (a *Agent) reattach(ctx context.Context, spec *rexec.Spec, node int, received int64) (*runLink, rexec.Started, error) {
	at := *spec
	at.Attach, at.Received = spec.CPID, received
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
func (a *Agent) awaitReattach(ctx, lctx context.Context, lk *relink.Link, spec *rexec.Spec, node int, received int64) (*runLink, rexec.Started, error) {
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
			l, st, err := a.reattach(lctx, spec, node, received)
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

// heldInput passes the deputy's input (counted frames) to the executing
// node, keeping each until the node acknowledges it (relink.Outbox), or
// holds it while the process moves or its stream is suspected. The
// deputy's input waits once relink.Window bytes are unacknowledged. Sends
// are made under sendMu only, never under mu: an acknowledgement (from
// the relay, which reads the process's output) never waits behind input
// that the node's flow control holds back.
type heldInput struct {
	sendMu  sync.Mutex // one sender at a time, in order
	mu      sync.Mutex
	cond    *sync.Cond
	link    rexec.Conn // nil while suspected
	holding bool       // the process moves: input waits
	out     relink.Outbox
	sent    int64 // the last frame given to link
	closed  bool  // the run is over
}

func newHeldInput(link rexec.Conn) *heldInput {
	h := &heldInput{link: link}
	h.cond = sync.NewCond(&h.mu)
	return h
}

var errRunOver = errors.New("the run is over")

// pass keeps f (copied) and sends it on unless held; it fails only once
// the run is over.
func (h *heldInput) pass(f rexec.Frame) error {
	h.mu.Lock()
	for h.out.Bytes() >= relink.Window && !h.closed {
		h.cond.Wait()
	}
	if h.closed {
		h.mu.Unlock()
		return errRunOver
	}
	h.out.Put(f)
	h.mu.Unlock()
	h.flush()
	return nil
}

// flush sends link what it has not had. A send that fails leaves the
// rest kept: the relay sees the stream break and re-attaches.
func (h *heldInput) flush() {
	h.sendMu.Lock()
	defer h.sendMu.Unlock()
	h.mu.Lock()
	link := h.link
	if link == nil || h.holding {
		h.mu.Unlock()
		return
	}
	fs, _ := h.out.From(h.sent)
	h.sent = h.out.Last()
	h.mu.Unlock()
	for _, f := range fs {
		if link.Send(f) != nil {
			h.mu.Lock()
			if h.link == link {
				h.link = nil
			}
			h.mu.Unlock()
			return
		}
	}
}

// ack notes that the node has received the frames up to n.
func (h *heldInput) ack(n int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.out.Ack(min(n, h.sent))
	h.cond.Broadcast()
}

// hold holds the input from now on and tells the node (Hold): no input
// is in flight behind it.
func (h *heldInput) hold() {
	h.sendMu.Lock()
	defer h.sendMu.Unlock()
	h.mu.Lock()
	h.holding = true
	link := h.link
	h.mu.Unlock()
	if link != nil {
		link.Send(rexec.Frame{Type: rexec.THold})
	}
}

// switchTo makes link the stream input goes to, with change applied
// (under mu), and sends it what it has not had.
func (h *heldInput) switchTo(link rexec.Conn, change func()) {
	h.sendMu.Lock()
	h.mu.Lock()
	h.link, h.holding = link, false
	change()
	h.cond.Broadcast()
	h.mu.Unlock()
	h.sendMu.Unlock()
	h.flush()
}

// release sends input again on link (a move was abandoned).
func (h *heldInput) release(link rexec.Conn) { h.switchTo(link, func() {}) }

// moved sends what was held to link, the process's new node, whose
// session numbers its input from 1: everything sent before Hold went
// with the process.
func (h *heldInput) moved(link rexec.Conn) {
	h.switchTo(link, func() {
		h.out.Restart(h.sent)
		h.sent = 0
	})
}

// skip numbers the input on from n, which the node has: a deputy
// re-attached through this agent after the one before went (its input
// kept there is lost with it; the node has what it acknowledged).
func (h *heldInput) skip(n int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.out.Skip(n)
	h.sent = n
}

// suspend keeps the input from now on: the stream broke.
func (h *heldInput) suspend() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.link = nil
}

// resume sends link, a re-attached stream whose node has the input up to
// received, the rest and what comes after.
func (h *heldInput) resume(link rexec.Conn, received int64) error {
	h.mu.Lock()
	_, ok := h.out.From(received)
	last, sent := h.out.Last(), h.sent
	h.mu.Unlock()
	if !ok {
		return fmt.Errorf("the node has %d frames of input; %d were sent, up to %d kept", received, last, sent)
	}
	h.switchTo(link, func() {
		h.out.Ack(received)
		h.sent = received
	})
	return nil
}

// hangup tells the node that the deputy is gone (Hangup), and ends the
// input.
func (h *heldInput) hangup() {
	h.mu.Lock()
	h.closed = true
	h.cond.Broadcast()
	link := h.link
	h.mu.Unlock()
	if link != nil {
		link.Send(rexec.Frame{Type: rexec.THangup})
	}
}

// close ends the input: the run is over.
func (h *heldInput) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	h.cond.Broadcast()
}
