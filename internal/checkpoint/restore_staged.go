package checkpoint

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"sort"
	"syscall"

	"golang.org/x/sys/unix"
)

// Staged is a restore begun before the image is complete (live
// migration): the stub, stopped, holds the mappings of a layout (see
// PreCopier.Layout), whose pages are written as they arrive (Write)
// while the process still runs where it was; Finish completes it with
// the image. Its methods must not be called concurrently, but for Write
// before Finish from one goroutine.
type Staged struct {
	t      *tracer
	s      *restoreState
	r      *restorer
	x      *stubExternal
	files  map[int]*os.File
	layout []Mapping
	res    *Restored
	spent  bool
	fill   *filler // nil: every page is written with process_vm_writev
	// fillErr is why there is no filler.
	fillErr error
}

// Stage starts stub (as Restore does), checks the layout's vDSO against
// this kernel's, takes pid where it is free (unless o.AnyPid) and maps
// every mapping of layout, empty. o.Files are the files of the external
// descriptors the image will have (their access is checked at Finish).
func Stage(pid int, layout []Mapping, stub string, o RestoreOptions) (*Staged, error) {
	x, err := stagedExternal(o.Files)
	if err != nil {
		return nil, err
	}
	st := &Staged{t: newTracer(), x: x, files: o.Files, layout: slices.Clone(layout), res: &Restored{}}
	err = st.t.do(func() error {
		stubPid, err := syscall.ForkExec(stub, []string{stub}, &syscall.ProcAttr{
			Dir: "/", Files: x.files, Sys: &syscall.SysProcAttr{Ptrace: true}})
		runtime.KeepAlive(o.Files)
		if err != nil {
			return fmt.Errorf("checkpoint: start stub: %w", err)
		}
		s := &restoreState{stub: stubPid, pid: stubPid}
		r, err := stageInto(s, st.layout, pid, nil, x, &o, st.res)
		if err != nil {
			s.kill()
			return err
		}
		st.s, st.r = s, r
		// Without a userfaultfd (a kernel without one, say), pages
		// are written the slower way: not a reason to fail.
		st.fill, st.fillErr = r.newFiller(fillableRanges(st.layout, false))
		return nil
	})
	if err != nil {
		st.t.close()
		return nil, err
	}
	return st, nil
}

// stagedExternal lays out files for the stub, by number.
func stagedExternal(files map[int]*os.File) (*stubExternal, error) {
	var ext []ExternalFile
	for fd, f := range files {
		fl, err := unix.FcntlInt(f.Fd(), unix.F_GETFL, 0)
		if err != nil {
			return nil, fmt.Errorf("checkpoint: external fd %d: %w", fd, err)
		}
		ext = append(ext, ExternalFile{Fd: fd, Flags: uint32(fl) & unix.O_ACCMODE})
	}
	sort.Slice(ext, func(i, j int) bool { return ext[i].Fd < ext[j].Fd })
	return prepareExternal(ext, files)
}

// FillErr is why pages are written the slower way, without a
// userfaultfd (nil if they are not).
func (st *Staged) FillErr() error { return st.fillErr }

// Pid is the pid the staged process has.
func (st *Staged) Pid() int { return st.res.Pid }

// Write puts b at addr in the staged process's memory: in anonymous
// memory with UFFDIO_COPY (fill.go), elsewhere with process_vm_writev
// (it pins pages by batches) where the mapping is writable, else through
// /proc/PID/mem (a page at a time, but it ignores protections).
func (st *Staged) Write(addr uint64, b []byte) error {
	if st.spent {
		return errors.New("checkpoint: staged restore is over")
	}
	if len(b) == 0 {
		return nil
	}
	if st.fill == nil || addr%pageSize != 0 || len(b)%pageSize != 0 {
		return st.writeVM(addr, b)
	}
	// A range may span registered mappings and others.
	for len(b) > 0 {
		n, in := st.fill.span(addr, len(b))
		var err error
		if in {
			err = st.fill.write(addr, b[:n])
		} else {
			err = st.writeVM(addr, b[:n])
		}
		if err != nil {
			return fmt.Errorf("checkpoint: write %d bytes at %#x: %w", n, addr, err)
		}
		addr, b = addr+uint64(n), b[n:]
	}
	return nil
}

