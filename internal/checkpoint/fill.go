package checkpoint

import (
	"errors"
	"fmt"
	"sort"
	"strconv"

	"golang.org/x/sys/unix"
)

// Filling a staged process: most of a live migration's bytes are pages
// written into the anonymous memory of the staged process, which has
// none yet. process_vm_writev pins each page first, which faults it in
// (a zeroed page) and then copies over it; UFFDIO_COPY allocates the page
// and copies into it in one step. So the staged process's anonymous
// mappings are registered with a userfaultfd (missing mode) that only
// our process holds, and pages are copied in with it; a page that is
// already there (written again by a later pre-copy round) is written
// with process_vm_writev. Closing the userfaultfd, before the restore
// goes on, unregisters the mappings: the process ends up as without it.
//
// The userfaultfd handles faults from user mode only: the staged
// process does not run, and a page still missing when the kernel reads
// it on our behalf (process_vm_writev, /proc/PID/mem) is an error, never
// a wait for a fault no one will serve.

// filler copies pages into the anonymous mappings of a staged process.
type filler struct {
	pid     int
	uffd    int
	pagemap int
	ranges  []Range // registered, sorted
	vec     [1]pageRegion
}

// fillable reports whether a mapping can be filled by a filler: private
// anonymous memory (userfaultfd's missing mode takes no file mapping).
func fillable(m *Mapping) bool {
	switch m.Kind {
	case KindAnon, KindHeap, KindStack:
		return true
	}
	return false
}

// fillableRanges are the ranges of the fillable mappings of maps; with
// data, only of those that come with their contents.
func fillableRanges(maps []Mapping, data bool) []Range {
	var out []Range
	for i := range maps {
		if m := &maps[i]; fillable(m) && (!data || m.Data != nil) {
			out = append(out, Range{m.Start, m.End})
		}
	}
	return out
}

// newFiller registers ranges, freshly mapped anonymous memory of the
// stopped process r.in.pid, with a userfaultfd of user-mode faults made
// inside it and taken into our process. Runs on the tracer thread. It
// returns nil and no error when nothing could be registered.
func (r *restorer) newFiller(ranges []Range) (*filler, error) {
	if len(ranges) == 0 {
		return nil, nil
	}
	uffd, registered, err := injectUffd(r.in, r.mem, r.scratch+scratchStruct,
		uffdSpec{mode: uffdioRegisterModeMissing, ranges: ranges, userOnly: true})
	if err != nil {
		return nil, err
	}
	f := &filler{pid: r.in.pid, uffd: uffd, pagemap: -1, ranges: registered}
	if len(registered) == 0 {
		f.close()
		return nil, nil
	}
	if f.pagemap, err = unix.Open("/proc/"+strconv.Itoa(f.pid)+"/pagemap", unix.O_RDONLY|unix.O_CLOEXEC, 0); err != nil {
		f.close()
		return nil, err
	}
	return f, nil
}

// span returns how much of [addr, addr+n) from addr on lies inside one
// registered range (in) or outside all of them.
func (f *filler) span(addr uint64, n int) (k int, in bool) {
	end := addr + uint64(n)
	i := sort.Search(len(f.ranges), func(i int) bool { return f.ranges[i].End > addr })
	switch {
	case i == len(f.ranges):
		return n, false
	case f.ranges[i].Start <= addr:
		return int(min(end, f.ranges[i].End) - addr), true
	default:
		return int(min(end, f.ranges[i].Start) - addr), false
	}
}

// write puts b at addr, inside one registered range: missing pages
// by UFFDIO_COPY, pages already there by process_vm_writev.
func (f *filler) write(addr uint64, b []byte) error {
	for len(b) > 0 {
		n, err := uffdCopy(f.uffd, addr, b)
		addr, b = addr+uint64(n), b[n:]
		switch {
		case err == nil || (errors.Is(err, unix.EAGAIN) && n > 0):
		case errors.Is(err, unix.EEXIST):
			k, err := f.presentRun(addr, len(b))
			if err != nil {
				return err
			}
			if err := writeVM(f.pid, addr, b[:k]); err != nil {
				return err
			}
			addr, b = addr+uint64(k), b[k:]
		default:
			return fmt.Errorf("UFFDIO_COPY at %#x: %w", addr, err)
		}
	}
	return nil
}

// presentRun is the length of the run of pages at addr (at most n
// bytes) that the process has, in memory or swapped out.
func (f *filler) presentRun(addr uint64, n int) (int, error) {
	arg := pmScanArg{CategoryAnyofMask: pageIsPresent | pageIsSwapped, ReturnMask: pageIsPresent | pageIsSwapped}
	arg.Start, arg.End = addr, addr+uint64(n)
	arg.MaxPages = uint64(n+pageSize-1) / pageSize
	k, _, err := pagemapScanOnce(f.pagemap, &arg, f.vec[:])
	if err != nil {
		return 0, fmt.Errorf("PAGEMAP_SCAN %d: %w", f.pid, err)
	}
	if k == 0 || f.vec[0].Start != addr {
		return 0, fmt.Errorf("page %#x of %d is both there (UFFDIO_COPY) and missing (PAGEMAP_SCAN)", addr, f.pid)
	}
	return int(min(f.vec[0].End-addr, uint64(n))), nil
}

// close unregisters the mappings (the userfaultfd's last reference goes).
func (f *filler) close() {
	if f == nil {
		return
	}
	if f.pagemap >= 0 {
		unix.Close(f.pagemap)
	}
	if f.uffd >= 0 {
		unix.Close(f.uffd)
	}
	f.pagemap, f.uffd = -1, -1
}

// writeVM writes b at addr in process pid with process_vm_writev.
func writeVM(pid int, addr uint64, b []byte) error {
	local := []unix.Iovec{{Base: &b[0]}}
	local[0].SetLen(len(b))
	remote := []unix.RemoteIovec{{Base: uintptr(addr), Len: len(b)}}
	n, err := unix.ProcessVMWritev(pid, local, remote, 0)
	if err == nil && n != len(b) {
		err = fmt.Errorf("wrote %d of %d bytes", n, len(b))
	}
	return err
}

// fillAll writes the contents of maps, just mapped: the anonymous ones
// with UFFDIO_COPY where a userfaultfd can be had, the others (and all
// of them without one) through /proc/PID/mem. Runs on the tracer thread.
func (r *restorer) fillAll(maps []Mapping) error {
	f, _ := r.newFiller(fillableRanges(maps, true)) // none: the slower way
	defer f.close()
	for i := range maps {
		m := &maps[i]
		if err := r.fillWith(f, m); err != nil {
			return fmt.Errorf("checkpoint: fill %#x-%#x %s: %w", m.Start, m.End, m.Path, err)
		}
	}
	return nil
}
