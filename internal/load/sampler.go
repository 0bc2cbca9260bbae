package load

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Damping periods of Load1, Load5 and Load15.
var loadPeriods = [3]time.Duration{time.Minute, 5 * time.Minute, 15 * time.Minute}

// cgroupFS is where cgroup filesystems are mounted.
const cgroupFS = "/sys/fs/cgroup"

// A Sampler turns successive walks of a proc directory into load vectors.
// It keeps state between samples (per-process CPU times and the damped
// averages), so one Sampler should be used for the life of the agent.
//
// A Sampler is not safe for concurrent use: call Sample from one goroutine
// at a time.
type Sampler struct {
	procDir string
	scope   Scope
	root    int
	speed   uint32
	hz      float64 // clock ticks per second, the unit of CPU times in stat
	numCPU  int
	cgroups cgroupLimits

	// State carried from the previous sample.
	sampled bool
	last    time.Time
	load    [3]float64
	cpu     cpuAccount

	// Scratch space reused across samples.
	buf   []byte
	procs []procStat
}

// NewSampler returns a Sampler reading procDir, normally "/proc". root is
// the pid whose descendants count in ScopeDescendants (normally the agent's
// own, os.Getpid()); it is ignored in ScopeAll. speed is reported as
// Vector.Speed: the result of Calibrate or an operator's override; 0 is
// taken as 1.
//
// Cgroup limits are looked up through procDir/self/cgroup under
// /sys/fs/cgroup; when procDir has no self entry no limits apply.
func NewSampler(procDir string, scope Scope, root int, speed uint32) *Sampler {
	return &Sampler{
		procDir: procDir,
		scope:   scope,
		root:    root,
		speed:   max(speed, 1),
		hz:      float64(clockTicks()),
		numCPU:  runtime.NumCPU(),
		cgroups: findCgroups(procDir, cgroupFS),
	}
}

// Sample walks the proc directory once and returns the load vector as of
// now. Load1/5/15 and CPUUse are relative to the previous call: the first
// call seeds the averages with the current RunQueue and reports CPUUse 0,
// as does a call whose now is not after the previous one's.
//
// Processes that vanish during the walk are skipped. Sample fails only
// when the proc directory or its meminfo cannot be read.
func (s *Sampler) Sample(now time.Time) (Vector, error) {
	// Keep this goroutine on one thread so the thread reading its own
	// stat file can be recognised and left out of RunQueue.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	selfPID, selfTID := s.selfTask()

	if err := s.readProcs(); err != nil {
		return Vector{}, err
	}
	counted, root := s.procs, (*procStat)(nil)
	if s.scope == ScopeDescendants {
		counted, root = descendants(s.procs, s.root)
	}
	mem, err := s.readMeminfo()
	if err != nil {
		return Vector{}, err
	}

	v := Vector{
		RunQueue: s.runQueue(counted, selfPID, selfTID),
		Cores:    s.cores(),
		Speed:    s.speed,
		MemTotal: mem.total,
		MemFree:  mem.available,
		Procs:    uint32(len(counted)),
		Stamp:    now.UnixNano(),
	}
	if limit, usage, ok := s.cgroups.memLimit(); ok && limit < v.MemTotal {
		v.MemTotal = limit
		v.MemFree = min(v.MemFree, satSub(limit, usage))
	}

	// A clock that did not advance leaves all state as it was, so the
	// next sample covers the whole interval.
	dt := now.Sub(s.last)
	if !s.sampled || dt > 0 {
		busy := s.cpu.update(s.procs, counted, root)
		if s.sampled {
			v.CPUUse = min(1, float64(busy)/s.hz/dt.Seconds()/float64(v.Cores))
		}
		s.updateLoad(float64(v.RunQueue), dt)
		s.sampled, s.last = true, now
	}
	v.Load1, v.Load5, v.Load15 = s.load[0], s.load[1], s.load[2]
	return v, nil
}

// selfTask returns the pid and tid of the calling thread as procDir sees
// them (they differ from getpid/gettid when procDir belongs to another PID
// namespace), or zeros when procDir has no thread-self link.
func (s *Sampler) selfTask() (pid, tid int) {
	link, err := os.Readlink(filepath.Join(s.procDir, "thread-self"))
	if err != nil {
		return 0, 0
	}
	p, t, ok := strings.Cut(link, "/task/")
	if !ok {
		return 0, 0
	}
	pid, err1 := strconv.Atoi(p)
	tid, err2 := strconv.Atoi(t)
	if err1 != nil || err2 != nil {
		return 0, 0
	}
	return pid, tid
}

