package checkpoint

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"time"
)

// segmentPart is the unit in which round 0 reads a mapping and hands it
// to PreCopyWith's segment callback.
const segmentPart = 32 << 20

// streamPart is the unit in which a streaming pre-copy (PreCopyStream)
// reads memory and hands it out: small enough to stay in the CPU's
// caches while the caller encodes it.
const streamPart = 1 << 20

// segment is memory copied by a pre-copy round: the contents of
// [start, end) as last read (none in a streaming pre-copy).
type segment struct {
	start, end uint64
	data       []byte
}

// PreCopier copies the memory of a running process in rounds before the
// final freeze, so that the freeze copies only what changed meanwhile.
// Round 0 (in PreCopy) copies every private mapping; each Round copies the
// pages written since the previous one; Finish freezes the process, copies
// the last written pages and what is not tracked, and dumps the rest of
// the state. Methods must not be called concurrently.
type PreCopier struct {
	pid   int
	opt   Options // of the Process it came from, for Finish's freeze
	t     *Tracker
	segs  []segment // sorted, disjoint
	stale []Range   // reads that failed while the process ran: read again at Finish
	done  bool
	// For a caller that streams the copy (precopy_stream.go): the maps
	// at round 0 and the ranges the last Round copied.
	layout  []Mapping
	updated []Range
	// PreCopyWith's callbacks.
	onLayout  func([]Mapping) error
	onSegment func(start uint64, data []byte) error
	// closed is closed when the tracker, closed in the background by
	// Finish, is closed.
	closed chan struct{}
	// stream: the memory is handed out and not kept (PreCopyStream);
	// buf is where it is read, mem the process's memory for Data.
	stream bool
	buf    []byte
	mem    *os.File

	// smaps is /proc/PID/smaps as read after the last Round's scan, and
	// lck the VmLck line of status then (see Finish).
	smaps, lck string

	// Rounds counts the rounds done, round 0 included; Copied is the
	// bytes copied by them.
	Rounds int
	Copied int64
	// LastScan is how long the last Round's Dirty scan took.
	LastScan time.Duration
}

// PreCopy starts write tracking on the frozen process (TrackDirty),
// resumes it (p is spent), and copies all its private memory while it
// runs (round 0).
func (p *Process) PreCopy() (*PreCopier, error) { return p.PreCopyWith(nil, nil) }

// PreCopyWith is PreCopy that hands round 0 out as it goes: layout is
// called with the Layout before any memory is copied, segment with each
// part of memory as soon as it is copied (in address order; its data
// stays valid until the first Round). An error from either ends the
// pre-copy (the process runs on).
func (p *Process) PreCopyWith(layout func([]Mapping) error, segment func(start uint64, data []byte) error) (*PreCopier, error) {
	return p.preCopy(layout, segment, false)
}

// PreCopyStream is PreCopyWith for a caller that sends the memory on as
// it comes and keeps none, so that neither node holds a second copy of
// the process: segment's data is valid only until it returns, Data's
// until the next call of Data or Round. Finish's image leaves out the
// memory of the mappings that are the same as the layout's (SameMapping)
// and were pre-copied: what changed in them since is in
// FinishStats.Fresh, with its bytes in FinishStats.FreshData.
func (p *Process) PreCopyStream(layout func([]Mapping) error, segment func(start uint64, data []byte) error) (*PreCopier, error) {
	return p.preCopy(layout, segment, true)
}

func (p *Process) preCopy(layout func([]Mapping) error, segment func(start uint64, data []byte) error, stream bool) (*PreCopier, error) {
	t, err := p.TrackDirty()
	if err != nil {
		p.Resume()
		return nil, err
	}
	if err := p.Resume(); err != nil {
		t.Close()
		return nil, err
	}
	c := &PreCopier{pid: p.pid, opt: p.opt, t: t, onLayout: layout, onSegment: segment, stream: stream}
	if err := c.round0(); err != nil {
		t.Close()
		return nil, err
	}
	return c, nil
}

