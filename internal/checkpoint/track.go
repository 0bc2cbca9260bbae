package checkpoint

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

// Range is a page-aligned address range [Start, End).
type Range struct{ Start, End uint64 }

// Size is the length of the range in bytes.
func (r Range) Size() uint64 { return r.End - r.Start }

// DirtySet is what Tracker.Dirty found.
type DirtySet struct {
	// Written lists the pages written since the previous call (or since
	// TrackDirty), now write-protected again.
	Written []Range
	// Untracked lists the parts of the private mappings (those whose
	// contents a dump saves) that are not under tracking: mappings made
	// after TrackDirty (mmap, brk growth, mremap), [vdso], or areas whose
	// registration failed. Copy them whole.
	Untracked []Range
	// MapsChanged reports that /proc/PID/maps differs from the previous
	// call (or from TrackDirty).
	MapsChanged bool
}

// Tracker tracks the pages a process writes: userfaultfd write-protect in
// asynchronous mode on every private mapping, read and re-armed with the
// PAGEMAP_SCAN ioctl on /proc/PID/pagemap. The userfaultfd lives in our
// process only; closing it ends the tracking.
type Tracker struct {
	pid     int
	mu      sync.Mutex
	uffd    int
	pagemap int
	maps    string
	maps0   string // maps at TrackDirty
	vec     []pageRegion
	closed  bool
}

// trackable reports whether a mapping's pages are write-tracked.
func trackable(m *Mapping) bool {
	switch m.Kind {
	case KindAnon, KindHeap, KindStack, KindFilePrivate:
		return true
	}
	return false
}

// TrackDirty starts write tracking on every private mapping of the frozen
// process: a userfaultfd is created inside the process by injected calls
// (userfaultfd, UFFDIO_API with UFFD_FEATURE_WP_ASYNC and
// UFFD_FEATURE_WP_UNPOPULATED, UFFDIO_REGISTER in write-protect mode per
// mapping), taken into our process with pidfd_getfd and closed in the
// process, then every page is write-protected. The process stays frozen.
func (p *Process) TrackDirty() (*Tracker, error) {
	if p.spent {
		return nil, errors.New("checkpoint: process already released")
	}
	if len(p.parked) > 0 {
		return nil, errGuarded
	}
	var t *Tracker
	err := p.t.do(func() error {
		var err error
		t, err = p.trackDirty()
		return err
	})
	if err != nil {
		return nil, err
	}
	// Arm: protect every page, the ones written before tracking included.
	// This comes after the last injected call: the kernel writes the
	// rseq area on every return to user mode.
	if _, err := t.Dirty(); err != nil {
		t.Close()
		return nil, err
	}
	t.maps = t.maps0
	return t, nil
}

// trackDirty runs on the tracer thread.
func (p *Process) trackDirty() (*Tracker, error) {
	pid := p.pid
	dir := "/proc/" + strconv.Itoa(pid)
	text, err := os.ReadFile(dir + "/maps")
	if err != nil {
		return nil, err
	}
	maps, err := parseMaps(string(text))
	if err != nil {
		return nil, err
	}
	mem, err := os.OpenFile(dir+"/mem", os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	defer mem.Close()
	var insn uint64
	for i := range maps {
		if m := &maps[i]; m.Kind == KindVDSO {
			code := make([]byte, m.Size())
			if _, err := mem.ReadAt(code, int64(m.Start)); err != nil {
				return nil, fmt.Errorf("checkpoint: read [vdso]: %w", err)
			}
			var ok bool
			if insn, ok = findSyscall(code, m.Start); !ok {
				return nil, errors.New("checkpoint: no syscall instruction in [vdso]")
			}
		}
	}
	if insn == 0 {
		return nil, errors.New("checkpoint: no [vdso] to inject system calls through")
	}
	in := &injector{pid: pid, insn: insn, base: p.saved}
	defer func() {
		p.held = append(p.held, in.held...)
		setRegs(pid, p.saved)
	}()
	buf, err := in.callOK(unix.SYS_MMAP, 0, pageSize, unix.PROT_READ|unix.PROT_WRITE,
		unix.MAP_PRIVATE|unix.MAP_ANONYMOUS, ^uint64(0), 0)
	if err != nil {
		return nil, err
	}
	defer in.call(unix.SYS_MUNMAP, buf, pageSize)
	// A mapping that cannot be registered stays untracked: Dirty
	// reports it in Untracked every time.
	var ranges []Range
	for i := range maps {
		if m := &maps[i]; trackable(m) {
			ranges = append(ranges, Range{m.Start, m.End})
		}
	}
	uffd, _, err := injectUffd(in, mem, buf, uffdSpec{features: uffdFeatureWPAsync | uffdFeatureWPUnpopul,
		mode: uffdioRegisterModeWP, ranges: ranges})
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	pm, err := unix.Open(dir+"/pagemap", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		unix.Close(uffd)
		return nil, err
	}
	return &Tracker{pid: pid, uffd: uffd, pagemap: pm, vec: make([]pageRegion, scanVecLen), maps0: string(text)}, nil
}

// Close ends the tracking; the process's mappings are unregistered.
func (t *Tracker) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil
	}
	t.closed = true
	unix.Close(t.pagemap)
	return unix.Close(t.uffd)
}

