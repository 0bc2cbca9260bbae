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
