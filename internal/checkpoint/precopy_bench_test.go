package checkpoint

import (
	"testing"
	"time"
)

// BenchmarkPreCopyFreeze pre-copies a 1 GiB process that dirties about
// 10 MB/s (25 pages every 10 ms tick) in three rounds 100 ms apart, then
// freezes it for the final round. freeze-ms is the time from the stop to
// the image being complete (Finish: Freeze, last dirty pages, the rest of
// the dump), restore excluded; scan-ms/GiB is one Dirty scan of the
// tracked memory, per GiB; final-KiB the memory read while frozen.
func BenchmarkPreCopyFreeze(b *testing.B) {
	needTracing(b)
	const mib = 1024
	pid, stdout, _, _ := startDirtier(b, mib, 25)
	var freeze, scan time.Duration
	var final int64
	n := 0
	for b.Loop() {
		p, err := Freeze(pid)
		if err != nil {
			b.Fatal(err)
		}
		pc, err := p.PreCopy()
		if err != nil {
			b.Fatal(err)
		}
		for range 3 {
			time.Sleep(100 * time.Millisecond)
			if _, err := pc.Round(); err != nil {
				b.Fatal(err)
			}
			scan += pc.LastScan
		}
		t0 := time.Now()
		fp, img, st, err := pc.Finish()
		if err != nil {
			b.Fatal(err)
		}
		freeze += time.Since(t0)
		b.Logf("final round: %+v", *st)
		final += st.Written + st.Untracked
		_ = img
		if err := fp.Resume(); err != nil {
			b.Fatal(err)
		}
		pc.Close()
		n++
	}
	askChecksum(b, pid, stdout)
	b.ReportMetric(float64(freeze.Microseconds())/1e3/float64(n), "freeze-ms")
	b.ReportMetric(float64(scan.Microseconds())/1e3/float64(3*n)*1024/float64(mib), "scan-ms/GiB")
	b.ReportMetric(float64(final)/1024/float64(n), "final-KiB")
}

// BenchmarkStagedWrite is the target's side of a live migration: the
// pre-copy of a 256 MiB process written into a staged process, with
// UFFDIO_COPY (fill.go) and, for comparison, with process_vm_writev
// alone. GB/s counts the bytes written.
func BenchmarkStagedWrite(b *testing.B) {
	needTracing(b)
	stub := buildC(b, "stub")
	pid, _, _, _ := startDirtier(b, 256, 0)
	for _, uffd := range []bool{true, false} {
		b.Run(map[bool]string{true: "uffd", false: "writev"}[uffd], func(b *testing.B) {
			var written int64
			var spent time.Duration
			for b.Loop() {
				p, err := Freeze(pid)
				if err != nil {
					b.Fatal(err)
				}
				var st *Staged
				pc, err := p.PreCopyStream(func(layout []Mapping) (err error) {
					st, err = Stage(pid, layout, stub, RestoreOptions{AnyPid: true})
					if err == nil && !uffd {
						st.fill.close()
						st.fill = nil
					}
					return err
				}, func(start uint64, data []byte) error {
					t0 := time.Now()
					err := st.Write(start, data)
					spent += time.Since(t0)
					written += int64(len(data))
					return err
				})
				if err != nil {
					b.Fatal(err)
				}
				st.Abort()
				fp, _, _, err := pc.Finish()
				if err != nil {
					b.Fatal(err)
				}
				fp.Resume()
				pc.Close()
			}
			b.ReportMetric(float64(written)/spent.Seconds()/1e9, "GB/s")
		})
	}
}
