package checkpoint

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

const (
	page          = 4096
	archMapVDSO64 = 0x2003
	prSetMM       = 35
	prSetMMMap    = 14
	sysCloseRange = 436
	sysRseq       = 334
	ssOnStack     = 1
	ssDisable     = 2
	atFDCWD       = ^uint64(99) // -100

	// Layout of the scratch page in the new process.
	scratchPath   = 64   // a NUL-terminated path
	scratchStruct = 1024 // prctl_mm_map, sigaction, stack_t
	scratchAuxv   = 2048 // saved auxv for PR_SET_MM_MAP
)

// ErrVDSOMismatch is wrapped by Restore when this kernel's vDSO differs,
// in layout or bytes, from the image's: glibc has pointers into it cached.
var ErrVDSOMismatch = errors.New("checkpoint: the vDSO here differs from the image's")

// resumeRegs turns registers saved at a freeze into those to resume with:
// a system call interrupted with -ERESTARTSYS, -ERESTARTNOINTR or
// -ERESTARTNOHAND is run again (rax = orig_rax, rip back over the syscall
// instruction); one interrupted with -ERESTART_RESTARTBLOCK, whose restart
// block stays in the old kernel task, is run again where running it with
// the same arguments means the same (poll, which would otherwise fail
// where programs such as tail -f treat EINTR as fatal; an absolute
// clock_nanosleep; a FUTEX_WAIT_BITSET, whose timeout is absolute) and
// returns -EINTR otherwise (nanosleep and other relative sleeps). orig_rax
// is always -1 so the kernel applies no rule of its own.
func resumeRegs(r Regs) Regs {
	if int64(r.OrigRax) >= 0 {
		switch int64(r.Rax) {
		case -512, -513, -514: // ERESTARTSYS, ERESTARTNOINTR, ERESTARTNOHAND
			r.Rax = r.OrigRax
			r.Rip -= 2
		case -516: // ERESTART_RESTARTBLOCK
			if sameAgain(r) {
				r.Rax = r.OrigRax
				r.Rip -= 2
			} else {
				r.Rax = uint64(^uint64(unix.EINTR) + 1)
			}
		}
	}
	r.OrigRax = ^uint64(0)
	return r
}

// sameAgain reports whether the system call in r, interrupted with
// -ERESTART_RESTARTBLOCK, means the same when run again from its
// arguments (rdi, rsi, rdx and r10 survive a system call). poll with a
// timeout waits its whole timeout again: later than it would have, which
// poll allows, where EINTR would end many programs.
func sameAgain(r Regs) bool {
	const timerAbstime, futexCmdMask, futexWaitBitset = 1, 0x7f, 9
	switch r.OrigRax {
	case unix.SYS_POLL:
		return true
	case unix.SYS_CLOCK_NANOSLEEP:
		return r.Rsi&timerAbstime != 0
	case unix.SYS_FUTEX:
		return r.Rsi&futexCmdMask == futexWaitBitset
	}
	return false
}

// pickScratch returns a page-aligned address, free in both lists of
// mappings, for the restorer's scratch page.
func pickScratch(a, b []Mapping) (uint64, bool) {
	free := func(addr uint64) bool {
		for _, ms := range [][]Mapping{a, b} {
			for _, m := range ms {
				if addr < m.End && m.Start < addr+page {
					return false
				}
			}
		}
		return true
	}
	for addr := uint64(1 << 32); addr < 1<<46; addr += 1 << 32 {
		if free(addr) {
			return addr, true
		}
	}
	return 0, false
}

// restorer holds the state of one restore; its methods run on the tracer.
type restorer struct {
	in      *injector
	mem     *os.File
	scratch uint64
	vvar    uint64 // where the vDSO area ([vvar] first) is
	here    CPU    // this machine's, from the stub

	stubIgnored uint64 // signals the stub inherited as ignored across exec
}

// restoreInto turns the stub s.stub into img's process: in a copy of it
// with img's pid where that pid is free, else in the stub itself. What it
// creates goes into s as soon as it exists, for the caller to kill on
// error.
func restoreInto(s *restoreState, img *Image, x *stubExternal, o *RestoreOptions, res *Restored) error {
	cpu := imageCPU(img)
	r, err := stageInto(s, img.Mappings, img.Pid, &cpu, x, o, res)
	if err != nil {
		return err
	}
	defer r.mem.Close()
	return r.complete(s, img, x, o, res)
}

