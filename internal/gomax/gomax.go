// Package gomax fits the Go scheduler's parallelism to the agent's work.
//
// An idle agent's work is a stream of tiny tasks: a gossip probe, a raft
// heartbeat, a load sample, each a few microseconds of CPU. With several
// Ps the scheduler wakes a second thread to look for work at each of them
// and lets it spin before it sleeps again; on a virtual machine, where
// every sleep and wake-up is an exit to the hypervisor, that costs more
// than the work (`bench scale`: an idle follower 18-22 ms of CPU a second
// with two Ps, 13 with one). Moving a process is the opposite: image
// pages to read, encrypt, send, decrypt and copy in, as fast as the cores
// allow.
//
// So, once Start is called, the process runs with one P, and widens to
// every P while bytes flow fast: the transport reports each message's size
// (Add), and a second with at least Threshold bytes keeps the process wide
// for the next second. The switch costs a stop of the world (tens of
// microseconds), once a second at most while busy and never while idle.
package gomax

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Threshold is the traffic in one Window that makes the process wide.
const Threshold = 1 << 20

// Window is how long the process stays wide after a busy second.
const Window = time.Second

var (
	on    atomic.Bool
	wideN int // Ps when wide

	wide  atomic.Bool
	bytes atomic.Int64 // bytes since since
	since atomic.Int64 // start of the window, unix nanoseconds

	mu sync.Mutex // serializes the switches
)

// Start makes the process narrow (one P), to widen to n Ps while busy.
// n <= 1 leaves the scheduler alone.
func Start(n int) {
	if n <= 1 {
		return
	}
	mu.Lock()
	defer mu.Unlock()
	wideN = n
	since.Store(time.Now().UnixNano())
	runtime.GOMAXPROCS(1)
	on.Store(true)
}

// Add counts n bytes of traffic.
func Add(n int) {
	if !on.Load() {
		return
	}
	total := bytes.Add(int64(n))
	if wide.Load() || total < Threshold {
		return
	}
	now := time.Now().UnixNano()
	if now-since.Load() > int64(Window) {
		// The bytes counted were spread over more than a window: start
		// a new one with this message.
		since.Store(now)
		bytes.Store(int64(n))
		if n < Threshold {
			return
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if !wide.Load() {
		wide.Store(true)
		runtime.GOMAXPROCS(wideN)
		time.AfterFunc(Window, check)
	}
}

// check narrows the process again after a window with less traffic.
func check() {
	mu.Lock()
	defer mu.Unlock()
	if bytes.Swap(0) >= Threshold {
		time.AfterFunc(Window, check)
		return
	}
	since.Store(time.Now().UnixNano())
	wide.Store(false)
	runtime.GOMAXPROCS(1)
}

// Wide reports whether the process runs with every P now.
func Wide() bool { return wide.Load() }
