package checkpoint

import (
	"bytes"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startDirtier runs testdata/dirtier with mib MiB, writing per pages every
// 10 ms, and returns the command, its stdout and the buffer and quiet
// area addresses.
func startDirtier(t testing.TB, mib, per int) (pid int, stdout string, buf, quiet Range) {
	t.Helper()
	cmd, stdout := start(t, buildC(t, "dirtier"), strconv.Itoa(mib), strconv.Itoa(per))
	f := strings.Fields(waitLines(t, stdout, 1)[0])
	if len(f) != 4 || f[0] != "ready" {
		t.Fatalf("dirtier said %q", f)
	}
	b, _ := strconv.ParseUint(strings.TrimPrefix(f[1], "0x"), 16, 64)
	q, _ := strconv.ParseUint(strings.TrimPrefix(f[2], "0x"), 16, 64)
	return cmd.Process.Pid, stdout, Range{b, b + uint64(mib)<<20}, Range{q, q + 1<<20}
}

// askChecksum sends SIGUSR1 and returns the "ok COUNTER" answer's counter.
func askChecksum(t testing.TB, pid int, stdout string) uint64 {
	t.Helper()
	n := len(readLines(stdout))
	if err := syscall.Kill(pid, syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	l := waitLines(t, stdout, n+1)[n]
	f := strings.Fields(l)
	if f[0] != "ok" {
		t.Fatalf("checksum: %q", l)
	}
	c, _ := strconv.ParseUint(f[1], 10, 64)
	return c
}

func overlaps(rs []Range, r Range) bool {
	for _, x := range rs {
		if x.Start < r.End && r.Start < x.End {
			return true
		}
	}
	return false
}

func TestTrackDirty(t *testing.T) {
	needTracing(t)
	pid, stdout, buf, quiet := startDirtier(t, 64, 50)
	p, err := Freeze(pid)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := p.TrackDirty()
	if err != nil {
		p.Resume()
		t.Fatal(err)
	}
	defer tr.Close()
	// The userfaultfd must not stay in the process.
	ds, err := tr.Dirty()
	if err != nil {
		t.Fatal(err)
	}
	if len(ds.Written) != 0 {
		t.Errorf("frozen process has written pages: %v", ds.Written)
	}
	if err := p.Resume(); err != nil {
		t.Fatal(err)
	}
	if err := Check(pid); err != nil {
		t.Fatalf("Check after tracking: %v", err)
	}
	for round := range 5 {
		time.Sleep(50 * time.Millisecond)
		t0 := time.Now()
		ds, err := tr.Dirty()
		if err != nil {
			t.Fatal(err)
		}
		el := time.Since(t0)
		var in, total uint64
		for _, r := range ds.Written {
			total += r.Size()
			for _, x := range intersect(buf, []Range{r}) {
				in += x.Size()
			}
		}
		t.Logf("round %d: %d ranges, %d KiB written (%d KiB in the buffer), scan %v, untracked %v, changed %v",
			round, len(ds.Written), total>>10, in>>10, el, ds.Untracked, ds.MapsChanged)
		if in == 0 {
			t.Errorf("round %d: no written page reported in the buffer", round)
		}
		if overlaps(ds.Written, quiet) {
			t.Errorf("round %d: quiet area %#x-%#x reported written", round, quiet.Start, quiet.End)
		}
		if overlaps(ds.Untracked, buf) || overlaps(ds.Untracked, quiet) {
			t.Errorf("round %d: buffer untracked: %v", round, ds.Untracked)
		}
	}
	// A mapping made now is not tracked: Dirty says so.
	extra := growDirtier(t, pid, stdout)
	ds, err = tr.Dirty()
	if err != nil {
		t.Fatal(err)
	}
	if !ds.MapsChanged || !overlaps(ds.Untracked, extra) || overlaps(ds.Written, extra) {
		t.Errorf("new mapping %#x-%#x: changed %v, untracked %v", extra.Start, extra.End, ds.MapsChanged, ds.Untracked)
	}
	// The kernel counts the pages MADV_DONTNEED emptied as written (their
	// protection went with them); the untouched half stays quiet.
	half := Range{quiet.Start, quiet.Start + 1<<19}
	if overlaps(ds.Written, half) {
		t.Errorf("quiet area %#x-%#x reported written: %v", half.Start, half.End, ds.Written)
	}
	if w := intersect(Range{half.End, quiet.End}, ds.Written); len(w) != 1 || w[0] != (Range{half.End, quiet.End}) {
		t.Errorf("emptied area %#x-%#x not reported written: %v", half.End, quiet.End, w)
	}
	if ds, err = tr.Dirty(); err != nil || ds.MapsChanged {
		t.Errorf("maps changed again: %v %v", ds.MapsChanged, err)
	}
}

// growDirtier makes dirtier map 1 MiB more and returns it.
func growDirtier(t testing.TB, pid int, stdout string) Range {
	t.Helper()
	n := len(readLines(stdout))
	if err := syscall.Kill(pid, syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(waitLines(t, stdout, n+1)[n])
	if len(f) != 2 || f[0] != "mapped" {
		t.Fatalf("dirtier said %q", f)
	}
	a, _ := strconv.ParseUint(strings.TrimPrefix(f[1], "0x"), 16, 64)
	return Range{a, a + 1<<20}
}

func TestRangeHelpers(t *testing.T) {
	cut := []Range{{10, 20}, {30, 40}}
	if got := subtract(Range{0, 50}, cut); !equalRanges(got, []Range{{0, 10}, {20, 30}, {40, 50}}) {
		t.Errorf("subtract: %v", got)
	}
	if got := subtract(Range{12, 18}, cut); len(got) != 0 {
		t.Errorf("subtract inside: %v", got)
	}
	if got := intersect(Range{15, 35}, cut); !equalRanges(got, []Range{{15, 20}, {30, 35}}) {
		t.Errorf("intersect: %v", got)
	}
}

func equalRanges(a, b []Range) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestPreCopyMigrate(t *testing.T) {
	needTracing(t)
	stub := buildC(t, "stub")
	for _, per := range []int{200, 0} {
		t.Run("per10ms="+strconv.Itoa(per), func(t *testing.T) { preCopyMigrate(t, stub, per) })
	}
}

func preCopyMigrate(t *testing.T, stub string, per int) {
	pid, stdout, _, _ := startDirtier(t, 64, per)
	c0 := askChecksum(t, pid, stdout)
	p, err := Freeze(pid)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := p.PreCopy()
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		time.Sleep(30 * time.Millisecond)
		n, err := pc.Round()
		if err != nil {
			pc.Close()
			t.Fatal(err)
		}
		t.Logf("round %d: %d KiB", pc.Rounds-1, n>>10)
	}
	// An untracked mapping, copied at the freeze, and an area emptied by
	// MADV_DONTNEED (the checksum wants zeros there).
	growDirtier(t, pid, stdout)
	time.Sleep(25 * time.Millisecond)
	t0 := time.Now()
	fp, img, st, err := pc.Finish()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("freeze+final round %v: %+v", time.Since(t0), *st)

	// A plain Dump of the same frozen process has the same memory (but
	// for the rseq area, which the kernel rewrites after injected calls).
	plain, err := fp.Dump()
	if err != nil {
		t.Fatal(err)
	}
	sameMemory(t, img, plain)
	if err := fp.Kill(); err != nil {
		t.Fatal(err)
	}
	pc.Close()
	var b bytes.Buffer
	if err := img.Encode(&b); err != nil {
		t.Fatal(err)
	}
	img2, err := Decode(&b)
	if err != nil {
		t.Fatal(err)
	}
	np, err := Restore(img2, stub)
	if err != nil {
		t.Fatal(err)
	}
	defer reap(t, np)
	c1 := askChecksum(t, np.Pid, stdout)
	time.Sleep(50 * time.Millisecond)
	c2 := askChecksum(t, np.Pid, stdout)
	t.Logf("counter %d before, %d and %d after restore", c0, c1, c2)
	if c1 <= c0 || c2 <= c1 {
		t.Errorf("counter does not go on: %d, %d, %d", c0, c1, c2)
	}
}

// sameMemory checks that two images of one frozen process have the same
// mappings and contents, the rseq area aside.
func sameMemory(t *testing.T, a, b *Image) {
	t.Helper()
	if len(a.Mappings) != len(b.Mappings) {
		t.Fatalf("%d mappings, plain dump %d", len(a.Mappings), len(b.Mappings))
	}
	rseq := Range{a.Rseq.Ptr, a.Rseq.Ptr + uint64(a.Rseq.Size)}
	for i := range a.Mappings {
		ma, mb := &a.Mappings[i], &b.Mappings[i]
		if ma.Start != mb.Start || ma.End != mb.End || ma.Kind != mb.Kind || len(ma.Data) != len(mb.Data) {
			t.Fatalf("mapping %d: %#x-%#x %v, plain %#x-%#x %v", i, ma.Start, ma.End, ma.Kind, mb.Start, mb.End, mb.Kind)
		}
		for off := 0; off < len(ma.Data); off += pageSize {
			end := min(off+pageSize, len(ma.Data))
			if bytes.Equal(ma.Data[off:end], mb.Data[off:end]) {
				continue
			}
			pg := Range{ma.Start + uint64(off), ma.Start + uint64(end)}
			if overlaps([]Range{rseq}, pg) {
				continue
			}
			t.Errorf("page %#x of %v differs from the plain dump", pg.Start, ma.Kind)
		}
	}
}
