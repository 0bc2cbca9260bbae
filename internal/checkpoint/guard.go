package checkpoint

import (
	"errors"
	"fmt"
	"slices"

	"golang.org/x/sys/unix"
)

// The guard. A process held under ptrace (frozen, or restored and held)
// runs again if its tracer thread dies without detaching (the agent is
// killed): the kernel detaches it on the tracer's exit. Guarded, every
// thread is parked in a signal-delivery-stop for a SIGSTOP sent to it
// (tgkill): the tracer's death, which leaves a stop's signal as it was,
// delivers that SIGSTOP (if the tracer did not wait(2) for the stop, see
// park) and the whole process enters group-stop (state T)
// instead of running, for a restarted agent to resolve with SIGCONT or
// SIGKILL. Detaching with signal 0, as Resume and Release do, cancels the
// SIGSTOP: a guarded process goes on as if it had never been stopped.

// errGuarded is returned by what cannot be done on a guarded process.
var errGuarded = errors.New("checkpoint: the process is guarded")

// park moves thread tid of process pid, ptrace-stopped, into a
// signal-delivery-stop for a SIGSTOP sent to it, and leaves that stop
// unwaited for: wait(2) would zero the stop's signal, which the tracer's
// death would then deliver as no signal at all. Signals pending before
// that SIGSTOP in the thread's own queue are delivered on the way (a
// handler's frame is set up, no user code runs); the process's queue
// comes after it and stays pending. Runs on the tracer thread.
func park(pid, tid int) error {
	if err := unix.Tgkill(pid, tid, unix.SIGSTOP); err != nil {
		return err
	}
	sig := 0
	for {
		if err := unix.PtraceCont(tid, sig); err != nil {
			return err
		}
		code, err := peekStop(tid)
		if err != nil {
			return err
		}
		if code == int(unix.SIGSTOP) {
			return nil
		}
		ws, err := waitStop(tid) // collect it: the same stop
		if err != nil {
			return err
		}
		sig = 0
		if stopEvent(ws) == 0 {
			sig = int(ws.StopSignal())
		} // else a group-stop of a seized thread, say: on
	}
}

// exited reports an error that only says the thread is gone.
func exited(err error) bool { return errors.Is(err, unix.ESRCH) || errors.Is(err, errExited) }

// Guard parks every thread of the frozen process (see above) so that
// the tracer's death leaves it stopped, not running. Call it after a
// successful Dump; Resume and Kill work as before, Dump no longer does.
// It is idempotent. Signals held back during the dump are queued again in
// the kernel (where a restarted agent finds them), SIGCONT excepted: a
// SIGSTOP discards a pending SIGCONT, which Resume sends again. A thread
// that exits meanwhile is no error. On error the threads already parked
// stay so, which Resume and Kill handle.
func (p *Process) Guard() error {
	if p.spent {
		return errors.New("checkpoint: process already released")
	}
	if p.guarded {
		return nil
	}
	if p.parked == nil {
		p.parked = map[int]bool{}
	}
	err := p.t.do(func() error {
		if err := p.keepSIGCONT(); err != nil {
			return err
		}
		var keep []unix.Signal
		for i, s := range p.held {
			if s == unix.SIGCONT {
				keep = append(keep, s)
			} else if err := unix.Kill(p.pid, s); err != nil {
				p.held = append(keep, p.held[i:]...)
				return err
			}
		}
		p.held = keep
		for _, tid := range append([]int{p.pid}, p.tids...) {
			if p.parked[tid] {
				continue // by a Guard that failed after it
			}
			r, ok := p.saved, tid == p.pid
			if !ok {
				r, ok = p.tregs[tid]
			}
			if ok { // as frozen: the dump's injected calls are undone
				if err := setRegs(tid, r); err != nil && !exited(err) {
					return fmt.Errorf("checkpoint: guard thread %d: %w", tid, err)
				}
			}
			if err := park(p.pid, tid); err != nil && !exited(err) {
				return fmt.Errorf("checkpoint: guard thread %d: %w", tid, err)
			}
			p.parked[tid] = true
		}
		return nil
	})
	if err != nil {
		return err
	}
	p.guarded = true
	return nil
}

// keepSIGCONT adds SIGCONT to the held signals if one is pending: the
// guard's SIGSTOP would discard it. Runs on the tracer thread.
func (p *Process) keepSIGCONT() error {
	if slices.Contains(p.held, unix.SIGCONT) {
		return nil
	}
	for _, tid := range append([]int{p.pid}, p.tids...) {
		pend, err := peekSiginfo(tid)
		if exited(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("checkpoint: guard: pending signals of %d: %w", tid, err)
		}
		for _, ps := range pend {
			if ps.Signo() == int(unix.SIGCONT) {
				p.held = append(p.held, unix.SIGCONT)
				return nil
			}
		}
	}
	return nil
}

// guard parks the threads of a restored process held stopped, the leader
// first, and turns PTRACE_O_EXITKILL off: the tracer's death must leave
// the process stopped, not killed. It runs on the tracer.
func (s *restoreState) guard() error {
	if s.guarded {
		return nil
	}
	all := append([]int{s.pid}, s.tids...)
	for _, tid := range all {
		if err := park(s.pid, tid); err != nil && !exited(err) {
			return fmt.Errorf("checkpoint: guard thread %d: %w", tid, err)
		}
	}
	for _, tid := range all {
		if err := unix.PtraceSetOptions(tid, 0); err != nil && !exited(err) {
			return fmt.Errorf("checkpoint: guard thread %d: options: %w", tid, err)
		}
	}
	s.guarded = true
	return nil
}

// Guard makes sure a process restored with RestoreOptions.Hold is
// guarded: its tracer's death leaves it stopped (group-stop), neither
// running nor killed. RestoreWith guards every held process before it
// returns, so this only checks; it is there to say so where a caller
// relies on it.
func (r *Restored) Guard() error {
	h := r.held
	if h == nil {
		return errNotHeld
	}
	return h.t.do(h.s.guard)
}
