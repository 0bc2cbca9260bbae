package rexec

import (
	"errors"
	"io"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// inbox queues input for the process and writes it from one goroutine,
// so that whoever receives input (the stream reader) never blocks on a
// process that does not read. It can be paused: the write in progress is
// cut short by a deadline and what is left stays queued.
type inbox struct {
	w       io.WriteCloser
	dl      interface{ SetWriteDeadline(time.Time) error } // w's, if it has deadlines
	mu      sync.Mutex
	cond    *sync.Cond
	q       [][]byte
	eof     bool // close w once q is written
	closed  bool // w is closed
	paused  bool
	busy    bool // a write is in progress
	stopped bool // the writer goroutine ended
	snap    int  // entries of q that the last pause handed out
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
		case err != nil:
			in.q = nil // the process closed its stdin: input is dropped
		default:
			in.q = in.q[1:]
		}
		in.cond.Broadcast()
	}
}

// put queues b (copied).
func (in *inbox) put(b []byte) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.eof {
		return
	}
	in.q = append(in.q, append([]byte(nil), b...))
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
	}
	in.paused = false
	in.cond.Broadcast()
}

// stop ends the writer goroutine (after a move: the input went along).
func (in *inbox) stop() {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.stopped = true
	in.q = nil
	in.cond.Broadcast()
}

// WriteStdin queues b for the process's stdin; it never blocks.
func (p *Proc) WriteStdin(b []byte) { p.in.put(b) }

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
	p.in.q = p.in.q[min(p.in.snap, len(p.in.q)):] // pending includes them
	p.in.mu.Unlock()
	p.in.resume(pending)
}

// StopStdin ends the writing of input for good (the process moved).
func (p *Proc) StopStdin() { p.in.stop() }
