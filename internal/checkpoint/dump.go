package checkpoint

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Dump saves the frozen process into an image. On success the process
// stays frozen: call Resume or Kill. On error it is resumed, as it was,
// and p is spent.
func (p *Process) Dump() (*Image, error) {
	if p.spent {
		return nil, errors.New("checkpoint: process already released")
	}
	if len(p.parked) > 0 {
		return nil, errGuarded
	}
	var img *Image
	err := p.t.do(func() error {
		var err error
		img, err = p.dump()
		return err
	})
	if err != nil {
		p.Resume()
		return nil, err
	}
	return img, nil
}

// dump runs on the tracer thread.
func (p *Process) dump() (*Image, error) {
	pid := p.pid
	dir := "/proc/" + strconv.Itoa(pid)
	var uts unix.Utsname
	unix.Uname(&uts)
	img := &Image{Arch: "x86_64", Kernel: unix.ByteSliceToString(uts.Release[:]), Pid: pid, Regs: p.saved}
	var err error
	if img.XState, err = getXState(pid); err != nil {
		return nil, fmt.Errorf("checkpoint: xstate: %w", err)
	}
	if img.CPU, err = thisCPU(img.XState); err != nil {
		return nil, fmt.Errorf("checkpoint: cpu: %w", err)
	}
	if img.SigMask, err = getSigMask(pid); err != nil {
		return nil, fmt.Errorf("checkpoint: sigmask: %w", err)
	}
	if img.Rseq, err = getRseq(pid); err != nil {
		return nil, fmt.Errorf("checkpoint: rseq: %w", err)
	}
	if img.RobustList, err = getRobustList(pid); err != nil {
		return nil, fmt.Errorf("checkpoint: robust list: %w", err)
	}
	st, err := readProc(dir, img, p.opt.External)
	if err != nil {
		return nil, err
	}
	img.Attrs = &ProcAttrs{}
	if err := readAttrs(dir, img, img.Attrs, p.smaps); err != nil {
		return nil, err
	}
	mem, err := os.Open(dir + "/mem")
	if err != nil {
		return nil, err
	}
	defer mem.Close()
	var vdso *Mapping
	pagemap, _ := os.Open(dir + "/pagemap") // nil: every page is read
	if pagemap != nil {
		defer pagemap.Close()
	}
	for i := range img.Mappings {
		m := &img.Mappings[i]
		if !m.Kind.NeedsData() {
			continue
		}
		var err error
		if p.fill != nil {
			err = p.fill(m, mem)
		} else if untouched(pagemap, m) {
			continue // no page ever written: it restores as it is, zeros
		} else {
			m.Data = make([]byte, m.Size())
			err = readMemory(pid, mem, m.Data, m.Start, m.Prot&ProtRead != 0)
		}
		if err != nil {
			return nil, fmt.Errorf("checkpoint: read %#x-%#x %s: %w", m.Start, m.End, m.Path, err)
		}
		if m.Kind == KindVDSO {
			vdso = m
		}
	}
	if vdso == nil {
		return nil, errors.New("checkpoint: no [vdso] to inject system calls through")
	}
	insn, ok := findSyscall(vdso.Data, vdso.Start)
	if !ok {
		return nil, errors.New("checkpoint: no syscall instruction in [vdso]")
	}
	for _, tid := range p.tids {
		th := Thread{Tid: tid, Regs: p.tregs[tid]}
		if th.XState, err = getXState(tid); err != nil {
			return nil, fmt.Errorf("checkpoint: thread %d xstate: %w", tid, err)
		}
		if th.SigMask, err = getSigMask(tid); err != nil {
			return nil, fmt.Errorf("checkpoint: thread %d sigmask: %w", tid, err)
		}
		if th.Rseq, err = getRseq(tid); err != nil {
			return nil, fmt.Errorf("checkpoint: thread %d rseq: %w", tid, err)
		}
		if th.RobustList, err = getRobustList(tid); err != nil {
			return nil, fmt.Errorf("checkpoint: thread %d robust list: %w", tid, err)
		}
		img.Threads = append(img.Threads, th)
	}
	// A single step raises a SIGTRAP that the kernel forces: where
	// SIGTRAP is blocked it resets the handler to SIG_DFL first. It is
	// unblocked while calls are injected, and blocked again after.
	masks := map[int]uint64{pid: img.SigMask}
	for _, th := range img.Threads {
		masks[th.Tid] = th.SigMask
	}
	for tid, m := range masks {
		if m&trapBit != 0 {
			if err := setSigMask(tid, m&^trapBit); err != nil {
				return nil, fmt.Errorf("checkpoint: sigmask of %d: %w", tid, err)
			}
			defer setSigMask(tid, m)
		}
	}
	in := &injector{pid: pid, insn: insn, base: p.saved}
	err = p.injectQueries(in, mem, img, st)
	p.held = append(p.held, in.held...)
	if e := setRegs(pid, p.saved); e != nil && err == nil {
		err = e
	}
	if err != nil {
		return nil, err
	}
	if img.Pending, err = peekSiginfo(pid); err != nil {
		return nil, fmt.Errorf("checkpoint: pending signals: %w", err)
	}
	for _, tid := range p.tids {
		pend, err := peekSiginfo(tid)
		if err != nil {
			return nil, fmt.Errorf("checkpoint: pending signals of thread %d: %w", tid, err)
		}
		th := threadByTid(img, tid)
		for _, ps := range pend {
			if !ps.Shared {
				th.Pending = append(th.Pending, ps)
			}
		}
	}
	// Signals that came during the injected calls were held back (Resume
	// sends them again): the image gets each with what it carried (a
	// timer's value), in the queue of the thread that stopped for it, or
	// the process's if that was the leader.
	for _, h := range in.heldInfo {
		ps := PendingSignal{Info: h.Info, Shared: h.Tid == pid}
		if th := threadByTid(img, h.Tid); th != nil && !ps.Shared {
			th.Pending = append(th.Pending, ps)
		} else {
			ps.Shared = true
			img.Pending = append(img.Pending, ps)
		}
	}
	return img, nil
}

