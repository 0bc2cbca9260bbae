package gomax

import (
	"runtime"
	"testing"
	"time"
)

func TestNarrowWidenNarrow(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	Start(4)
	defer on.Store(false)
	if n := runtime.GOMAXPROCS(0); n != 1 || Wide() {
		t.Fatalf("after Start: %d Ps, wide %v; want 1, narrow", n, Wide())
	}
	// Small messages spread over more than a window never widen.
	for range 3 {
		Add(Threshold / 2)
		since.Add(-int64(2 * Window))
	}
	if Wide() {
		t.Fatal("half a threshold a window widened the process")
	}
	// A busy window widens it at once.
	Add(Threshold / 2)
	Add(Threshold / 2)
	if n := runtime.GOMAXPROCS(0); n != 4 || !Wide() {
		t.Fatalf("after a busy window: %d Ps, wide %v; want 4, wide", n, Wide())
	}
	// A quiet window narrows it again.
	deadline := time.Now().Add(10 * Window)
	for Wide() && time.Now().Before(deadline) {
		time.Sleep(Window / 10)
	}
	if n := runtime.GOMAXPROCS(0); n != 1 || Wide() {
		t.Fatalf("after a quiet window: %d Ps, wide %v; want 1, narrow", n, Wide())
	}
}

func TestStartOneLeavesTheSchedulerAlone(t *testing.T) {
	before := runtime.GOMAXPROCS(0)
	Start(1)
	if on.Load() || runtime.GOMAXPROCS(0) != before {
		t.Fatal("Start(1) changed the scheduler")
	}
}
