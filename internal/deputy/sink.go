package deputy

import (
	"errors"
	"io"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Output written exactly once, whatever happens to the home agent.
//
// The home agent writes a process's output for the deputy: as frames on
// the deputy's stream, or, when the deputy's stdout (stderr) is a pipe or
// a file, straight into a pipe the deputy made and passed it (the agent
// then never waits on the deputy's socket for bulk output). The deputy
// copies that pipe to its own stdout; the kernel keeps in the pipe what
// the agent wrote, so a killed agent takes none of it along. After each
// frame the agent says what it has handled (rexec.Delivered): frames, and
// bytes of each stream. A deputy whose agent went has written every byte
// the agent wrote (the pipe read to its end, the stream read to its end);
// the next agent resends from the last frame the deputy was told of, and
// the deputy skips what of that it has already written (position). No
// byte is written twice and none is lost, at any moment of a SIGKILL.

// position is one output stream's place, in bytes since the process
// started: pure arithmetic, no I/O.
type position struct {
	written int64 // bytes the deputy has written (or dropped, its reader gone)
	base    int64 // where the current agent's count starts
	got     int64 // bytes the current agent has given
	acked   int64 // the byte up to which the current agent said it handled
}

// take returns the part of b, the next bytes the current agent gives, that
// the deputy has not written yet.
func (p *position) take(b []byte) []byte {
	start := p.base + p.got
	p.got += int64(len(b))
	if skip := p.written - start; skip > 0 {
		b = b[min(skip, int64(len(b))):]
	}
	p.written = max(p.written, p.base+p.got)
	return b
}

// ack notes that the current agent has handled n bytes of the stream.
func (p *position) ack(n int64) { p.acked = max(p.acked, p.base+n) }

// rejoin starts the count of a next agent, which resends from the byte
// the one before last said it handled.
func (p *position) rejoin() { p.base, p.got = p.acked, 0 }

// sink is where one output stream of the process goes (stdout or
// stderr, or both when the deputy's were one file).
type sink struct {
	w     io.Writer
	outMu *sync.Mutex // writes to the deputy's stdout and stderr, one at a time
	// broke is called once, when w's reader is gone (the process gets
	// SIGPIPE, as a local one writing there would).
	broke func()

	mu     sync.Mutex
	pos    position
	broken bool
	// The pipe the current agent writes into, read by pump until its
	// end (done closes then); nil when output comes as frames.
	done chan struct{}
}

// give writes what of b (the next bytes the agent gives) is new.
func (k *sink) give(b []byte) {
	k.mu.Lock()
	b = k.pos.take(b)
	broken := k.broken
	k.mu.Unlock()
	if len(b) == 0 || broken {
		return
	}
	k.outMu.Lock()
	_, err := k.w.Write(b)
	k.outMu.Unlock()
	if errors.Is(err, syscall.EPIPE) {
		k.brokeNow()
	}
}

// brokeNow notes that the output's reader is gone (once: broke).
func (k *sink) brokeNow() {
	k.mu.Lock()
	first := !k.broken
	k.broken = true
	k.mu.Unlock()
	if first && k.broke != nil {
		k.broke()
	}
}

func (k *sink) ack(n int64) {
	k.mu.Lock()
	k.pos.ack(n)
	k.mu.Unlock()
}

// pipe makes the pipe the next agent writes this stream into and starts
// copying it; the caller passes (and then closes) the writing end. Both
// ends block: the pump waits in the kernel.
func (k *sink) pipe() (*os.File, error) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return nil, err
	}
	unix.FcntlInt(uintptr(p[1]), unix.F_SETPIPE_SZ, 1<<20) // as growPipe: fewer, larger writes
	done := make(chan struct{})
	k.mu.Lock()
	k.done = done
	k.mu.Unlock()
	go k.pump(p[0], done)
	return os.NewFile(uintptr(p[1]), "output pipe"), nil
}

// pump copies what an agent writes into the pipe r to the deputy's
// output until the pipe's end (the agent closed it, the run being over,
// or went). Not by splice: on Linux 6.18 a splice from the pipe left the
// agent's writer (non-blocking, waiting in epoll) and the splice both
// waiting on an empty pipe, twice in a few runs. Reads of up to the
// pipe's size: 1 GiB out costs the deputy 1.1-1.4 s of CPU, and the run
// takes as long as before the pipes (docs/benchmarks.md).
func (k *sink) pump(r int, done chan struct{}) {
	defer close(done)
	defer unix.Close(r)
	buf := make([]byte, 1<<20) // the pipe's size: what is there, in one read
	for {
		n, err := unix.Read(r, buf)
		if n > 0 {
			k.give(buf[:n])
		}
		if n == 0 || err != nil && err != unix.EINTR {
			return
		}
	}
}

// drained waits until the pipe of the agent before has been read to its
// end (at most until deadline); false if it was not.
func (k *sink) drained(deadline time.Time) bool {
	k.mu.Lock()
	done := k.done
	k.mu.Unlock()
	if done == nil {
		return true
	}
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}

// ackWritten takes everything written as handled (an agent that says
// nothing of bytes).
func (k *sink) ackWritten() {
	k.mu.Lock()
	k.pos.acked = k.pos.written
	k.mu.Unlock()
}

// rejoin counts on for a next agent, once what the one before wrote is
// all written.
func (k *sink) rejoin() {
	k.mu.Lock()
	k.pos.rejoin()
	k.done = nil
	k.mu.Unlock()
}
