package rexec

import (
	"errors"
	"io"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// inboxLimit bounds the input queued for a process: beyond it, put waits,
// and the stream stops being read, so that flow control reaches the
// deputy (a process that does not read its stdin must not make the agent
// hold a whole file).
const inboxLimit = 8 << 20

// inbox queues input for the process and writes it from one goroutine,
// so that whoever receives input (the stream reader) does not block on a
// process that does not read, up to inboxLimit bytes; while a move holds
// input (unbounded) it never blocks, so that the stream's THold is read.
// It can be paused: the write in progress is cut short by a deadline and
// what is left stays queued.
type inbox struct {
	w       io.WriteCloser
	dl      interface{ SetWriteDeadline(time.Time) error } // w's, if it has deadlines
	mu      sync.Mutex
	cond    *sync.Cond
	q       [][]byte
	queued  int  // bytes in q
	eof     bool // close w once q is written
	closed  bool // w is closed
	paused  bool
	busy    bool // a write is in progress
	stopped bool // the writer goroutine ended
	snap    int  // entries of q that the last pause handed out
	// unbounded: a move holds input; put never waits.
	unbounded bool
}

func newInbox(w io.WriteCloser) *inbox {
	in := &inbox{w: w}
	in.cond = sync.NewCond(&in.mu)
	if d, ok := w.(interface{ SetWriteDeadline(time.Time) error }); ok {
		in.dl = d
	}
	go in.loop()
	return in
}

func (in *inbox) loop() {
	in.mu.Lock()
	defer in.mu.Unlock()
	for {
		for !in.stopped && (in.paused || len(in.q) == 0 && (!in.eof || in.closed)) {
			in.cond.Wait()
		}
		if in.stopped {
			return
		}
		if len(in.q) == 0 { // eof, all written
			in.w.Close()
			in.closed = true
			continue
		}
		b := in.q[0]
		in.busy = true
		in.mu.Unlock()
		n, err := in.w.Write(b)
		in.mu.Lock()
		in.busy = false
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
			in.q[0] = b[n:] // paused: the rest stays queued
			in.queued -= n
		case err != nil:
			in.q, in.queued = nil, 0 // the process closed its stdin: input is dropped
		default:
			in.q = in.q[1:]
			in.queued -= len(b)
		}
		in.cond.Broadcast()
	}
}

// put queues b (copied).
func (in *inbox) put(b []byte) {
	in.mu.Lock()
	defer in.mu.Unlock()
	for !in.eof && !in.stopped && !in.unbounded && in.queued >= inboxLimit {
		in.cond.Wait()
	}
	if in.eof || in.stopped {
		return
	}
	in.q = append(in.q, append([]byte(nil), b...))
	in.queued += len(b)
	in.cond.Broadcast()
}

// close closes the process's stdin once the queued input is written.
func (in *inbox) close() {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.eof = true
	in.cond.Broadcast()
}

// pause stops writing and returns what is queued and whether the end
// of input was asked for (and not yet done).
func (in *inbox) pause() (queued []byte, eof bool) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.paused = true
	if in.dl != nil {
		in.dl.SetWriteDeadline(time.Unix(1, 0))
	}
	for in.busy {
		in.cond.Wait()
	}
	if in.dl != nil {
		in.dl.SetWriteDeadline(time.Time{})
	}
	for _, b := range in.q {
		queued = append(queued, b...)
	}
	in.snap = len(in.q)
	return queued, in.eof && !in.closed
}

// resume writes again, first (after the pause) front, then what was queued.
func (in *inbox) resume(front []byte) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if len(front) > 0 {
		in.q = append([][]byte{front}, in.q...)
		in.queued += len(front)
	}
	in.paused, in.unbounded = false, false
	in.cond.Broadcast()
}

// stop ends the writer goroutine (after a move: the input went along).
func (in *inbox) stop() {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.stopped = true
	in.q, in.queued = nil, 0
	in.cond.Broadcast()
}

// WriteStdin queues b for the process's stdin; it waits while more than
// inboxLimit bytes are queued, unless a move holds input (HoldStdin).
func (p *Proc) WriteStdin(b []byte) { p.in.put(b) }

// HoldStdin lets input queue without bound while a move asks the home to
// hold it (only what is already on its way can come); Undrain ends that.
func (p *Proc) HoldStdin() {
	p.in.mu.Lock()
	defer p.in.mu.Unlock()
	p.in.unbounded = true
	p.in.cond.Broadcast()
}

// DrainStdin takes the input the process has not read: what is in its
// stdin pipe (read through the agent's copy of the reading end: the
// process must be frozen) followed by the input still queued, and
// whether the end of input was asked for. Nothing more is written until
// Undrain or StopStdin. With a tty there is no copy: only the queue.
func (p *Proc) DrainStdin() (pending []byte, eof bool, err error) {
	queued, eof := p.in.pause()
	if fd := p.stdinR; fd >= 0 {
		n, err := unix.IoctlGetInt(fd, unix.TIOCINQ) // FIONREAD
		if err != nil {
			p.in.resume(nil)
			return nil, false, err
		}
		pending = make([]byte, n)
		for got := 0; got < n; {
			k, err := unix.Read(fd, pending[got:])
			if k <= 0 || err != nil {
				p.in.resume(pending[:got])
				return nil, false, errors.Join(errors.New("reading the stdin pipe"), err)
			}
			got += k
		}
	}
	return append(pending, queued...), eof, nil
}

// Undrain gives back what DrainStdin took (a move was abandoned): it is
// written again first, and writing goes on.
func (p *Proc) Undrain(pending []byte) {
	p.in.mu.Lock()
	for _, b := range p.in.q[:min(p.in.snap, len(p.in.q))] { // pending includes them
		p.in.queued -= len(b)
	}
	p.in.q = p.in.q[min(p.in.snap, len(p.in.q)):]
	p.in.mu.Unlock()
	p.in.resume(pending)
}

// UnholdStdin ends HoldStdin (a move that was given up): input is
// bounded again. After Undrain it changes nothing.
func (p *Proc) UnholdStdin() { p.in.resume(nil) }

// StopStdin ends the writing of input for good (the process moved).
func (p *Proc) StopStdin() { p.in.stop() }

// isClosed reports whether the end of input was asked for.
func (in *inbox) isClosed() bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.eof || in.closed
}
