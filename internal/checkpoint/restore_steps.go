package checkpoint

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// The steps of restoreInto, in order. They run on the tracer goroutine.

// mapScratch maps the scratch page, writes a syscall instruction in it and
// moves injection there.
func (r *restorer) mapScratch() error {
	if _, err := r.in.callOK(unix.SYS_MMAP, r.scratch, page, unix.PROT_READ|unix.PROT_WRITE|unix.PROT_EXEC,
		unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_FIXED_NOREPLACE, ^uint64(0), 0); err != nil {
		return err
	}
	if err := r.write(0, syscallInsn); err != nil {
		return err
	}
	r.in.insn = r.scratch
	return nil
}

// prepare closes every descriptor but keep (the external ones, installed
// at exec), unmaps all of the stub and maps the vDSO at its old place.
func (r *restorer) prepare(stubMaps []Mapping, vvarStart uint64, keep []int) error {
	in := r.in
	for _, c := range closeRanges(keep) {
		if _, err := in.callOK(sysCloseRange, c[0], c[1], 0); err != nil {
			return err
		}
	}
	for _, m := range stubMaps {
		if m.Kind == KindVsyscall {
			continue
		}
		if _, err := in.callOK(unix.SYS_MUNMAP, m.Start, m.Size()); err != nil {
			return err
		}
	}
	_, err := in.callOK(unix.SYS_ARCH_PRCTL, archMapVDSO64, vvarStart)
	return err
}

// write copies b into the scratch page at off.
func (r *restorer) write(off uint64, b []byte) error {
	_, err := r.mem.WriteAt(b, int64(r.scratch+off))
	return err
}

// open opens path in the new process and returns the descriptor.
func (r *restorer) open(path string, flags uint32) (uint64, error) {
	if len(path) > maxRestorePath {
		return 0, fmt.Errorf("checkpoint: path too long: %q", path)
	}
	if err := r.write(scratchPath, append([]byte(path), 0)); err != nil {
		return 0, err
	}
	fd, err := r.in.callOK(unix.SYS_OPENAT, atFDCWD, r.scratch+scratchPath, uint64(flags), 0)
	if err != nil {
		return 0, fmt.Errorf("checkpoint: open %q: %w", path, err)
	}
	return fd, nil
}

// mapping recreates one mapping of the image and fills in its pages
// (the kernel's [vdso], [vvar] and [vsyscall] are left alone).
func (r *restorer) mapping(m *Mapping) error {
	if err := r.mapEmpty(m); err != nil {
		return err
	}
	if err := r.fill(m); err != nil {
		return fmt.Errorf("checkpoint: fill %#x-%#x %s: %w", m.Start, m.End, m.Path, err)
	}
	return nil
}

// mapEmpty maps m, without its contents.
func (r *restorer) mapEmpty(m *Mapping) error {
	in := r.in
	flags := uint64(unix.MAP_FIXED | unix.MAP_PRIVATE)
	fd, off := ^uint64(0), uint64(0)
	switch m.Kind {
	case KindVDSO, KindVVAR, KindVsyscall:
		return nil
	case KindStack:
		flags |= unix.MAP_ANONYMOUS | unix.MAP_GROWSDOWN
	case KindAnon, KindHeap:
		flags |= unix.MAP_ANONYMOUS
	case KindAnonShared:
		flags = unix.MAP_FIXED | unix.MAP_SHARED | unix.MAP_ANONYMOUS
	case KindFilePrivate, KindFileShared:
		oflags := uint32(unix.O_RDONLY)
		if m.Kind == KindFileShared {
			flags = unix.MAP_FIXED | unix.MAP_SHARED
			if m.Prot&ProtWrite != 0 || m.Flags&MapMayWrite != 0 {
				oflags = unix.O_RDWR // may be made writable: its file was open for writing
			}
		}
		var err error
		if fd, err = r.open(m.Path, oflags|unix.O_CLOEXEC); err != nil {
			return err
		}
		off = m.Offset
	}
	_, err := in.callOK(unix.SYS_MMAP, m.Start, m.Size(), uint64(m.Prot), flags, fd, off)
	if fd != ^uint64(0) {
		in.call(unix.SYS_CLOSE, fd)
	}
	if err != nil {
		return fmt.Errorf("checkpoint: map %#x-%#x %s: %w", m.Start, m.End, m.Path, err)
	}
	return r.nameMapping(m)
}

