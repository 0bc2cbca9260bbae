package checkpoint

import (
	"encoding/binary"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// Keeping the pid and the thread ids: clone3(2) with set_tid, injected.

const (
	sysClone3     = 435
	cloneArgsSize = 80 // CLONE_ARGS_SIZE_VER1: up to set_tid_size

	// threadFlags make a thread as pthread_create does (no CLONE_SETTLS:
	// fs_base comes with the registers).
	threadFlags = unix.CLONE_VM | unix.CLONE_FS | unix.CLONE_FILES | unix.CLONE_SIGHAND |
		unix.CLONE_THREAD | unix.CLONE_SYSVSEM
)

// cloneArgs encodes a struct clone_args (version 1, exit_signal 0) and,
// when tid > 0, right after it the one-element set_tid array: at is where
// the struct will be in the tracee.
func cloneArgs(at, flags, stack, stackSize uint64, tid int) []byte {
	var setTid, n uint64
	if tid > 0 {
		setTid, n = at+cloneArgsSize, 1
	}
	var b []byte
	for _, v := range []uint64{flags, 0, 0, 0, 0, stack, stackSize, 0, setTid, n} {
		b = binary.LittleEndian.AppendUint64(b, v)
	}
	if tid > 0 {
		b = binary.LittleEndian.AppendUint32(b, uint32(tid))
	}
	return b
}

// clone3 runs clone3(2) in the task of in, asking for id tid when tid > 0,
// and returns the new task's id or the errno the kernel answered with.
func (r *restorer) clone3(in *injector, flags, stack, stackSize uint64, tid int) (int, unix.Errno, error) {
	at := r.scratch + scratchStruct
	if err := r.write(scratchStruct, cloneArgs(at, flags, stack, stackSize, tid)); err != nil {
		return 0, 0, err
	}
	rv, err := in.call(sysClone3, at, cloneArgsSize)
	if err != nil {
		return 0, 0, err
	}
	if rv < 0 {
		return 0, unix.Errno(-rv), nil
	}
	return int(rv), 0, nil
}

// setTidError says why clone3 could not give pid want.
func setTidError(want int, errno unix.Errno) error {
	why := "refused"
	switch errno {
	case unix.EEXIST:
		why = "in use"
	case unix.EPERM:
		why = "refused (set_tid needs CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE in the pid namespace's user namespace)"
	case unix.EINVAL:
		why = "out of range (pid_max) or refused"
	case unix.ENOSYS:
		why = "not asked: no clone3 (kernel before 5.5)"
	}
	return fmt.Errorf("checkpoint: pid %d %s: %w", want, why, errno)
}

// keepPid continues the restore in a copy of the stub that has pid want:
// clone3 injected in the stub, with set_tid {want} and CLONE_PARENT (the
// copy is the caller's child too; it takes the stub's exit signal,
// SIGCHLD, as clone3 wants exit_signal 0 with CLONE_PARENT, so the kernel
// reports a clone, not a fork, and PTRACE_O_TRACECLONE has it traced by
// us from its first instruction). The stub is then killed. It returns
// why the pid could not be had, the restore going on in the stub, or an
// error that ends the restore.
func (r *restorer) keepPid(s *restoreState, want int) (why, err error) {
	if want <= 0 {
		return fmt.Errorf("checkpoint: no pid in the image"), nil
	}
	pid, errno, err := r.clone3(r.in, unix.CLONE_PARENT, 0, 0, want)
	if err != nil {
		return nil, err
	}
	if errno != 0 {
		return setTidError(want, errno), nil
	}
	s.pid = pid
	regs, err := waitNewTask(pid)
	if err != nil {
		return nil, err
	}
	mem, err := os.OpenFile("/proc/"+strconv.Itoa(pid)+"/mem", os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	r.mem.Close()
	r.mem = mem
	r.in = &injector{pid: pid, insn: r.in.insn, base: regs}
	unix.Kill(s.stub, unix.SIGKILL)
	reapKilled(s.stub)
	s.stub = 0
	return nil, nil
}

// newThread creates a thread by clone3 injected in the main thread, with
// id want if want > 0 and it is free; when set_tid is refused for another
// reason than the id being in use, *keep is cleared so that the next
// threads do not ask. Without clone3 it uses clone(2).
func (r *restorer) newThread(want int, keep *bool) (int, error) {
	// The stack is never used: the thread only makes injected calls.
	stack, size := r.scratch, uint64(page-64)
	tid, errno, err := r.clone3(r.in, threadFlags, stack, size, want)
	if errno != 0 && want > 0 {
		if errno != unix.EEXIST {
			*keep = false
		}
		tid, errno, err = r.clone3(r.in, threadFlags, stack, size, 0)
	}
	if errno == unix.ENOSYS {
		v, err := r.in.callOK(unix.SYS_CLONE, threadFlags, stack+size, 0, 0, 0)
		return int(v), err
	}
	if err == nil && errno != 0 {
		err = errno
	}
	return tid, err
}

// waitNewTask waits for the first stop of a task created under
// PTRACE_O_TRACECLONE and returns its registers.
func waitNewTask(tid int) (Regs, error) {
	for {
		ws, err := waitStop(tid)
		if err != nil {
			return Regs{}, fmt.Errorf("checkpoint: new task %d: %w", tid, err)
		}
		if ws.StopSignal() == unix.SIGSTOP || stopEvent(ws) == unix.PTRACE_EVENT_STOP {
			return getRegs(tid)
		}
		if err := unix.PtraceCont(tid, 0); err != nil {
			return Regs{}, err
		}
	}
}

// reapKilled waits until pid, a killed child or tracee of ours, is gone
// and reaps it.
func reapKilled(pid int) {
	for {
		var ws unix.WaitStatus
		_, err := unix.Wait4(pid, &ws, unix.WALL, nil)
		if err == unix.EINTR || err == nil && !ws.Exited() && !ws.Signaled() {
			continue
		}
		return
	}
}