// stageInto is the first half of a restore: the stub stopped at its exec,
// the CPU checked against cpu (unless nil), the vDSO against the one of
// maps, the scratch page, the pid (when free), the stub unmapped and
// maps mapped and filled (those with Data). The caller closes r.mem.
func stageInto(s *restoreState, maps []Mapping, imgPid int, cpu *CPU, x *stubExternal, o *RestoreOptions, res *Restored) (*restorer, error) {
	pid := s.stub
	ws, err := waitStop(pid)
	if err != nil {
		return nil, err
	}
	if ws.StopSignal() != unix.SIGTRAP {
		return nil, fmt.Errorf("checkpoint: stub stopped with %v, not at exec", ws.StopSignal())
	}
	if err := unix.PtraceSetOptions(pid, unix.PTRACE_O_EXITKILL|unix.PTRACE_O_TRACECLONE); err != nil {
		return nil, err
	}
	regs, err := getRegs(pid)
	if err != nil {
		return nil, err
	}
	xs, err := getXState(pid)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: xstate of the stub: %w", err)
	}
	here, err := thisCPU(xs)
	if err != nil {
		return nil, err
	}
	if cpu != nil {
		if err := checkCPU(*cpu, here); err != nil {
			return nil, err
		}
	}
	dir := "/proc/" + strconv.Itoa(pid)
	text, err := os.ReadFile(dir + "/maps")
	if err != nil {
		return nil, err
	}
	stubMaps, err := parseMaps(string(text))
	if err != nil {
		return nil, err
	}
	mem, err := os.OpenFile(dir+"/mem", os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	r := &restorer{mem: mem, here: here} // keepPid may change mem
	ok := false
	defer func() {
		if !ok {
			r.mem.Close()
		}
	}()
	vvarStart, err := checkVDSO(maps, stubMaps, mem)
	if err != nil {
		return nil, err
	}
	var insn uint64
	for _, m := range stubMaps {
		if m.Kind == KindVDSO {
			code := make([]byte, m.Size())
			if _, err := mem.ReadAt(code, int64(m.Start)); err != nil {
				return nil, err
			}
			insn, _ = findSyscall(code, m.Start)
		}
	}
	if insn == 0 {
		return nil, errors.New("checkpoint: no syscall instruction in the stub's vDSO")
	}
	scratch, found := pickScratch(maps, stubMaps)
	if !found {
		return nil, errors.New("checkpoint: no free address for the scratch page")
	}
	r.in, r.scratch, r.vvar = &injector{pid: pid, insn: insn, base: regs}, scratch, vvarStart
	if err := r.mapScratch(); err != nil {
		return nil, err
	}
	if !o.AnyPid {
		if res.PidErr, err = r.keepPid(s, imgPid); err != nil {
			return nil, err
		}
	}
	pid = s.pid
	res.Pid, res.PidKept = pid, pid == imgPid
	if res.PidKept {
		res.PidErr = nil // the stub had it already
	}
	dir = "/proc/" + strconv.Itoa(pid)
	if err := r.prepare(stubMaps, vvarStart, x.keep); err != nil {
		return nil, err
	}
	status, err := os.ReadFile(dir + "/status")
	if err != nil {
		return nil, err
	}
	st, err := parseStatus(string(status))
	if err != nil {
		return nil, err
	}
	r.stubIgnored = st.SigIgn
	for i := range maps {
		if err := r.mapEmpty(&maps[i]); err != nil {
			return nil, err
		}
	}
	if err := r.fillAll(maps); err != nil {
		return nil, err
	}
	ok = true
	return r, nil
}

