package checkpoint

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// errExited reports a tracee that died under us.
var errExited = errors.New("checkpoint: tracee exited")

// waitStop waits for the next ptrace stop of pid.
func waitStop(pid int) (unix.WaitStatus, error) {
	for {
		var ws unix.WaitStatus
		_, err := unix.Wait4(pid, &ws, unix.WALL, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, err
		}
		if ws.Exited() || ws.Signaled() {
			return ws, fmt.Errorf("%w (status %#x)", errExited, uint32(ws))
		}
		if ws.Stopped() {
			return ws, nil
		}
	}
}

// stopEvent returns the PTRACE_EVENT_* of a stop, 0 for a signal stop.
func stopEvent(ws unix.WaitStatus) int { return int(uint32(ws)>>16) & 0xff }

// syscallInsn is the x86_64 "syscall" instruction.
var syscallInsn = []byte{0x0f, 0x05}

// findSyscall returns the address of a syscall instruction inside code
// mapped at base. Jumping into the middle of another instruction is fine:
// the CPU decodes from rip, and the single-step trap fires right after.
func findSyscall(code []byte, base uint64) (uint64, bool) {
	i := bytes.Index(code, syscallInsn)
	if i < 0 {
		return 0, false
	}
	return base + uint64(i), true
}

// injector runs system calls inside a stopped tracee. Each call sets the
// registers, points rip at a syscall instruction and single-steps over
// it; the kernel reports the step at syscall exit, before any further user
// instruction runs. Precondition: runs on the tracer goroutine.
type injector struct {
	pid  int
	insn uint64 // address of a syscall instruction in the tracee
	base Regs   // registers the calls start from (orig_rax forced to -1)
	held []unix.Signal
	// heldInfo is what the held signals carried (PTRACE_GETSIGINFO), in
	// the same order, with the thread that stopped for each.
	heldInfo []heldSignal
	calls    int
}

// heldSignal is a signal held back during an injected call.
type heldSignal struct {
	Tid  int
	Info [siginfoSize]byte
}

// call runs system call nr with args and returns the raw rax (negative
// errno on failure, as int64).
func (in *injector) call(nr uintptr, args ...uint64) (int64, error) {
	r := in.base
	r.OrigRax = ^uint64(0)
	r.Rax = uint64(nr)
	r.Rip = in.insn
	r.Eflags &^= 0x100 // TF
	dst := []*uint64{&r.Rdi, &r.Rsi, &r.Rdx, &r.R10, &r.R8, &r.R9}
	for i, a := range args {
		*dst[i] = a
	}
	if err := setRegs(in.pid, r); err != nil {
		return 0, fmt.Errorf("inject %d: setregs: %w", nr, err)
	}
	in.calls++
	for {
		if err := unix.PtraceSingleStep(in.pid); err != nil {
			return 0, fmt.Errorf("inject %d: singlestep: %w", nr, err)
		}
		ws, err := waitStop(in.pid)
		if err != nil {
			return 0, fmt.Errorf("inject %d: %w", nr, err)
		}
		sig, ev := ws.StopSignal(), stopEvent(ws)
		if sig == unix.SIGTRAP && ev == 0 {
			break
		}
		// Another signal (held back, to be sent again when the tracee is
		// let go) or a group stop: step again.
		if ev == 0 {
			in.held = append(in.held, sig)
			h := heldSignal{Tid: in.pid}
			if info, err := getSiginfo(in.pid); err == nil {
				h.Info = info
			} else {
				binary.LittleEndian.PutUint32(h.Info[:], uint32(sig)) // as from kill(2)
			}
			in.heldInfo = append(in.heldInfo, h)
		}
	}
	out, err := getRegs(in.pid)
	if err != nil {
		return 0, fmt.Errorf("inject %d: getregs: %w", nr, err)
	}
	if out.Rip != in.insn+2 {
		return 0, fmt.Errorf("inject %d: stopped at %#x, not after the syscall at %#x", nr, out.Rip, in.insn)
	}
	return int64(out.Rax), nil
}

// callOK is call with a negative result turned into an error.
func (in *injector) callOK(nr uintptr, args ...uint64) (uint64, error) {
	rv, err := in.call(nr, args...)
	if err != nil {
		return 0, err
	}
	if rv < 0 && rv > -4096 {
		return 0, fmt.Errorf("injected syscall %d%v: %w", nr, args, unix.Errno(-rv))
	}
	return uint64(rv), nil
}
