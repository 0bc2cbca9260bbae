package checkpoint

import (
	"errors"
	"fmt"
	"sort"
)

// Streaming a pre-copy: a caller that sends memory to another node while
// the process runs (live migration) sends the Layout and the Segments of
// round 0, then what each Round updated (Updated, Data); at the freeze,
// for each mapping of the image that is the same as one of the layout
// (SameMapping), only FinishStats.Fresh; any other mapping whole. The
// receiving side builds the process with Stage, Staged.Write and
// Staged.Finish (restore_staged.go).

// Layout is the process's address space when round 0 copied it: every
// mapping of /proc/PID/maps, with the contents of the [vdso] (to compare
// at the target) and no other data.
func (c *PreCopier) Layout() []Mapping {
	out := make([]Mapping, len(c.layout))
	for i, m := range c.layout {
		if m.Kind != KindVDSO {
			m.Data = nil
		}
		out[i] = m
	}
	return out
}

// Pid is the pre-copied process.
func (c *PreCopier) Pid() int { return c.pid }

// Segments calls f with each part of memory that round 0 copied (a
// private mapping of the layout, whole), in address order; f must not
// keep data past the next Round. Not for a streaming pre-copy.
func (c *PreCopier) Segments(f func(start uint64, data []byte) error) error {
	if c.stream {
		return errors.New("checkpoint: a streaming pre-copy keeps no segments")
	}
	for _, s := range c.segs {
		if err := f(s.start, s.data); err != nil {
			return err
		}
	}
	return nil
}

// Updated lists the ranges the last Round copied again (each inside one
// segment); Data gives their bytes.
func (c *PreCopier) Updated() []Range { return c.updated }

// Data returns the pre-copied bytes of r, which must lie inside one
// segment (a range of Updated), until the next Round or Finish. (After
// Finish the image's mappings hold the memory, Fresh ranges included.)
// A streaming pre-copy reads them now, into a buffer the next call of
// Data reuses.
func (c *PreCopier) Data(r Range) ([]byte, error) {
	i := sort.Search(len(c.segs), func(i int) bool { return c.segs[i].end > r.Start })
	if i == len(c.segs) || c.segs[i].start > r.Start || c.segs[i].end < r.End {
		return nil, fmt.Errorf("checkpoint: %#x-%#x is not inside one pre-copied segment", r.Start, r.End)
	}
	if c.stream {
		if c.mem == nil {
			return nil, errors.New("checkpoint: Data before a Round")
		}
		b := c.scratch(r.Size())
		if err := readMemory(c.pid, c.mem, b, r.Start, true); err != nil {
			c.stale = append(c.stale, r) // read again at the freeze
		}
		return b, nil
	}
	s := &c.segs[i]
	return s.data[r.Start-s.start : r.End-s.start], nil
}

// SameMapping reports whether a and b map the same thing in the same way:
// range, protection, flags, kind, file and offset. A mapping of the
// image that is the same as one of the layout need not be mapped again
// at the target: its pages are there, but for what changed.
func SameMapping(a, b *Mapping) bool {
	return a.Start == b.Start && a.End == b.End && a.Prot == b.Prot && a.Flags == b.Flags &&
		a.Kind == b.Kind && a.Path == b.Path && a.Offset == b.Offset
}
