package checkpoint

import (
	"errors"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// Process is a process seized by the engine and held stopped. Its methods
// must not be called concurrently; after Resume or Kill it is spent.
// While it is held, the caller must not wait(2) for the process: the
// tracer thread consumes its stops.
type Process struct {
	pid   int
	t     *tracer
	saved Regs          // registers at the freeze
	tids  []int         // the other threads, seized and stopped
	tregs map[int]Regs  // their registers at the freeze
	held  []unix.Signal // signals that arrived while frozen, sent again on Resume
	spent bool
	opt   Options // as given to FreezeWith
	// fill, when set, supplies the contents of a mapping in place of
	// reading it all (pre-copy, see PreCopier).
	fill func(m *Mapping, mem *os.File) error
	// smaps, when set, is /proc/PID/smaps read before the freeze, still
	// true (pre-copy, see PreCopier.Finish).
	smaps string
	// parked are the threads the guard parked (guard.go); guarded is
	// set once all are.
	parked  map[int]bool
	guarded bool
}

// Pid is the process id.
func (p *Process) Pid() int { return p.pid }

// Freeze checks pid (see Check) and, if it can move, seizes and stops it.
// On any error the process is left running as it was.
func Freeze(pid int) (*Process, error) { return FreezeWith(pid, Options{}) }

// FreezeWith is Freeze with options: the descriptors in o.External are
// no refusal reason, and Dump records them as external (see Options).
func FreezeWith(pid int, o Options) (*Process, error) {
	if err := CheckWith(pid, o); err != nil {
		return nil, err
	}
	p := &Process{pid: pid, t: newTracer(), opt: o}
	attached := false
	err := p.t.do(func() error {
		if err := seize(pid, 0); err != nil {
			return fmt.Errorf("checkpoint: seize %d: %w", pid, err)
		}
		attached = true
		if err := unix.PtraceInterrupt(pid); err != nil {
			return fmt.Errorf("checkpoint: interrupt %d: %w", pid, err)
		}
		if err := waitInterrupted(pid); err != nil {
			return err
		}
		var err error
		if p.saved, err = getRegs(pid); err != nil {
			return err
		}
		return p.seizeThreads()
	})
	if err != nil {
		if attached {
			p.Resume()
		} else {
			p.t.close()
		}
		return nil, err
	}
	// Look again now that nothing can change: a thread may have been
	// created between the check and the seize.
	v, err := readProcView(pid)
	if err == nil {
		v.TracerPid = 0 // that is us
		o.apply(&v)
		if rs := refusals(v); len(rs) > 0 {
			err = &RefusalError{Pid: pid, Reasons: rs}
		}
	}
	if err != nil {
		p.Resume()
		return nil, err
	}
	return p, nil
}

// Resume lets the process go on where it was frozen.
func (p *Process) Resume() error {
	if p.spent {
		return errors.New("checkpoint: process already released")
	}
	p.spent = true
	err := p.t.do(func() error {
		var err error
		// A parked thread has its registers (and maybe a signal
		// handler's frame) set already; detaching it with 0 cancels the
		// guard's SIGSTOP.
		for _, tid := range p.tids {
			if r, ok := p.tregs[tid]; ok && !p.parked[tid] {
				setRegs(tid, r)
			}
			ptrace(unix.PTRACE_DETACH, tid, 0, 0)
		}
		if !p.parked[p.pid] {
			err = setRegs(p.pid, p.saved)
		}
		if e := ptrace(unix.PTRACE_DETACH, p.pid, 0, 0); e != nil && err == nil {
			err = e
		}
		for _, s := range p.held {
			unix.Kill(p.pid, s)
		}
		return err
	})
	p.t.close()
	return err
}

// Kill kills the frozen process (after a successful dump, say) and waits
// until it is dead, without reaping it: a parent can still wait for it.
func (p *Process) Kill() error {
	if p.spent {
		return errors.New("checkpoint: process already released")
	}
	p.spent = true
	err := p.t.do(func() error {
		if err := unix.Kill(p.pid, unix.SIGKILL); err != nil {
			return err
		}
		// Our traced threads stay zombies until we reap them, and the
		// leader does not die before its threads are gone.
		for _, tid := range p.tids {
			reapKilled(tid)
		}
		var si unix.Siginfo
		for {
			err := unix.Waitid(unix.P_PID, p.pid, &si, unix.WEXITED|unix.WNOWAIT|unix.WALL, nil)
			if err != unix.EINTR {
				return err
			}
		}
	})
	p.t.close() // the tracer thread exits, which detaches the zombie
	return err
}

// waitInterrupted waits for the PTRACE_EVENT_STOP of a seized and
// interrupted thread, delivering any signal stop that comes first.
func waitInterrupted(tid int) error {
	for {
		ws, err := waitStop(tid)
		if err != nil {
			return err
		}
		if stopEvent(ws) == unix.PTRACE_EVENT_STOP {
			return nil
		}
		// A signal was on its way first: deliver it; the interrupt
		// stays pending and stops the thread right after.
		sig := 0
		if stopEvent(ws) == 0 {
			sig = int(ws.StopSignal())
		}
		if err := unix.PtraceCont(tid, sig); err != nil {
			return err
		}
	}
}

// seizeThreads seizes and stops every other thread of the (stopped)
// leader, listing /proc/PID/task again until no new thread shows up: a
// thread not yet stopped may create another. Runs on the tracer thread.
func (p *Process) seizeThreads() error {
	p.tregs = map[int]Regs{}
	seized := map[int]bool{p.pid: true}
	for {
		ents, err := os.ReadDir("/proc/" + strconv.Itoa(p.pid) + "/task")
		if err != nil {
			return err
		}
		var fresh []int
		for _, e := range ents {
			tid, err := strconv.Atoi(e.Name())
			if err != nil || seized[tid] {
				continue
			}
			seized[tid] = true
			if err := seize(tid, 0); err != nil {
				if err == unix.ESRCH {
					continue // it exited meanwhile
				}
				return fmt.Errorf("checkpoint: seize thread %d: %w", tid, err)
			}
			p.tids = append(p.tids, tid)
			if err := unix.PtraceInterrupt(tid); err != nil {
				return fmt.Errorf("checkpoint: interrupt thread %d: %w", tid, err)
			}
			fresh = append(fresh, tid)
		}
		if len(fresh) == 0 {
			return nil
		}
		for _, tid := range fresh {
			if err := waitInterrupted(tid); err != nil {
				return fmt.Errorf("checkpoint: thread %d: %w", tid, err)
			}
			r, err := getRegs(tid)
			if err != nil {
				return err
			}
			p.tregs[tid] = r
		}
	}
}
