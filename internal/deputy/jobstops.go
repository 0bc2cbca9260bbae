package deputy

import "sync"

// jobStops mirrors the stops of an --np job in its launcher, as a shell
// sees a job of several processes: the job is stopped once every
// instance that has not ended is stopped, and then the launcher stops
// itself (SIGSTOP), so that its shell reports the job stopped and `fg`
// or `bg` (SIGCONT to the launcher, passed on to every instance) goes on
// with it. The pure part: which event stops the job.
type jobStops struct {
	mu      sync.Mutex
	stopped []bool // by rank
	ended   []bool
	halted  bool // the job is stopped (the launcher was told to stop)
}

func newJobStops(k int) *jobStops {
	return &jobStops{stopped: make([]bool, k), ended: make([]bool, k)}
}

// stop records that rank stopped; it reports whether the job has just
// become stopped.
func (j *jobStops) stop(rank int) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.stopped[rank] = true
	return j.settleLocked()
}

// cont records that rank was continued.
func (j *jobStops) cont(rank int) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.stopped[rank] = false
	j.halted = false
}

// end records that rank ended; it reports whether the job has just
// become stopped (the instances left are all stopped).
func (j *jobStops) end(rank int) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.ended[rank] = true
	return j.settleLocked()
}

// settleLocked reports whether the job has just become stopped: some
// instance is left, every one left is stopped, and it was not stopped
// already.
func (j *jobStops) settleLocked() bool {
	left := false
	for r := range j.stopped {
		if j.ended[r] {
			continue
		}
		if !j.stopped[r] {
			return false
		}
		left = true
	}
	if !left || j.halted {
		return false
	}
	j.halted = true
	return true
}
