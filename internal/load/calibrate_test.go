package load

import (
	"math"
	"testing"
	"time"
)

func TestCalibrate(t *testing.T) {
	if testing.Short() {
		t.Skip("takes about 50 ms of CPU")
	}
	s := Calibrate()
	// Generous bounds: the race detector and busy CI machines slow the
	// loop down, but it must stay a plausible figure.
	if s < 1 || s > 100_000 {
		t.Errorf("Calibrate() = %d", s)
	}
	t.Logf("Calibrate() = %d", s)
}

func TestSpeedOf(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want uint32
	}{
		{calibrateRef, 1000},
		{calibrateRef / 2, 2000},
		{calibrateRef * 4, 250},
		{time.Hour, 1}, // never 0
		{0, math.MaxUint32},
		{-time.Second, math.MaxUint32},
	}
	for _, tt := range tests {
		if got := speedOf(tt.d); got != tt.want {
			t.Errorf("speedOf(%v) = %d, want %d", tt.d, got, tt.want)
		}
	}
}

func BenchmarkCalibrate(b *testing.B) {
	var s uint32
	for b.Loop() {
		s = Calibrate()
	}
	b.ReportMetric(float64(s), "speed")
}

// BenchmarkCalibrateLoop times one run of the calibration workload; its
// ns/op on the reference machine is calibrateRef.
func BenchmarkCalibrateLoop(b *testing.B) {
	for b.Loop() {
		calibrateSink += calibrateLoop(calibrateIters)
	}
}
