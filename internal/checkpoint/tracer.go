package checkpoint

import (
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
)

// tracer is the one goroutine that owns a tracee. It locks itself to its
// OS thread for its whole life and never unlocks, so the thread, which is
// the tracee's ptrace parent, exits with the goroutine: no other goroutine
// ever runs on a thread with ptrace state.
type tracer struct {
	reqs   chan func()
	done   chan struct{}
	locked chan struct{} // closed once loop holds a thread other than the main one
}

func newTracer() *tracer {
	t := &tracer{reqs: make(chan func()), done: make(chan struct{}), locked: make(chan struct{})}
	go t.loop()
	return t
}

func (t *tracer) loop() {
	runtime.LockOSThread() // never unlocked: the thread dies with us
	if unix.Gettid() == unix.Getpid() {
		// The main thread: Go never ends it (it parks it for good), so
		// its tracees would stay attached after close, and a tracer's
		// death could not be had. Hold it until another goroutine holds
		// a thread of its own (not this one, ours until we unlock), then
		// hand it back, untouched by ptrace.
		go t.loop()
		<-t.locked
		runtime.UnlockOSThread()
		return
	}
	close(t.locked)
	defer close(t.done)
	for f := range t.reqs {
		f()
	}
}

// do runs f on the tracer's thread and returns its error; a panic in f
// becomes an error instead of killing the caller's process.
func (t *tracer) do(f func() error) error {
	errc := make(chan error, 1)
	t.reqs <- func() {
		defer func() {
			if r := recover(); r != nil {
				errc <- fmt.Errorf("checkpoint: tracer panic: %v", r)
			}
		}()
		errc <- f()
	}
	return <-errc
}

// close ends the goroutine and its thread.
func (t *tracer) close() {
	close(t.reqs)
	<-t.done
}
