package checkpoint

import (
	"bytes"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// stageFrom streams pc into a staged restore as live migration does: the
// layout's segments, then rounds of updated ranges; then freezes, and
// finishes the restore with the image, its mappings that are the same as
// the layout's emptied and their fresh ranges written instead. It
// returns the restored process (running) and what was sent frozen.
func stageFrom(t *testing.T, pc *PreCopier, stub string, o RestoreOptions, rounds int) (*Process, *Restored, int64) {
	t.Helper()
	layout := pc.Layout()
	st, err := Stage(pc.Pid(), layout, stub, o)
	if err != nil {
		t.Fatal(err)
	}
	if err := pc.Segments(st.Write); err != nil {
		t.Fatal(err)
	}
	writeRounds(t, pc, st, rounds)
	p, img, fst, err := pc.Finish()
	if err != nil {
		t.Fatal(err)
	}
	sort.Slice(fst.Fresh, func(i, j int) bool { return fst.Fresh[i].Start < fst.Fresh[j].Start })
	var frozen int64
	skel := *img
	skel.Mappings = append([]Mapping(nil), img.Mappings...)
	for i := range skel.Mappings {
		m := &skel.Mappings[i]
		same := false
		for j := range layout {
			same = same || SameMapping(m, &layout[j])
		}
		if !same {
			frozen += int64(len(m.Data))
			continue
		}
		for _, f := range intersect(Range{m.Start, m.End}, fst.Fresh) {
			st.Write(f.Start, m.Data[f.Start-m.Start:f.End-m.Start])
			frozen += int64(f.Size())
		}
		m.Data = nil
	}
	res, err := st.Finish(&skel, o)
	if err != nil {
		p.Resume()
		t.Fatal(err)
	}
	return p, res, frozen
}

// writeRounds runs rounds of pc, writing what each updated into st.
func writeRounds(t *testing.T, pc *PreCopier, st *Staged, rounds int) {
	t.Helper()
	for i := 0; i < rounds; i++ {
		if _, err := pc.Round(); err != nil {
			t.Fatal(err)
		}
		for _, r := range pc.Updated() {
			b, err := pc.Data(r)
			if err != nil {
				t.Fatal(err)
			}
			if err := st.Write(r.Start, b); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// stageStream is stageFrom for a streaming pre-copy (PreCopyStream),
// which it starts on the frozen p: every part is written into the staged
// process as it comes, and the fresh ranges after the freeze in the
// engine's order, from FreshData. As a migration does, it leaves out
// pages of zeros in anonymous memory (fresh there, and zero), so that
// some pages come first in a later round.
func stageStream(t *testing.T, p *Process, stub string, o RestoreOptions, rounds int) (*Process, *Restored, int64) {
	t.Helper()
	var st *Staged
	var layout []Mapping
	pc, err := p.PreCopyStream(func(l []Mapping) (err error) {
		layout = l
		if st, err = Stage(p.Pid(), layout, stub, o); err != nil {
			return err
		}
		if st.FillErr() != nil || st.fill == nil {
			t.Errorf("staged without a userfaultfd: %v", st.FillErr())
		}
		return nil
	}, func(start uint64, data []byte) error {
		i := sort.Search(len(layout), func(i int) bool { return layout[i].End > start })
		if !fillable(&layout[i]) {
			return st.Write(start, data)
		}
		zero := make([]byte, pageSize)
		for off := 0; off < len(data); off += pageSize {
			if pg := data[off : off+pageSize]; !bytes.Equal(pg, zero) {
				if err := st.Write(start+uint64(off), pg); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if err := pc.Segments(st.Write); err == nil {
		t.Fatal("a streaming pre-copy gave its segments")
	}
	writeRounds(t, pc, st, rounds)
	fp, img, fst, err := pc.Finish()
	if err != nil {
		t.Fatal(err)
	}
	if len(fst.Fresh) != len(fst.FreshData) {
		t.Fatalf("%d fresh ranges, %d with data", len(fst.Fresh), len(fst.FreshData))
	}
	var frozen int64
	for i, f := range fst.Fresh {
		if err := st.Write(f.Start, fst.FreshData[i]); err != nil {
			t.Fatal(err)
		}
		frozen += int64(f.Size())
	}
	for _, m := range img.Mappings {
		frozen += int64(len(m.Data))
	}
	res, err := st.Finish(img, o)
	if err != nil {
		fp.Resume()
		t.Fatal(err)
	}
	return fp, res, frozen
}

// TestStagedRestore moves the heap program (64 MiB checksummed while it
// changes) and a counter on a pipe by a staged restore fed as a
// migration feeds it: the process goes on where it was, with its pid.
func TestStagedRestore(t *testing.T) {
	needTracing(t)
	stub := buildC(t, "stub")
	for _, stream := range []bool{false, true} {
		t.Run(map[bool]string{false: "kept", true: "streamed"}[stream], func(t *testing.T) {
			stagedCounter(t, stub, stream)
		})
	}
}

func stagedCounter(t *testing.T, stub string, stream bool) {
	cmd, old, _, p := frozenCounter(t)
	r2, w2 := pipe(t)
	o := RestoreOptions{Files: nullStdio(t, w2), AnyPid: true, Hold: true}
	var fp *Process
	var res *Restored
	var frozen int64
	if stream {
		fp, res, frozen = stageStream(t, p, stub, o, 2)
	} else {
		pc, err := p.PreCopy()
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		fp, res, frozen = stageFrom(t, pc, stub, o, 2)
	}
	fp.Kill()
	cmd.Wait()
	if err := res.Release(); err != nil {
		t.Fatal(err)
	}
	defer reap(t, res.Process)
	w2.Close()
	t.Logf("counter: %d bytes sent frozen", frozen)
	lines := old.all(t)
	checkCount(t, append(lines, readFrom(r2).wait(t, 10)...))
	if frozen > 1<<20 {
		t.Errorf("%d bytes sent frozen for a counter", frozen)
	}
}

// TestStagedRestoreHeap moves the heap program: its 65 MiB checksummed
// every 20 ms must give the same sums after the staged restore.
func TestStagedRestoreHeap(t *testing.T) {
	needTracing(t)
	stub, heap := buildC(t, "stub"), buildC(t, "heap")
	for _, stream := range []bool{false, true} {
		t.Run(map[bool]string{false: "kept", true: "streamed"}[stream], func(t *testing.T) {
			stagedHeap(t, stub, heap, stream)
		})
	}
}

func stagedHeap(t *testing.T, stub, heap string, stream bool) {
	out := filepath.Join(t.TempDir(), "out")
	cmd, _ := start(t, heap, out)
	before := waitLines(t, out, 2)
	p, err := Freeze(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	var fp *Process
	var res *Restored
	var frozen int64
	if stream {
		fp, res, frozen = stageStream(t, p, stub, RestoreOptions{AnyPid: true}, 1)
	} else {
		pc, err := p.PreCopy()
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		fp, res, frozen = stageFrom(t, pc, stub, RestoreOptions{AnyPid: true}, 1)
	}
	fp.Kill()
	cmd.Wait()
	defer reap(t, res.Process)
	n := len(readLines(out))
	after := waitLines(t, out, n+3)
	t.Logf("heap: %d bytes sent frozen", frozen)
	sums := func(l string) string { return l[strings.IndexByte(l, ' '):] }
	for _, l := range after[n:] {
		if sums(l) != sums(before[0]) {
			t.Fatalf("after the staged restore: %q, before: %q", l, before[0])
		}
	}
}
