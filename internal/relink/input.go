package relink

import (
	"errors"
	"fmt"
	"sync"

	"github.com/ssi-cluster/ssi/internal/rexec"
)

// Input passes a run's input (counted frames) on, keeping each until the
// other side acknowledges it (Outbox): a home agent to the executing
// node, a deputy to its home agent. It holds the input while the process
// moves or its stream is suspected. The input waits once Window bytes (or
// WindowFrames frames) are unacknowledged. Sends are made under sendMu
// only, never under mu: an acknowledgement (read with the process's
// output) never waits behind input that the other side's flow control
// holds back.
type Input struct {
	sendMu  sync.Mutex // one sender at a time, in order
	mu      sync.Mutex
	cond    *sync.Cond
	link    rexec.Conn // nil while suspected
	holding bool       // the process moves: input waits
	out     Outbox
	sent    int64 // the last frame given to link
	closed  bool  // the run is over
	// base: the frames before this session's first, in the count of
	// the input's source (a deputy numbers every counted frame it sends;
	// a move starts a session numbered from 1 again).
	base int64
}

// NewInput passes input to link.
func NewInput(link rexec.Conn) *Input {
	h := &Input{link: link}
	h.cond = sync.NewCond(&h.mu)
	return h
}

var errRunOver = errors.New("the run is over")

// Pass keeps f (copied) and sends it on unless held; it fails only once
// the run is over.
func (h *Input) Pass(f rexec.Frame) error {
	h.mu.Lock()
	for h.out.Full() && !h.closed {
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
func (h *Input) flush() {
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

// Ack notes that the node has received the frames up to n.
func (h *Input) Ack(n int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.out.Ack(min(n, h.sent))
	h.cond.Broadcast()
}

// Hold holds the input from now on and tells the node (Hold): no input
// is in flight behind it.
func (h *Input) Hold() {
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
func (h *Input) switchTo(link rexec.Conn, change func()) {
	h.sendMu.Lock()
	h.mu.Lock()
	h.link, h.holding = link, false
	change()
	h.cond.Broadcast()
	h.mu.Unlock()
	h.sendMu.Unlock()
	h.flush()
}

// Release sends input again on link (a move was abandoned).
func (h *Input) Release(link rexec.Conn) { h.switchTo(link, func() {}) }

// Moved sends what was held to link, the process's new node, whose
// session numbers its input from 1: everything sent before Hold went
// with the process.
func (h *Input) Moved(link rexec.Conn) {
	h.switchTo(link, func() {
		h.base += h.sent
		h.out.Restart(h.sent)
		h.sent = 0
	})
}

// Skip numbers the input on from n, which the node has, a session whose
// first frame is the source's base+1 (ended: the session ended, and the
// input is held for the next, as Resume): a deputy re-attached through
// this agent after the one before went (the deputy sends again what the
// node has not; a deputy that keeps no input had what the agent before
// kept lost with it).
func (h *Input) Skip(n, base int64, ended bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.out.Skip(n)
	h.sent, h.base = n, base
	h.holding = h.holding || ended
}

// Has is what the node has of the input, counted as its source counts:
// the frames, and those before the session's first.
func (h *Input) Has() (frames, base int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.base + h.out.Base(), h.base
}

// Suspend keeps the input from now on: the stream broke.
func (h *Input) Suspend() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.link = nil
}

// Resume sends link, a re-attached stream whose node has the input up to
// received, the rest and what comes after; with ended (the session ended:
// its process exited or moved on), nothing: the input is held for the
// process's next session (Moved), which has the frames up to received.
func (h *Input) Resume(link rexec.Conn, received int64, ended bool) error {
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
		h.holding = ended
	})
	return nil
}

// Hangup tells the node that the deputy is gone (Hangup), and ends the
// input.
func (h *Input) Hangup() {
	h.mu.Lock()
	h.closed = true
	h.cond.Broadcast()
	link := h.link
	h.mu.Unlock()
	if link != nil {
		link.Send(rexec.Frame{Type: rexec.THangup})
	}
}

// Close ends the input: the run is over.
func (h *Input) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	h.cond.Broadcast()
}