// injectQueries asks the process, by injected calls, what only it can
// tell: brk, the clear-tid address, the alternate stack, interval timers,
// resource limits, signal handlers.
func (p *Process) injectQueries(in *injector, mem *os.File, img *Image, st statusInfo) error {
	const page = 4096
	buf, err := in.callOK(unix.SYS_MMAP, 0, page, unix.PROT_READ|unix.PROT_WRITE,
		unix.MAP_PRIVATE|unix.MAP_ANONYMOUS, ^uint64(0), 0)
	if err != nil {
		return err
	}
	defer in.call(unix.SYS_MUNMAP, buf, page)
	read := func(off uint64, n int) ([]byte, error) {
		b := make([]byte, n)
		_, err := mem.ReadAt(b, int64(buf+off))
		return b, err
	}
	if img.MM.Brk, err = in.callOK(unix.SYS_BRK, 0); err != nil {
		return err
	}
	if _, err := in.callOK(unix.SYS_PRCTL, unix.PR_GET_TID_ADDRESS, buf); err != nil {
		return err
	}
	if _, err := in.callOK(unix.SYS_SIGALTSTACK, 0, buf+8); err != nil {
		return err
	}
	b, err := read(0, 40)
	if err != nil {
		return err
	}
	le := binary.LittleEndian
	img.TIDAddress = le.Uint64(b)
	img.AltStack = AltStack{SP: le.Uint64(b[8:]), Flags: le.Uint32(b[16:]), Size: le.Uint64(b[24:])}
	for which := range img.ITimers {
		off := uint64(128 + 32*which)
		if _, err := in.callOK(unix.SYS_GETITIMER, uint64(which), buf+off); err != nil {
			return err
		}
		b, err := read(off, 32)
		if err != nil {
			return err
		}
		tv := func(b []byte) time.Duration {
			return time.Duration(le.Uint64(b))*time.Second + time.Duration(le.Uint64(b[8:]))*time.Microsecond
		}
		img.ITimers[which] = ITimer{Interval: tv(b), Value: tv(b[16:])}
	}
	// Resource limits are asked of the process itself: prlimit(2) on
	// another user's process needs CAP_SYS_RESOURCE, which we may lack.
	for res := range rlimNLimits {
		off := uint64(256 + 16*res)
		if _, err := in.callOK(unix.SYS_PRLIMIT64, 0, uint64(res), 0, buf+off); err != nil {
			return fmt.Errorf("checkpoint: rlimit %d: %w", res, err)
		}
		b, err := read(off, 16)
		if err != nil {
			return err
		}
		img.Rlimits = append(img.Rlimits, Rlimit{Resource: res, Cur: le.Uint64(b), Max: le.Uint64(b[8:])})
	}
	set := st.SigIgn | st.SigCgt
	for sig := 1; sig <= 64; sig++ {
		if set&(1<<(sig-1)) == 0 || sig == int(unix.SIGKILL) || sig == int(unix.SIGSTOP) {
			continue
		}
		if _, err := in.callOK(unix.SYS_RT_SIGACTION, uint64(sig), 0, buf+64, 8); err != nil {
			return err
		}
		b, err := read(64, 32)
		if err != nil {
			return err
		}
		img.SigActions = append(img.SigActions, SigAction{Sig: sig, Handler: le.Uint64(b),
			Flags: le.Uint64(b[8:]), Restorer: le.Uint64(b[16:]), Mask: le.Uint64(b[24:])})
	}
	if err := queryAttrs(in, buf, read, img.Attrs); err != nil {
		return err
	}
	// The clear-tid address and the alternate stack are per thread: ask
	// each thread itself.
	for i := range img.Threads {
		th := &img.Threads[i]
		tin := &injector{pid: th.Tid, insn: in.insn, base: th.Regs}
		_, err := tin.callOK(unix.SYS_PRCTL, unix.PR_GET_TID_ADDRESS, buf+1024)
		if err == nil {
			_, err = tin.callOK(unix.SYS_SIGALTSTACK, 0, buf+1032)
		}
		in.held = append(in.held, tin.held...)
		in.heldInfo = append(in.heldInfo, tin.heldInfo...)
		if e := setRegs(th.Tid, th.Regs); e != nil && err == nil {
			err = e
		}
		if err != nil {
			return fmt.Errorf("checkpoint: thread %d: %w", th.Tid, err)
		}
		b, err := read(1024, 40)
		if err != nil {
			return err
		}
		th.TIDAddress = le.Uint64(b)
		th.AltStack = AltStack{SP: le.Uint64(b[8:]), Flags: le.Uint32(b[16:]), Size: le.Uint64(b[24:])}
	}
	return nil
}