// nameMapping gives anonymous memory the name it had
// (PR_SET_VMA_ANON_NAME: "[anon:NAME]" or "[anon_shmem:NAME]" in maps).
func (r *restorer) nameMapping(m *Mapping) error {
	name, ok := anonName(m.Path)
	if !ok {
		return nil
	}
	if err := r.write(scratchPath, append([]byte(name), 0)); err != nil {
		return err
	}
	const prSetVMA, prSetVMAAnonName = 0x53564d41, 0
	if _, err := r.in.callOK(unix.SYS_PRCTL, prSetVMA, prSetVMAAnonName, m.Start, m.Size(), r.scratch+scratchPath); err != nil {
		return fmt.Errorf("checkpoint: name %#x-%#x %s: %w", m.Start, m.End, m.Path, err)
	}
	return nil
}

// anonName returns the name of a named anonymous mapping's maps path.
func anonName(path string) (string, bool) {
	for _, p := range []string{"[anon:", "[anon_shmem:"} {
		if rest, ok := strings.CutPrefix(path, p); ok && strings.HasSuffix(rest, "]") {
			name := strings.TrimSuffix(rest, "]")
			return name, name != "" && len(name) < 80 && strings.IndexByte(name, 0) < 0
		}
	}
	return "", false
}

// fill writes a mapping's saved pages through /proc/PID/mem, which ignores
// protections, or with f (nil: none) if it has the mapping registered.
// Pages of zeros are skipped in anonymous memory, which starts out zero.
func (r *restorer) fill(m *Mapping) error { return r.fillWith(nil, m) }

func (r *restorer) fillWith(f *filler, m *Mapping) error {
	if m.Data == nil {
		return nil
	}
	if f != nil {
		if k, in := f.span(m.Start, int(m.Size())); !in || k != int(m.Size()) {
			f = nil
		}
	}
	skipZero := m.Kind != KindFilePrivate
	var zero [page]byte
	for lo := 0; lo < len(m.Data); {
		if skipZero && bytes.Equal(m.Data[lo:lo+page], zero[:]) {
			lo += page
			continue
		}
		hi := lo + page
		for hi < len(m.Data) && hi-lo < 64<<20 && !(skipZero && bytes.Equal(m.Data[hi:hi+page], zero[:])) {
			hi += page
		}
		if f != nil {
			if err := f.write(m.Start+uint64(lo), m.Data[lo:hi]); err != nil {
				return err
			}
		} else if err := writeMemory(r.in.pid, r.mem, m.Data[lo:hi], m.Start+uint64(lo)); err != nil {
			return err
		}
		lo = hi
	}
	return nil
}

