package checkpoint

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// heldRestore is a restored process left stopped under ptrace
// (RestoreOptions.Hold): its tracer thread lives until Release or Kill.
type heldRestore struct {
	t *tracer
	s *restoreState
}

// detach lets every restored thread run, the leader last. It runs on the
// tracer.
func (s *restoreState) detach() error {
	for _, tid := range s.tids {
		if err := ptrace(unix.PTRACE_DETACH, tid, 0, 0); err != nil {
			return fmt.Errorf("checkpoint: detach thread %d: %w", tid, err)
		}
	}
	return ptrace(unix.PTRACE_DETACH, s.pid, 0, 0)
}

// errNotHeld is returned by Release and Kill without RestoreOptions.Hold
// or after either was called.
var errNotHeld = errors.New("checkpoint: the restored process is not held")

// Release lets a process restored with RestoreOptions.Hold run. If it
// fails the process is killed.
func (r *Restored) Release() error {
	h := r.held
	if h == nil {
		return errNotHeld
	}
	r.held = nil
	err := h.t.do(func() error {
		err := h.s.detach()
		if err != nil {
			h.s.kill()
		}
		return err
	})
	h.t.close()
	return err
}

// Kill kills and reaps a process restored with RestoreOptions.Hold.
func (r *Restored) Kill() error {
	h := r.held
	if h == nil {
		return errNotHeld
	}
	r.held = nil
	h.t.do(func() error { h.s.kill(); return nil })
	h.t.close()
	return nil
}