func (c *PreCopier) round0() error {
	text, err := os.ReadFile("/proc/" + strconv.Itoa(c.pid) + "/maps")
	if err != nil {
		return err
	}
	maps, err := parseMaps(string(text))
	if err != nil {
		return err
	}
	mem, err := os.Open("/proc/" + strconv.Itoa(c.pid) + "/mem")
	if err != nil {
		return err
	}
	defer mem.Close()
	c.layout = maps
	for i := range maps {
		m := &maps[i]
		if m.Kind == KindVDSO {
			m.Data = make([]byte, m.Size())
			if err := readMemory(c.pid, mem, m.Data, m.Start, false); err != nil {
				return err
			}
		}
	}
	if c.onLayout != nil {
		if err := c.onLayout(c.Layout()); err != nil {
			return err
		}
	}
	for i := range maps {
		m := &maps[i]
		if !trackable(m) {
			continue
		}
		s := segment{start: m.Start, end: m.End}
		unit := uint64(streamPart)
		if !c.stream {
			s.data, unit = make([]byte, m.Size()), segmentPart
		}
		// In parts, handed out as they are read.
		for off := uint64(0); off < m.Size(); off += unit {
			var part []byte
			if c.stream {
				part = c.scratch(min(unit, m.Size()-off))
			} else {
				part = s.data[off:min(off+unit, m.Size())]
			}
			if err := readMemory(c.pid, mem, part, m.Start+off, m.Prot&ProtRead != 0); err != nil {
				c.stale = append(c.stale, Range{m.Start + off, m.Start + off + uint64(len(part))})
			}
			if c.onSegment != nil {
				if err := c.onSegment(m.Start+off, part); err != nil {
					return err
				}
			}
		}
		c.segs = append(c.segs, s)
		c.Copied += int64(m.Size())
	}
	c.Rounds = 1
	return nil
}

// Round copies the pages written since the previous round and returns
// how many bytes it copied.
func (c *PreCopier) Round() (int64, error) {
	if c.done {
		return 0, errors.New("checkpoint: pre-copy finished")
	}
	t0 := time.Now()
	ds, err := c.t.Dirty()
	if err != nil {
		return 0, err
	}
	c.LastScan = time.Since(t0)
	c.smaps, c.lck = readSmapsLck(c.pid)
	mem, err := os.Open("/proc/" + strconv.Itoa(c.pid) + "/mem")
	if err != nil {
		return 0, err
	}
	if c.stream { // read by Data
		c.closeMem()
		c.mem = mem
	} else {
		defer mem.Close()
	}
	var n int64
	c.updated = c.updated[:0]
	for _, r := range ds.Written {
		n += c.update(mem, r)
	}
	c.Rounds++
	c.Copied += n
	return n, nil
}

// update reads the parts of r that fall inside segments (streaming: lists
// them for Data, in parts); a failed read is remembered as stale.
func (c *PreCopier) update(mem *os.File, r Range) int64 {
	var n int64
	i := sort.Search(len(c.segs), func(i int) bool { return c.segs[i].end > r.Start })
	for ; i < len(c.segs) && c.segs[i].start < r.End; i++ {
		s := &c.segs[i]
		a, b := max(r.Start, s.start), min(r.End, s.end)
		if c.stream { // read by Data, in parts
			for ; a < b; a += min(b-a, streamPart) {
				c.updated = append(c.updated, Range{a, a + min(b-a, streamPart)})
			}
			n += int64(min(r.End, s.end) - max(r.Start, s.start))
			continue
		}
		if err := readMemory(c.pid, mem, s.data[a-s.start:b-s.start], a, true); err != nil {
			c.stale = append(c.stale, Range{a, b})
		}
		c.updated = append(c.updated, Range{a, b})
		n += int64(b - a)
	}
	return n
}

// FinishStats describes the final round.
type FinishStats struct {
	Written   int64 // bytes of pages written since the last round, read frozen
	Untracked int64 // bytes of untracked areas read frozen
	Zeroed    int64 // bytes of tracked pages found absent (zapped)
	// Fresh lists what was read (or zeroed) at the freeze: in a mapping
	// that one segment of round 0 covers, the image's memory differs
	// from the segments (as the Rounds last updated them) only there.
	Fresh []Range
	// FreshData holds the bytes of each Fresh range after a streaming
	// pre-copy (PreCopyStream), whose image leaves them out.
	FreshData [][]byte

	Stop, Scan, Dump time.Duration // Freeze, the final PAGEMAP_SCAN, the dump
}