// process restores what is not memory: mm fields, files, directory,
// umask, signal handlers, the alternate stack, tid address, robust list,
// rseq and the command name.
func (r *restorer) process(img *Image) error {
	in, le := r.in, binary.LittleEndian
	exe, err := r.open(img.Exe, unix.O_RDONLY|unix.O_CLOEXEC)
	if err != nil {
		return err
	}
	mm := img.MM
	var b []byte
	for _, v := range mmSlice(&mm) {
		b = le.AppendUint64(b, *v)
	}
	if len(img.Auxv) > page-scratchAuxv {
		return fmt.Errorf("checkpoint: auxv of %d bytes", len(img.Auxv))
	}
	b = le.AppendUint64(b, r.scratch+scratchAuxv)
	b = le.AppendUint32(b, uint32(len(img.Auxv)))
	b = le.AppendUint32(b, uint32(exe))
	if err := r.write(scratchStruct, b); err != nil {
		return err
	}
	if err := r.write(scratchAuxv, img.Auxv); err != nil {
		return err
	}
	_, err = in.callOK(unix.SYS_PRCTL, prSetMM, prSetMMMap, r.scratch+scratchStruct, uint64(len(b)), 0)
	in.call(unix.SYS_CLOSE, exe)
	if err != nil {
		return fmt.Errorf("checkpoint: PR_SET_MM_MAP: %w", err)
	}
	if err := r.files(img.Files); err != nil {
		return err
	}
	if err := r.objects(img.Objects); err != nil {
		return err
	}
	if err := r.attrs(img.Attrs); err != nil {
		return err
	}
	if len(img.Cwd) > maxRestorePath { // it would run over the scratch page's other areas
		return fmt.Errorf("checkpoint: working directory path too long: %q", img.Cwd)
	}
	if err := r.write(scratchPath, append([]byte(img.Cwd), 0)); err != nil {
		return err
	}
	if _, err := in.callOK(unix.SYS_CHDIR, r.scratch+scratchPath); err != nil {
		return fmt.Errorf("checkpoint: chdir %q: %w", img.Cwd, err)
	}
	in.call(unix.SYS_UMASK, uint64(img.Umask))
	actions := img.SigActions
	for sig := 1; sig <= 64; sig++ {
		if r.stubIgnored&(1<<(sig-1)) != 0 && !slices.ContainsFunc(actions, func(a SigAction) bool { return a.Sig == sig }) {
			actions = append(actions, SigAction{Sig: sig}) // back to SIG_DFL
		}
	}
	for _, a := range actions {
		b := le.AppendUint64(nil, a.Handler)
		b = le.AppendUint64(b, a.Flags)
		b = le.AppendUint64(b, a.Restorer)
		b = le.AppendUint64(b, a.Mask)
		if err := r.write(scratchStruct, b); err != nil {
			return err
		}
		if _, err := in.callOK(unix.SYS_RT_SIGACTION, uint64(a.Sig), r.scratch+scratchStruct, 0, 8); err != nil {
			return fmt.Errorf("checkpoint: sigaction %d: %w", a.Sig, err)
		}
	}
	if as := img.AltStack; as.Flags&ssDisable == 0 {
		b := le.AppendUint64(nil, as.SP)
		b = le.AppendUint64(b, uint64(as.Flags&^ssOnStack))
		b = le.AppendUint64(b, as.Size)
		if err := r.write(scratchStruct, b); err != nil {
			return err
		}
		if _, err := in.callOK(unix.SYS_SIGALTSTACK, r.scratch+scratchStruct, 0); err != nil {
			return fmt.Errorf("checkpoint: sigaltstack: %w", err)
		}
	}
	in.call(unix.SYS_SET_TID_ADDRESS, img.TIDAddress)
	if rl := img.RobustList; rl.Head != 0 {
		if _, err := in.callOK(unix.SYS_SET_ROBUST_LIST, rl.Head, rl.Len); err != nil {
			return fmt.Errorf("checkpoint: set_robust_list: %w", err)
		}
	}
	if rs := img.Rseq; rs.Ptr != 0 {
		if _, err := in.callOK(sysRseq, rs.Ptr, uint64(rs.Size), 0, uint64(rs.Sig)); err != nil {
			return fmt.Errorf("checkpoint: rseq: %w", err)
		}
	}
	comm := img.Comm
	if len(comm) > 15 { // TASK_COMM_LEN - 1; an image is not to be trusted
		comm = comm[:15]
	}
	if err := r.write(scratchPath, append([]byte(comm), 0)); err != nil {
		return err
	}
	in.call(unix.SYS_PRCTL, unix.PR_SET_NAME, r.scratch+scratchPath)
	return nil
}

