package checkpoint

import (
	"bytes"
	"testing"
)

func TestFillerSpan(t *testing.T) {
	f := &filler{ranges: []Range{{0x1000, 0x3000}, {0x5000, 0x6000}}}
	for _, tc := range []struct {
		addr uint64
		n    int
		k    int
		in   bool
	}{
		{0x0, 0x1000, 0x1000, false},   // before every range
		{0x0, 0x4000, 0x1000, false},   // up to the first
		{0x1000, 0x1000, 0x1000, true}, // inside
		{0x2000, 0x3000, 0x1000, true}, // out of the first
		{0x3000, 0x3000, 0x2000, false},
		{0x5000, 0x1000, 0x1000, true},
		{0x6000, 0x1000, 0x1000, false}, // after every range
	} {
		if k, in := f.span(tc.addr, tc.n); k != tc.k || in != tc.in {
			t.Errorf("span(%#x, %#x) = %#x, %v; want %#x, %v", tc.addr, tc.n, k, in, tc.k, tc.in)
		}
	}
}

// TestFillerRewrite writes a range of anonymous memory into a staged
// process whose middle pages are there already: the missing pages go by
// UFFDIO_COPY, the others by process_vm_writev, and all of it lands.
func TestFillerRewrite(t *testing.T) {
	needTracing(t)
	stub := buildC(t, "stub")
	_, _, _, p := frozenCounter(t)
	var st *Staged
	var anon *Mapping
	pc, err := p.PreCopyStream(func(layout []Mapping) (err error) {
		for i := range layout {
			if m := &layout[i]; fillable(m) && m.Size() >= 4*pageSize && m.Prot&ProtWrite != 0 {
				anon = m
				break
			}
		}
		st, err = Stage(p.Pid(), layout, stub, RestoreOptions{AnyPid: true})
		return err
	}, func(uint64, []byte) error { return nil }) // nothing written yet
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		st.Abort()
		if fp, _, _, err := pc.Finish(); err == nil {
			fp.Resume()
		}
		pc.Close()
	}()
	if anon == nil || st.fill == nil {
		t.Fatalf("no anonymous mapping of 4 pages (%v) or no filler (%v)", anon, st.FillErr())
	}
	a := anon.Start
	if err := st.Write(a+pageSize, bytes.Repeat([]byte{1}, 2*pageSize)); err != nil {
		t.Fatal(err)
	}
	want := bytes.Repeat([]byte{2}, 4*pageSize)
	if err := st.Write(a, want); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(want))
	if _, err := st.r.mem.ReadAt(got, int64(a)); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("the staged process holds %v..., want 2s", got[:8])
	}
}