// scan walks [start, end) with PAGEMAP_SCAN and appends the regions found
// to out, merging neighbours.
func (t *Tracker) scan(out []pageRegion, arg pmScanArg, start, end uint64) ([]pageRegion, error) {
	for start < end {
		a := arg
		a.Start, a.End = start, end
		n, walkEnd, err := pagemapScanOnce(t.pagemap, &a, t.vec)
		if err != nil {
			return out, err
		}
		for _, r := range t.vec[:n] {
			if k := len(out) - 1; k >= 0 && out[k].End == r.Start && out[k].Categories == r.Categories {
				out[k].End = r.End
			} else {
				out = append(out, r)
			}
		}
		if walkEnd <= start {
			break
		}
		start = walkEnd
	}
	return out, nil
}

// tracked returns the ranges of the address space under write tracking.
func (t *Tracker) tracked() ([]Range, error) {
	rs, err := t.scan(nil, pmScanArg{CategoryMask: pageIsWPAllowed, ReturnMask: pageIsWPAllowed}, 0, userTaskSize)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: PAGEMAP_SCAN %d: %w", t.pid, err)
	}
	out := make([]Range, 0, len(rs))
	for _, r := range rs {
		if k := len(out) - 1; k >= 0 && out[k].End == r.Start {
			out[k].End = r.End
		} else {
			out = append(out, Range{r.Start, r.End})
		}
	}
	return out, nil
}

// Dirty returns the pages written since the previous call and protects
// them again (PAGEMAP_SCAN with PM_SCAN_WP_MATCHING|PM_SCAN_CHECK_WPASYNC,
// category PAGE_IS_WRITTEN), the untracked parts of the private mappings
// and whether the mappings changed. It may be called while the process
// runs; only a call made while it is frozen is exact.
func (t *Tracker) Dirty() (DirtySet, error) {
	ds, _, _, err := t.dirty(false)
	return ds, err
}

// dirty is Dirty; with absent it also returns, in the same scan, the
// tracked pages that are neither present nor swapped (zapped by
// MADV_DONTNEED, say, whose contents are now zero or the file's), and
// the tracked ranges.
func (t *Tracker) dirty(absent bool) (DirtySet, []Range, []Range, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var ds DirtySet
	if t.closed {
		return ds, nil, nil, errors.New("checkpoint: tracker closed")
	}
	text, err := os.ReadFile("/proc/" + strconv.Itoa(t.pid) + "/maps")
	if err != nil {
		return ds, nil, nil, err
	}
	ds.MapsChanged = t.maps != "" && string(text) != t.maps
	t.maps = string(text)
	maps, err := parseMaps(string(text))
	if err != nil {
		return ds, nil, nil, err
	}
	tr, err := t.tracked()
	if err != nil {
		return ds, nil, nil, err
	}
	arg := pmScanArg{Flags: pmScanWPMatching | pmScanCheckWPAsync,
		CategoryMask: pageIsWritten, ReturnMask: pageIsWritten}
	if absent {
		// written, or (inverted) not present: swapped pages that
		// match only by being not present are sorted out below.
		arg.CategoryMask = 0
		arg.CategoryInverted = pageIsPresent
		arg.CategoryAnyofMask = pageIsWritten | pageIsPresent
		arg.ReturnMask = pageIsWritten | pageIsPresent | pageIsSwapped
	}
	var regs []pageRegion
	for _, r := range tr {
		regs, err = t.scan(regs, arg, r.Start, r.End)
		if errors.Is(err, unix.EPERM) {
			// A tracked area was replaced while we looked (the
			// process runs): skip what is not tracked any more.
			a := arg
			a.Flags = pmScanWPMatching
			regs, err = t.scan(regs, a, r.Start, r.End)
		}
		if err != nil {
			return ds, nil, nil, fmt.Errorf("checkpoint: PAGEMAP_SCAN %d: %w", t.pid, err)
		}
	}
	var gone []Range
	for _, r := range regs {
		switch {
		case r.Categories&pageIsWritten != 0:
			ds.Written = appendRange(ds.Written, Range{r.Start, r.End})
		case r.Categories&(pageIsPresent|pageIsSwapped) == 0:
			gone = appendRange(gone, Range{r.Start, r.End})
		}
	}
	for i := range maps {
		m := &maps[i]
		if !m.Kind.NeedsData() {
			continue
		}
		ds.Untracked = append(ds.Untracked, subtract(Range{m.Start, m.End}, tr)...)
	}
	return ds, gone, tr, nil
}

// appendRange appends r to rs, merging it with the last range if they
// touch.
func appendRange(rs []Range, r Range) []Range {
	if k := len(rs) - 1; k >= 0 && rs[k].End == r.Start {
		rs[k].End = r.End
		return rs
	}
	return append(rs, r)
}

// subtract returns r minus the sorted, disjoint ranges in cut.
func subtract(r Range, cut []Range) []Range {
	var out []Range
	i := sort.Search(len(cut), func(i int) bool { return cut[i].End > r.Start })
	for ; i < len(cut) && cut[i].Start < r.End && r.Start < r.End; i++ {
		if cut[i].Start > r.Start {
			out = append(out, Range{r.Start, cut[i].Start})
		}
		r.Start = max(r.Start, cut[i].End)
	}
	if r.Start < r.End {
		out = append(out, r)
	}
	return out
}

// intersect returns the parts of the sorted, disjoint ranges in rs that
// fall inside r.
func intersect(r Range, rs []Range) []Range {
	var out []Range
	i := sort.Search(len(rs), func(i int) bool { return rs[i].End > r.Start })
	for ; i < len(rs) && rs[i].Start < r.End; i++ {
		out = append(out, Range{max(r.Start, rs[i].Start), min(r.End, rs[i].End)})
	}
	return out
}