// Finish freezes the process (FreezeWith, with the options of the Process
// that PreCopy came from), copies the last written pages and
// the untracked areas, and dumps it, memory coming from the pre-copied
// segments. The image is the one Dump would give. On success the process
// is still frozen: call Resume or Kill on the returned Process. On error
// the process is left running. Either way the tracking ends.
func (c *PreCopier) Finish() (*Process, *Image, *FinishStats, error) {
	if c.done {
		return nil, nil, nil, errors.New("checkpoint: pre-copy finished")
	}
	c.done = true
	// Closing the userfaultfd unprotects every page (tens of
	// milliseconds per GiB): not while the caller waits.
	defer func() {
		c.closed = make(chan struct{})
		go func() { c.t.Close(); close(c.closed) }()
	}()
	t0 := time.Now()
	p, err := FreezeWith(c.pid, c.opt)
	if err != nil {
		return nil, nil, nil, err
	}
	t1 := time.Now()
	ds, gone, tracked, err := c.t.dirty(true)
	if err != nil {
		p.Resume()
		return nil, nil, nil, err
	}
	t2 := time.Now()
	st := &FinishStats{Stop: t1.Sub(t0), Scan: t2.Sub(t1)}
	c.closeMem()
	// smaps costs about 15 ms a GiB of resident memory to read: the
	// copy read after the last Round serves while the mappings are the
	// same and no more or less memory is locked.
	if c.smaps != "" && !ds.MapsChanged && c.lck != "" && c.lck == statusLck(c.pid) {
		p.smaps = c.smaps
	}
	p.fill = func(m *Mapping, mem *os.File) error {
		if c.stream && c.staged(m) {
			return c.fillFresh(p.pid, m, mem, tracked, ds.Written, gone, st)
		}
		return c.fill(p.pid, m, mem, tracked, ds.Written, gone, st)
	}
	img, err := p.Dump()
	if err != nil {
		return nil, nil, nil, err
	}
	st.Dump = time.Since(t2)
	p.fill, p.smaps = nil, ""
	c.segs = nil
	return p, img, st, nil
}

// fill builds m.Data: from the segments where the range has been tracked
// all along, read from the process everywhere else; then the written
// pages are read, the stale ranges read again and the absent pages
// zeroed (anonymous) or read again (file-backed).
func (c *PreCopier) fill(pid int, m *Mapping, mem *os.File, tracked, written, gone []Range, st *FinishStats) error {
	r := Range{m.Start, m.End}
	read := func(a, b uint64) error {
		st.Fresh = append(st.Fresh, Range{a, b})
		return readMemory(pid, mem, m.Data[a-m.Start:b-m.Start], a, m.Prot&ProtRead != 0)
	}
	if !trackable(m) || c.stream {
		m.Data = make([]byte, m.Size())
		st.Untracked += int64(m.Size())
		if c.stream { // a mapping not staged: whole, and not Fresh
			return readMemory(pid, mem, m.Data, m.Start, m.Prot&ProtRead != 0)
		}
		return read(m.Start, m.End)
	}
	// Zero copy when one segment covers the whole mapping.
	i := sort.Search(len(c.segs), func(i int) bool { return c.segs[i].end > r.Start })
	if i < len(c.segs) && c.segs[i].start <= r.Start && c.segs[i].end >= r.End {
		s := &c.segs[i]
		m.Data = s.data[r.Start-s.start : r.End-s.start : r.End-s.start]
	} else {
		m.Data = make([]byte, m.Size())
		for ; i < len(c.segs) && c.segs[i].start < r.End; i++ {
			s := &c.segs[i]
			a, b := max(r.Start, s.start), min(r.End, s.end)
			copy(m.Data[a-m.Start:b-m.Start], s.data[a-s.start:b-s.start])
		}
	}
	// What the segments do not cover, or what is not tracked, is read now.
	var covered []Range
	for _, s := range c.segs {
		covered = append(covered, Range{s.start, s.end})
	}
	var have []Range
	for _, t := range intersect(r, tracked) {
		have = append(have, intersect(t, covered)...)
	}
	for _, u := range subtract(r, have) {
		if err := read(u.Start, u.End); err != nil {
			return fmt.Errorf("untracked %#x-%#x: %w", u.Start, u.End, err)
		}
		st.Untracked += int64(u.Size())
	}
	for _, w := range intersect(r, written) {
		if err := read(w.Start, w.End); err != nil {
			return fmt.Errorf("written %#x-%#x: %w", w.Start, w.End, err)
		}
		st.Written += int64(w.Size())
	}
	for _, s := range c.stale {
		if s.End <= r.Start || s.Start >= r.End {
			continue
		}
		a, b := max(r.Start, s.Start), min(r.End, s.End)
		if err := read(a, b); err != nil {
			return fmt.Errorf("stale %#x-%#x: %w", a, b, err)
		}
	}
	for _, g := range intersect(r, gone) {
		if m.Kind == KindFilePrivate {
			if err := read(g.Start, g.End); err != nil {
				return fmt.Errorf("absent %#x-%#x: %w", g.Start, g.End, err)
			}
		} else {
			clear(m.Data[g.Start-m.Start : g.End-m.Start])
			st.Fresh = append(st.Fresh, g)
		}
		st.Zeroed += int64(g.Size())
	}
	return nil
}