// writeVM is Write without the filler: process_vm_writev, else (a
// mapping that is not writable) /proc/PID/mem.
func (st *Staged) writeVM(addr uint64, b []byte) error {
	if writeVM(st.res.Pid, addr, b) == nil {
		return nil
	}
	return writeMemory(st.res.Pid, st.r.mem, b, addr)
}

// Finish completes the restore with img, whose mappings that are the
// same as the layout's (SameMapping) may come without Data: their pages
// were written already. Other mappings of the layout are unmapped, and
// new ones mapped and filled. Then it is Restore's second half, with o
// (Hold and NewGroup apply; Files must be those given to Stage). On
// error everything is killed.
func (st *Staged) Finish(img *Image, o RestoreOptions) (*Restored, error) {
	if st.spent {
		return nil, errors.New("checkpoint: staged restore is over")
	}
	st.spent = true
	st.fill.close() // what was not written is zero, as in the source
	fail := func(err error) (*Restored, error) {
		st.t.do(func() error { st.s.kill(); return nil })
		st.r.mem.Close()
		st.t.close()
		return nil, err
	}
	if img.Arch != "x86_64" {
		return fail(fmt.Errorf("checkpoint: image arch %q", img.Arch))
	}
	x, err := prepareExternal(img.External, st.files)
	if err != nil {
		return fail(err)
	}
	err = st.t.do(func() error {
		if err := checkCPU(imageCPU(img), st.r.here); err != nil {
			return err
		}
		if err := st.r.reconcile(st.layout, img); err != nil {
			return err
		}
		for _, fd := range st.x.keep { // descriptors the process closed meanwhile
			if !slices.Contains(x.keep, fd) {
				st.r.in.call(unix.SYS_CLOSE, uint64(fd))
			}
		}
		return st.r.complete(st.s, img, x, &o, st.res)
	})
	if err != nil {
		return fail(err)
	}
	st.r.mem.Close()
	res := st.res
	if o.Hold {
		res.held = &heldRestore{t: st.t, s: st.s}
	} else {
		st.t.close()
	}
	if res.Process, err = os.FindProcess(res.Pid); err != nil {
		return nil, err
	}
	return res, nil
}

// Abort kills the staged process.
func (st *Staged) Abort() {
	if st.spent {
		return
	}
	st.spent = true
	st.fill.close()
	st.t.do(func() error { st.s.kill(); return nil })
	st.r.mem.Close()
	st.t.close()
}

// reconcile turns the layout's mappings into img's: those img keeps stay
// as they are (with their pages written meanwhile), the others are
// unmapped, and img's new ones are mapped and filled.
func (r *restorer) reconcile(layout []Mapping, img *Image) error {
	kernel := func(m *Mapping) bool { return m.Kind == KindVDSO || m.Kind == KindVVAR || m.Kind == KindVsyscall }
	find := func(m *Mapping, in []Mapping) bool {
		i := sort.Search(len(in), func(i int) bool { return in[i].Start >= m.Start })
		return i < len(in) && SameMapping(&in[i], m)
	}
	for i := range img.Mappings {
		if m := &img.Mappings[i]; m.Kind == KindVVAR || m.Kind == KindVDSO {
			if m.Start != r.vvar {
				return fmt.Errorf("checkpoint: the vDSO area moved (%#x, staged at %#x)", m.Start, r.vvar)
			}
			break
		}
	}
	for i := range layout {
		if m := &layout[i]; !kernel(m) && !find(m, img.Mappings) {
			if _, err := r.in.callOK(unix.SYS_MUNMAP, m.Start, m.Size()); err != nil {
				return fmt.Errorf("checkpoint: unmap %#x-%#x: %w", m.Start, m.End, err)
			}
		}
	}
	for i := range img.Mappings {
		m := &img.Mappings[i]
		switch {
		case kernel(m):
		case find(m, layout):
			if err := r.fill(m); err != nil {
				return fmt.Errorf("checkpoint: fill %#x-%#x %s: %w", m.Start, m.End, m.Path, err)
			}
		case m.Start < r.scratch+page && r.scratch < m.End:
			return fmt.Errorf("checkpoint: mapping %#x-%#x is where the restore's scratch page is", m.Start, m.End)
		case m.Data == nil && m.Kind.NeedsData():
			return fmt.Errorf("checkpoint: new mapping %#x-%#x %s comes without its contents", m.Start, m.End, m.Path)
		default:
			if err := r.mapping(m); err != nil {
				return err
			}
		}
	}
	return nil
}