// complete is the second half of a restore, once every mapping of img
// is in place: the process's state, its threads, and it runs (or, with
// o.Hold, is left stopped).
func (r *restorer) complete(s *restoreState, img *Image, x *stubExternal, o *RestoreOptions, res *Restored) error {
	pid := s.pid
	if err := r.process(img); err != nil {
		return err
	}
	if err := r.external(img.External, x.tty, o.NewGroup); err != nil {
		return err
	}
	// Limits from here, while the new process is still root like us
	// (prlimit on another user's process needs CAP_SYS_RESOURCE).
	if err := oomScoreAdj(pid, img.Attrs); err != nil {
		return err
	}
	for _, rl := range img.Rlimits {
		lim := unix.Rlimit{Cur: rl.Cur, Max: rl.Max}
		if err := unix.Prlimit(pid, rl.Resource, &lim, nil); err != nil {
			return fmt.Errorf("checkpoint: rlimit %d: %w", rl.Resource, err)
		}
	}
	// Everything blocked until the registers are back: re-queued signals
	// and timer expiries wait instead of stopping an injected call. All
	// but SIGTRAP: each single step forces one, and a forced signal that
	// is blocked resets its handler. (Check refuses a process with a
	// SIGTRAP pending and handled; one sent during the dump's injected
	// calls keeps SIGTRAP blocked here, as it would stop an injected call.)
	if err := setSigMask(pid, restoreMask(img)); err != nil {
		return fmt.Errorf("checkpoint: sigmask: %w", err)
	}
	if err := r.threads(img, s, !o.AnyPid, res); err != nil {
		return err
	}
	if a := img.Attrs; a != nil {
		tids := map[int32]int32{int32(img.Pid): int32(pid)}
		for i, tid := range s.tids {
			tids[int32(img.Threads[i].Tid)] = int32(tid)
		}
		if err := r.timers(a.Timers, tids); err != nil {
			return err
		}
	}
	if err := r.last(img); err != nil {
		return err
	}
	// The last call unmaps the page that holds the syscall instruction:
	// the single-step stop comes at syscall exit, before rip is used.
	if _, err := r.in.callOK(unix.SYS_MUNMAP, r.scratch, page); err != nil {
		return err
	}
	if err := setSigMask(pid, img.SigMask); err != nil {
		return fmt.Errorf("checkpoint: sigmask: %w", err)
	}
	if err := setXState(pid, img.XState); err != nil {
		return fmt.Errorf("checkpoint: xstate: %w", err)
	}
	if err := setRegs(pid, resumeRegs(img.Regs)); err != nil {
		return fmt.Errorf("checkpoint: regs: %w", err)
	}
	for i, tid := range s.tids {
		th := &img.Threads[i]
		if err := setSigMask(tid, th.SigMask); err != nil {
			return fmt.Errorf("checkpoint: thread %d sigmask: %w", tid, err)
		}
		if err := setXState(tid, th.XState); err != nil {
			return fmt.Errorf("checkpoint: thread %d xstate: %w", tid, err)
		}
		if err := setRegs(tid, resumeRegs(th.Regs)); err != nil {
			return fmt.Errorf("checkpoint: thread %d regs: %w", tid, err)
		}
	}
	if o.Hold {
		// Guarded before RestoreWith returns: no caller can forget it,
		// and until then the agent's death kills the process
		// (PTRACE_O_EXITKILL), which is what an unfinished restore needs.
		return s.guard()
	}
	return s.detach()
}

// checkVDSO compares the image's vDSO with the stub's, byte for byte and
// in layout, and returns where the image's vDSO area ([vvar] first) began.
func checkVDSO(img, stub []Mapping, mem *os.File) (uint64, error) {
	span := func(ms []Mapping) (start, vdsoOff uint64, vdso *Mapping) {
		for i := range ms {
			m := &ms[i]
			if m.Kind != KindVDSO && m.Kind != KindVVAR {
				continue
			}
			if start == 0 {
				start = m.Start
			}
			if m.Kind == KindVDSO {
				vdso, vdsoOff = m, m.Start-start
			}
		}
		return start, vdsoOff, vdso
	}
	start, off, iv := span(img)
	_, soff, sv := span(stub)
	if iv == nil || sv == nil {
		return 0, fmt.Errorf("%w: no [vdso]", ErrVDSOMismatch)
	}
	if off != soff || iv.Size() != sv.Size() {
		return 0, fmt.Errorf("%w: layout (vdso at +%#x size %#x, here +%#x size %#x)", ErrVDSOMismatch, off, iv.Size(), soff, sv.Size())
	}
	code := make([]byte, sv.Size())
	if _, err := mem.ReadAt(code, int64(sv.Start)); err != nil {
		return 0, err
	}
	if !bytes.Equal(code, iv.Data) {
		return 0, fmt.Errorf("%w: contents", ErrVDSOMismatch)
	}
	return start, nil
}