// readProcs fills s.procs with the stat of every process in procDir.
func (s *Sampler) readProcs() error {
	if s.scope == ScopeDescendants {
		return s.readTree()
	}
	d, err := os.Open(s.procDir)
	if err != nil {
		return fmt.Errorf("load: %w", err)
	}
	names, err := d.Readdirnames(-1) // unsorted, unlike os.ReadDir
	d.Close()
	if err != nil {
		return fmt.Errorf("load: reading %s: %w", s.procDir, err)
	}
	s.procs = s.procs[:0]
	for _, name := range names {
		if !isPID(name) {
			continue
		}
		if st, ok := s.readStat(filepath.Join(s.procDir, name, "stat")); ok {
			s.procs = append(s.procs, st)
		}
	}
	return nil
}

// readTree reads the stat of root and of its descendants only, found
// through /proc/PID/task/TID/children, so that an agent sharing a machine
// with many others does not read every process's stat each second. Falls
// back to a full walk if the kernel has no children files.
func (s *Sampler) readTree() error {
	s.procs = s.procs[:0]
	queue := []int{s.root}
	seen := map[int]bool{s.root: true}
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		dir := filepath.Join(s.procDir, strconv.Itoa(pid))
		st, ok := s.readStat(filepath.Join(dir, "stat"))
		if !ok {
			continue // gone
		}
		s.procs = append(s.procs, st)
		tasks, err := os.ReadDir(filepath.Join(dir, "task"))
		if err != nil {
			continue
		}
		for _, t := range tasks {
			b, err := os.ReadFile(filepath.Join(dir, "task", t.Name(), "children"))
			if err != nil {
				if pid == s.root && errors.Is(err, os.ErrNotExist) {
					s.scope = ScopeAll // no children files: walk everything, filter later
					defer func() { s.scope = ScopeDescendants }()
					return s.readProcs()
				}
				continue
			}
			for _, f := range strings.Fields(string(b)) {
				if c, err := strconv.Atoi(f); err == nil && !seen[c] {
					seen[c] = true
					queue = append(queue, c)
				}
			}
		}
	}
	return nil
}

// readStat reads and parses one stat file; ok is false if the process or
// thread has gone (or the file is malformed).
func (s *Sampler) readStat(path string) (st procStat, ok bool) {
	var err error
	s.buf, err = readFileInto(path, s.buf)
	if err != nil {
		return st, false
	}
	st, err = parseStat(s.buf)
	return st, err == nil
}

func (s *Sampler) readMeminfo() (meminfo, error) {
	var err error
	path := filepath.Join(s.procDir, "meminfo")
	if s.buf, err = readFileInto(path, s.buf); err != nil {
		return meminfo{}, fmt.Errorf("load: %w", err)
	}
	m, err := parseMeminfo(s.buf)
	if err != nil {
		return meminfo{}, fmt.Errorf("load: %s: %w", path, err)
	}
	return m, nil
}

// isPID reports whether a proc directory entry names a process.
func isPID(name string) bool {
	if name == "" || name[0] == '0' {
		return false
	}
	for i := 0; i < len(name); i++ {
		if name[i] < '0' || name[i] > '9' {
			return false
		}
	}
	return true
}

// runQueue counts the threads in state R among procs, leaving out the
// thread selfPID/selfTID. A single-threaded process's stat state is that
// of its only thread, which saves reading its task directory.
func (s *Sampler) runQueue(procs []procStat, selfPID, selfTID int) uint32 {
	var n uint32
	for _, p := range procs {
		if p.numThreads <= 1 {
			if p.state == 'R' && !(p.pid == selfPID && p.pid == selfTID) {
				n++
			}
			continue
		}
		dir := filepath.Join(s.procDir, strconv.Itoa(p.pid), "task")
		d, err := os.Open(dir)
		if err != nil {
			continue // gone
		}
		tids, _ := d.Readdirnames(-1)
		d.Close()
		for _, name := range tids {
			tid, err := strconv.Atoi(name)
			if err != nil || (p.pid == selfPID && tid == selfTID) {
				continue
			}
			if t, ok := s.readStat(filepath.Join(dir, name, "stat")); ok && t.state == 'R' {
				n++
			}
		}
	}
	return n
}

// cores returns the CPUs available: runtime.NumCPU(), lowered to the
// cgroup quota rounded up, and at least 1.
func (s *Sampler) cores() uint32 {
	n := uint32(max(s.numCPU, 1))
	if q := s.cgroups.cpuQuota(); q > 0 && q < n {
		n = q
	}
	return n
}

// updateLoad folds the run queue length n into the damped averages the
// way the kernel's calc_load does, with the decay factor exp(-dt/period)
// computed from the real interval rather than a fixed 5 s tick. The first
// sample seeds the averages with n rather than starting from 0, so that a
// freshly started agent does not look idle for minutes.
func (s *Sampler) updateLoad(n float64, dt time.Duration) {
	if !s.sampled {
		s.load = [3]float64{n, n, n}
		return
	}
	for i, period := range loadPeriods {
		e := math.Exp(-dt.Seconds() / period.Seconds())
		s.load[i] = s.load[i]*e + n*(1-e)
	}
}