// threadByTid returns the image's thread tid.
func threadByTid(img *Image, tid int) *Thread {
	for i := range img.Threads {
		if img.Threads[i].Tid == tid {
			return &img.Threads[i]
		}
	}
	return nil
}

// readProc fills in what /proc tells about the frozen process; the
// descriptors in ext go into img.External.
func readProc(dir string, img *Image, ext []int) (statusInfo, error) {
	rd := func(name string) (string, error) {
		b, err := os.ReadFile(dir + "/" + name)
		return string(b), err
	}
	s, err := rd("status")
	if err != nil {
		return statusInfo{}, err
	}
	st, err := parseStatus(s)
	if err != nil {
		return st, err
	}
	img.Umask = st.Umask
	if img.Creds, err = parseCreds(s); err != nil {
		return st, err
	}
	if s, err = rd("stat"); err != nil {
		return st, err
	}
	stat, err := parseStat(s)
	if err != nil {
		return st, err
	}
	img.MM = stat.MM
	img.Comm = stat.Comm
	if s, err = rd("maps"); err != nil {
		return st, err
	}
	if img.Mappings, err = parseMaps(s); err != nil {
		return st, err
	}
	if s, err = rd("auxv"); err != nil {
		return st, err
	}
	img.Auxv = []byte(s)
	if img.Exe, err = os.Readlink(dir + "/exe"); err != nil {
		return st, err
	}
	if img.Cwd, err = os.Readlink(dir + "/cwd"); err != nil {
		return st, err
	}
	pid, _ := strconv.Atoi(dir[len("/proc/"):])
	fds, err := readFds(pid)
	if err != nil {
		return st, err
	}
	// Every descriptor's fdinfo, read once: the pipes' flags say which
	// pipes are the process's own before the descriptors are looked at.
	infos, pf := map[int]string{}, map[int]uint32{}
	for _, f := range fds {
		s, err := rd("fdinfo/" + strconv.Itoa(f.Fd))
		if err != nil {
			return st, err
		}
		_, flags, err := parseFdinfo(s)
		if err != nil {
			return st, err
		}
		infos[f.Fd], pf[f.Fd] = s, flags
	}
	inner := innerPipes(fds, pf)
	var pairs map[uint64]bool
	var socks map[uint64]unixSock
	if slices.ContainsFunc(fds, func(f fdView) bool { return strings.HasPrefix(f.Target, "socket:") }) {
		if socks, err = unixSockets(); err != nil {
			return st, err
		}
		pairs, _ = innerPairs(fds, socks)
	}
	peeked := map[uint64][]byte{}
	filled := map[uint64]bool{}
	var ttys []ttyDriver
	for _, f := range fds {
		s := infos[f.Fd]
		pos, flags, err := parseFdinfo(s)
		if err != nil {
			return st, err
		}
		if slices.Contains(ext, f.Fd) {
			if ttys == nil {
				ttys = readTTYDrivers()
			}
			img.External = append(img.External, externalFile(f, flags, stat.TTYNr, ttys))
			continue
		}
		if id, ok := socketID(f.Target); ok && pairs[id] && !slices.Contains(ext, f.Fd) {
			var data []byte // what it has queued, with its first number only
			if _, seen := peeked[id]; !seen {
				if data, err = peekSocket(pid, f.Fd); err != nil {
					return st, fmt.Errorf("fd %d: socketpair: %w", f.Fd, err)
				}
				peeked[id] = data
			}
			img.Objects = append(img.Objects, KObject{Fd: f.Fd, Kind: ObjUnixPair, Flags: flags, Sock: id, Peer: socks[id].Peer, Data: data})
			continue
		}
		if id, ok := pipeID(f.Target); ok && inner[id] && !slices.Contains(ext, f.Fd) {
			o := KObject{Fd: f.Fd, Kind: ObjPipe, Flags: flags, Pipe: id}
			if flags&unix.O_ACCMODE != unix.O_WRONLY && !filled[id] {
				data, size, err := readPipe(pid, f.Fd)
				if err != nil {
					return st, fmt.Errorf("fd %d: pipe: %w", f.Fd, err)
				}
				o.Data, o.PipeSize, filled[id] = data, uint32(size), true
			}
			img.Objects = append(img.Objects, o)
			continue
		}
		if strings.HasSuffix(f.Target, " (deleted)") && f.Mode.IsRegular() {
			o, err := readDeleted(dir, f.Fd, f.Target, flags, pos)
			if err != nil {
				return st, err
			}
			img.Objects = append(img.Objects, o)
			continue
		}
		if k, ok := objKindOf(f.Target); ok {
			o, err := parseObject(k, f.Fd, s)
			if err != nil {
				return st, err
			}
			if err := inotifyPaths(&o); err != nil {
				return st, err
			}
			img.Objects = append(img.Objects, o)
			continue
		}
		img.Files = append(img.Files, File{Fd: f.Fd, Path: f.Target, Flags: flags, Offset: pos})
	}
	return st, nil
}

const rlimNLimits = 16 // RLIMIT_CPU .. RLIMIT_RTTIME
