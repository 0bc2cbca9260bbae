package load

import (
	"math"
	"runtime"
	"time"
)

// Calibration workload. calibrateIters iterations of calibrateLoop take
// about 10 ms on the reference machine; five short runs cost a third of the
// CPU of three long ones (64 agents starting on one machine calibrate at
// once) and filter preemption at least as well.
const (
	calibrateIters = 1_360_000
	calibrateRuns  = 5

	// calibrateRef is the time, in nanoseconds, of one run of the
	// workload on the reference machine, which is given Speed 1000. The
	// reference machine is the one the package was developed on, a
	// 2-vCPU AMD EPYC cloud VM (Go 1.26, linux/amd64): the best of 3 runs
	// there took 49.9 to 50.5 ms for 6,800,000 iterations over several
	// trials (see BenchmarkCalibrateLoop), so 10 ms for the 1,360,000 here. Contemporary x86-64 and
	// arm64 cores should therefore score in the hundreds to low
	// thousands.
	// Changing the workload or this constant rescales every node's Speed,
	// so all nodes in a cluster must run the same version.
	calibrateRef = 10_000_000
)

// calibrateSink keeps the compiler from discarding the workload.
var calibrateSink uint64

// Calibrate measures the relative speed of one core of this machine by
// timing a short fixed CPU-bound loop of integer and floating-point work
// (about 10 ms on the reference machine), taking the best of 5 runs to
// filter out preemption. The result is 1000 × reference time / measured
// time: 1000 on the reference machine, 2000 on one twice as fast. It is at
// least 1. Calibrate takes about 50 ms of CPU on the reference machine; the
// agent calls it once, after start-up.
func Calibrate() uint32 {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	best := time.Duration(math.MaxInt64)
	for range calibrateRuns {
		start := time.Now()
		calibrateSink += calibrateLoop(calibrateIters)
		best = min(best, time.Since(start))
	}
	return speedOf(best)
}

// speedOf converts the best time of one run into a Speed.
func speedOf(d time.Duration) uint32 {
	if d <= 0 {
		d = 1
	}
	s := math.Round(1000 * calibrateRef / float64(d))
	return uint32(max(1, min(s, math.MaxUint32)))
}

// calibrateLoop runs n iterations of two dependent chains, an xorshift
// integer generator and a multiply-add floating-point recurrence, whose
// results feed each other so that neither can be hoisted or vectorised.
func calibrateLoop(n int) uint64 {
	x := uint64(0x9e3779b97f4a7c15)
	f := 1.0
	for i := 0; i < n; i++ {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		f = f*0.999999 + float64(x>>56)*1e-3
		x += uint64(f)
	}
	return x ^ math.Float64bits(f)
}