// Close ends the tracking without a final round or, after Finish, waits
// until the tracking has ended.
func (c *PreCopier) Close() error {
	c.done = true
	c.segs = nil
	c.closeMem()
	if c.closed != nil {
		<-c.closed
		return nil
	}
	return c.t.Close()
}

// staged reports whether m is the same as a mapping of the layout that
// round 0 pre-copied whole (one segment).
func (c *PreCopier) staged(m *Mapping) bool {
	i := sort.Search(len(c.layout), func(i int) bool { return c.layout[i].Start >= m.Start })
	if i == len(c.layout) || !SameMapping(&c.layout[i], m) {
		return false
	}
	j := sort.Search(len(c.segs), func(j int) bool { return c.segs[j].end > m.Start })
	return j < len(c.segs) && c.segs[j].start == m.Start && c.segs[j].end == m.End
}

// fillFresh is fill for a mapping that a streaming pre-copy has sent: m
// gets no Data; what the target does not have yet (not tracked all
// along, written since the last round, stale, absent) goes to st.Fresh
// and st.FreshData, in the order fill applies it.
func (c *PreCopier) fillFresh(pid int, m *Mapping, mem *os.File, tracked, written, gone []Range, st *FinishStats) error {
	r := Range{m.Start, m.End}
	m.Data = nil
	add := func(what string, g Range, zero bool) error {
		d := make([]byte, g.Size())
		if !zero {
			if err := readMemory(pid, mem, d, g.Start, m.Prot&ProtRead != 0); err != nil {
				return fmt.Errorf("%s %#x-%#x: %w", what, g.Start, g.End, err)
			}
		}
		st.Fresh = append(st.Fresh, g)
		st.FreshData = append(st.FreshData, d)
		return nil
	}
	for _, u := range subtract(r, intersect(r, tracked)) {
		if err := add("untracked", u, false); err != nil {
			return err
		}
		st.Untracked += int64(u.Size())
	}
	for _, w := range intersect(r, written) {
		if err := add("written", w, false); err != nil {
			return err
		}
		st.Written += int64(w.Size())
	}
	for _, s := range c.stale {
		if s.End > r.Start && s.Start < r.End {
			if err := add("stale", Range{max(r.Start, s.Start), min(r.End, s.End)}, false); err != nil {
				return err
			}
		}
	}
	for _, g := range intersect(r, gone) {
		if err := add("absent", g, m.Kind != KindFilePrivate); err != nil {
			return err
		}
		st.Zeroed += int64(g.Size())
	}
	return nil
}

// scratch returns c's reading buffer, n bytes long.
func (c *PreCopier) scratch(n uint64) []byte {
	if uint64(cap(c.buf)) < n {
		c.buf = make([]byte, n)
	}
	return c.buf[:n]
}

// closeMem closes the memory file a streaming pre-copy's Data reads.
func (c *PreCopier) closeMem() {
	if c.mem != nil {
		c.mem.Close()
		c.mem = nil
	}
}