// files reopens the image's descriptors at their numbers and offsets.
func (r *restorer) files(files []File) error {
	const dropped = unix.O_CREAT | unix.O_EXCL | unix.O_TRUNC | unix.O_NOCTTY
	for _, f := range files {
		fd, err := r.open(f.Path, f.Flags&^dropped)
		if err != nil {
			return err
		}
		if fd != uint64(f.Fd) {
			_, err := r.in.callOK(unix.SYS_DUP3, fd, uint64(f.Fd), uint64(f.Flags&unix.O_CLOEXEC))
			r.in.call(unix.SYS_CLOSE, fd)
			if err != nil {
				return fmt.Errorf("checkpoint: dup3 %d: %w", f.Fd, err)
			}
		}
		if f.Flags&unix.O_APPEND == 0 && f.Offset != 0 {
			if _, err := r.in.callOK(unix.SYS_LSEEK, uint64(f.Fd), uint64(f.Offset), 0); err != nil {
				return fmt.Errorf("checkpoint: lseek fd %d: %w", f.Fd, err)
			}
		}
	}
	return nil
}

// last re-queues the pending signals, arms the interval timers and, last
// of all, drops to the image's credentials (setgroups, setresgid,
// setresuid). The signal mask must block everything meanwhile.
func (r *restorer) last(img *Image) error {
	in, le := r.in, binary.LittleEndian
	pid := uint64(in.pid)
	for _, p := range img.Pending {
		if err := r.write(scratchStruct, p.Info[:]); err != nil {
			return err
		}
		var err error
		if p.Shared {
			_, err = in.callOK(unix.SYS_RT_SIGQUEUEINFO, pid, uint64(p.Signo()), r.scratch+scratchStruct)
		} else {
			_, err = in.callOK(unix.SYS_RT_TGSIGQUEUEINFO, pid, pid, uint64(p.Signo()), r.scratch+scratchStruct)
		}
		if err != nil {
			return fmt.Errorf("checkpoint: queue signal %d: %w", p.Signo(), err)
		}
	}
	for which, t := range img.ITimers {
		if t.Value == 0 && t.Interval == 0 {
			continue // disarmed
		}
		if t.Value == 0 {
			// A periodic ITIMER_REAL that expired with its SIGALRM
			// not yet taken (pending, restored above): the kernel
			// re-arms it when the signal is taken. setitimer with a
			// zero value would disarm it for good, and a process
			// waiting for its next tick would wait for ever.
			t.Value = t.Interval
		}
		var b []byte
		for _, d := range []time.Duration{t.Interval, t.Value} {
			b = le.AppendUint64(b, uint64(d/time.Second))
			b = le.AppendUint64(b, uint64(d%time.Second/time.Microsecond))
		}
		if err := r.write(scratchStruct, b); err != nil {
			return err
		}
		if _, err := in.callOK(unix.SYS_SETITIMER, uint64(which), r.scratch+scratchStruct, 0); err != nil {
			return fmt.Errorf("checkpoint: setitimer %d: %w", which, err)
		}
	}
	c := img.Creds
	if c == nil {
		return nil
	}
	if len(c.Groups)*4 > page-scratchStruct {
		return fmt.Errorf("checkpoint: %d supplementary groups", len(c.Groups))
	}
	var b []byte
	for _, g := range c.Groups {
		b = le.AppendUint32(b, g)
	}
	if err := r.write(scratchStruct, b); err != nil {
		return err
	}
	if _, err := in.callOK(unix.SYS_SETGROUPS, uint64(len(c.Groups)), r.scratch+scratchStruct); err != nil {
		return fmt.Errorf("checkpoint: setgroups: %w", err)
	}
	if _, err := in.callOK(unix.SYS_SETRESGID, uint64(c.Gid[0]), uint64(c.Gid[1]), uint64(c.Gid[2])); err != nil {
		return fmt.Errorf("checkpoint: setresgid: %w", err)
	}
	if _, err := in.callOK(unix.SYS_SETRESUID, uint64(c.Uid[0]), uint64(c.Uid[1]), uint64(c.Uid[2])); err != nil {
		return fmt.Errorf("checkpoint: setresuid: %w", err)
	}
	return r.dumpable(img.Attrs)
}

