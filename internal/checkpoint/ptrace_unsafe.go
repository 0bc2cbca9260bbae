package checkpoint

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// Raw ptrace and system-call wrappers that pass pointers to the kernel.
// Precondition for every ptrace call: the calling goroutine is the tracer
// goroutine (see tracer.go), locked to the OS thread that attached.

const (
	ptraceGetSigmask    = 0x420a
	ptraceSetSigmask    = 0x420b
	ptraceGetRseqConfig = 0x420f
	ptracePeekSiginfo   = 0x4209
	peekSiginfoShared   = 1
	cldTrapped          = 4 // si_code of a ptrace stop
	ntX86XState         = 0x202
	xstateMax           = 16 << 10 // larger than any XSAVE area the kernel reports today
)

// Compile-time check that Regs and unix.PtraceRegs have the same size.
var _ [unsafe.Sizeof(unix.PtraceRegs{})]byte = [unsafe.Sizeof(Regs{})]byte{}

func ptrace(req int, pid int, addr, data uintptr) error {
	_, _, e := unix.Syscall6(unix.SYS_PTRACE, uintptr(req), uintptr(pid), addr, data, 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

func seize(pid int, opts int) error { return ptrace(unix.PTRACE_SEIZE, pid, 0, uintptr(opts)) }

func getRegs(pid int) (Regs, error) {
	var r Regs
	err := unix.PtraceGetRegs(pid, (*unix.PtraceRegs)(unsafe.Pointer(&r)))
	return r, err
}

func setRegs(pid int, r Regs) error {
	return unix.PtraceSetRegs(pid, (*unix.PtraceRegs)(unsafe.Pointer(&r)))
}

func getXState(pid int) ([]byte, error) {
	buf := make([]byte, xstateMax)
	iov := unix.Iovec{Base: &buf[0], Len: uint64(len(buf))}
	if err := ptrace(unix.PTRACE_GETREGSET, pid, ntX86XState, uintptr(unsafe.Pointer(&iov))); err != nil {
		return nil, err
	}
	return buf[:iov.Len], nil
}

func setXState(pid int, b []byte) error {
	if len(b) == 0 {
		return nil
	}
	iov := unix.Iovec{Base: &b[0], Len: uint64(len(b))}
	return ptrace(unix.PTRACE_SETREGSET, pid, ntX86XState, uintptr(unsafe.Pointer(&iov)))
}

func getSigMask(pid int) (uint64, error) {
	var m uint64
	err := ptrace(ptraceGetSigmask, pid, 8, uintptr(unsafe.Pointer(&m)))
	return m, err
}

func setSigMask(pid int, m uint64) error {
	return ptrace(ptraceSetSigmask, pid, 8, uintptr(unsafe.Pointer(&m)))
}

func getRseq(pid int) (Rseq, error) {
	var c struct {
		Ptr             uint64
		Size, Sig, Flag uint32
		_               uint32
	}
	if err := ptrace(ptraceGetRseqConfig, pid, unsafe.Sizeof(c), uintptr(unsafe.Pointer(&c))); err != nil {
		return Rseq{}, err
	}
	return Rseq{Ptr: c.Ptr, Size: c.Size, Sig: c.Sig}, nil
}

func getRobustList(pid int) (RobustList, error) {
	var head, n uint64
	_, _, e := unix.Syscall(unix.SYS_GET_ROBUST_LIST, uintptr(pid),
		uintptr(unsafe.Pointer(&head)), uintptr(unsafe.Pointer(&n)))
	if e != 0 {
		return RobustList{}, e
	}
	return RobustList{Head: head, Len: n}, nil
}

// peekSiginfo returns every signal queued for pid, the thread-private
// queue first, then the shared one (PTRACE_PEEKSIGINFO_SHARED).
func peekSiginfo(pid int) ([]PendingSignal, error) {
	var out []PendingSignal
	for _, shared := range []bool{false, true} {
		args := struct {
			Off   uint64
			Flags uint32
			Nr    int32
		}{}
		if shared {
			args.Flags = peekSiginfoShared
		}
		var buf [16][siginfoSize]byte
		for {
			args.Nr = int32(len(buf))
			n, _, e := unix.Syscall6(unix.SYS_PTRACE, ptracePeekSiginfo, uintptr(pid),
				uintptr(unsafe.Pointer(&args)), uintptr(unsafe.Pointer(&buf[0])), 0, 0)
			if e != 0 {
				return nil, e
			}
			if n == 0 {
				break
			}
			for i := range int(n) {
				out = append(out, PendingSignal{Shared: shared, Info: buf[i]})
			}
			args.Off += uint64(n)
		}
	}
	return out, nil
}

// peekStop waits for the next stop (or exit) of tracee pid without
// consuming it (WNOWAIT) and returns its code as the kernel keeps it: a
// signal number for a signal-delivery-stop, sig|event<<8 for an event
// stop. A stop collected by wait(2) has that code zeroed, so that the
// tracer's death would resume the tracee with no signal.
func peekStop(pid int) (int, error) {
	for {
		var si unix.Siginfo
		err := unix.Waitid(unix.P_PID, pid, &si, unix.WSTOPPED|unix.WEXITED|unix.WNOWAIT|unix.WALL, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, err
		}
		if si.Code != cldTrapped {
			return 0, errExited
		}
		// siginfo_t for SIGCHLD: si_pid, si_uid, then si_status at 24.
		return int(*(*int32)(unsafe.Add(unsafe.Pointer(&si), 24))), nil
	}
}

// getSiginfo returns the siginfo of the signal tid is stopped for
// (PTRACE_GETSIGINFO).
func getSiginfo(tid int) ([siginfoSize]byte, error) {
	var info [siginfoSize]byte
	_, _, e := unix.Syscall6(unix.SYS_PTRACE, unix.PTRACE_GETSIGINFO, uintptr(tid), 0, uintptr(unsafe.Pointer(&info[0])), 0, 0)
	if e != 0 {
		return info, e
	}
	return info, nil
}