// threads creates the image's other threads in the main thread, each
// with its old thread id where that id is free and keep is set (see
// newThread); they are traced at once (PTRACE_O_TRACECLONE). It gives
// each, by calls injected in it, its clear-tid address, robust list,
// alternate stack and rseq area, then queues its private signals. Their
// registers are set at the very end. The signal mask must block
// everything (the threads inherit it).
func (r *restorer) threads(img *Image, s *restoreState, keep bool, res *Restored) error {
	if len(img.Threads) == 0 {
		return nil
	}
	in, le := r.in, binary.LittleEndian
	pid := in.pid
	if err := unix.PtraceSetOptions(pid, unix.PTRACE_O_EXITKILL|unix.PTRACE_O_TRACECLONE); err != nil {
		return fmt.Errorf("checkpoint: PTRACE_O_TRACECLONE: %w", err)
	}
	for i := range img.Threads {
		th := &img.Threads[i]
		want := 0
		if keep {
			want = th.Tid
		}
		tid, err := r.newThread(want, &keep)
		if err != nil {
			return fmt.Errorf("checkpoint: clone thread %d: %w", th.Tid, err)
		}
		s.tids = append(s.tids, tid)
		res.Tids = append(res.Tids, tid)
		if tid == th.Tid {
			res.TidsKept++
		}
		regs, err := waitNewTask(tid)
		if err != nil {
			return err
		}
		tin := &injector{pid: tid, insn: in.insn, base: regs}
		tin.call(unix.SYS_SET_TID_ADDRESS, th.TIDAddress)
		if rl := th.RobustList; rl.Head != 0 {
			if _, err := tin.callOK(unix.SYS_SET_ROBUST_LIST, rl.Head, rl.Len); err != nil {
				return fmt.Errorf("checkpoint: thread %d set_robust_list: %w", th.Tid, err)
			}
		}
		if as := th.AltStack; as.Flags&ssDisable == 0 {
			b := le.AppendUint64(nil, as.SP)
			b = le.AppendUint64(b, uint64(as.Flags&^ssOnStack))
			b = le.AppendUint64(b, as.Size)
			if err := r.write(scratchStruct, b); err != nil {
				return err
			}
			if _, err := tin.callOK(unix.SYS_SIGALTSTACK, r.scratch+scratchStruct, 0); err != nil {
				return fmt.Errorf("checkpoint: thread %d sigaltstack: %w", th.Tid, err)
			}
		}
		if rs := th.Rseq; rs.Ptr != 0 {
			if _, err := tin.callOK(sysRseq, rs.Ptr, uint64(rs.Size), 0, uint64(rs.Sig)); err != nil {
				return fmt.Errorf("checkpoint: thread %d rseq: %w", th.Tid, err)
			}
		}
		if len(tin.held) > 0 {
			return fmt.Errorf("checkpoint: thread %d: signals %v during restore", th.Tid, tin.held)
		}
		for _, p := range th.Pending {
			if err := r.write(scratchStruct, p.Info[:]); err != nil {
				return err
			}
			if _, err := in.callOK(unix.SYS_RT_TGSIGQUEUEINFO, uint64(pid), uint64(tid), uint64(p.Signo()), r.scratch+scratchStruct); err != nil {
				return fmt.Errorf("checkpoint: thread %d: queue signal %d: %w", th.Tid, p.Signo(), err)
			}
		}
	}
	return nil
}

// trapBit is SIGTRAP in a signal mask.
const trapBit = 1 << (unix.SIGTRAP - 1)

// restoreMask is the signal mask of the injected calls of a restore's
// last steps: every signal but SIGTRAP, unless one is pending in img.
func restoreMask(img *Image) uint64 {
	pending := func(ps []PendingSignal) bool {
		return slices.ContainsFunc(ps, func(p PendingSignal) bool { return p.Signo() == int(unix.SIGTRAP) })
	}
	trap := pending(img.Pending)
	for i := range img.Threads {
		trap = trap || pending(img.Threads[i].Pending)
	}
	if trap {
		return ^uint64(0)
	}
	return ^uint64(0) &^ trapBit
}
