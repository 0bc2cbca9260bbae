package load

// cpuAccount turns the cumulative CPU times in /proc/[pid]/stat into the
// CPU time used by the counted processes between two samples.
//
// The main term is the growth of utime+stime of each counted process (all
// of it for a process that appeared since the previous sample). On its own
// that misses the work of processes that exit between two samples, which
// for short-lived jobs (compilers under make) is most of it. But when a
// process is reaped, the kernel adds its utime+stime+cutime+cstime to its
// parent's cutime+cstime. So the growth of the child times of surviving
// processes is added too, less what had already been counted for the
// processes that died (their times at the previous sample):
//
//   - a dead process whose parent survived is charged to that parent, and
//     the parent's contribution is clamped at zero, so nothing is lost
//     elsewhere when it was not reaped into the parent's times (SIGCHLD
//     ignored);
//   - a dead process whose parent died too was reaped either by that
//     parent (whose own final times then reached a surviving ancestor) or,
//     orphaned, by init or a subreaper; either way it is charged to the
//     pool of all surviving processes' child time growth.
//
// A process that is still alive but no longer counted (with
// ScopeDescendants, one reparented away from the agent) simply stops
// counting. In ScopeDescendants the root (the agent) is a parent like any
// other, except that its own utime+stime does not count.
type cpuAccount struct {
	primed       bool
	prev         map[int]cpuTimes // counted processes at the previous sample, by pid
	prevRoot     cpuTimes
	havePrevRoot bool

	// Scratch space reused across samples.
	cur    map[int]cpuTimes
	alive  map[int]uint64 // pid -> starttime of every visible process
	reaped map[int]uint64 // surviving pid -> times of its dead children
}

// cpuTimes is what is remembered of a process between samples, in ticks.
type cpuTimes struct {
	start uint64 // starttime, to tell a reused pid from the old process
	ppid  int
	self  uint64 // utime+stime
	child uint64 // cutime+cstime: reaped descendants
}

func timesOf(p procStat) cpuTimes {
	return cpuTimes{
		start: p.startTime,
		ppid:  p.ppid,
		self:  satAdd(p.utime, p.stime),
		child: satAdd(p.cutime, p.cstime),
	}
}

// update records a new sample, given every visible process, the counted
// ones and the root (nil in ScopeAll or when it is not visible), and
// returns the clock ticks used by the counted processes since the previous
// one; 0 the first time.
func (a *cpuAccount) update(all, counted []procStat, root *procStat) uint64 {
	if a.cur == nil {
		a.prev = make(map[int]cpuTimes)
		a.cur = make(map[int]cpuTimes)
		a.alive = make(map[int]uint64)
		a.reaped = make(map[int]uint64)
	}
	clear(a.cur)
	for _, p := range counted {
		a.cur[p.pid] = timesOf(p)
	}
	var curRoot cpuTimes
	if root != nil {
		curRoot = timesOf(*root)
	}
	rootSurvived := root != nil && a.havePrevRoot && a.prevRoot.start == curRoot.start
	// survived reports whether pid was counted (or the root) at both
	// samples, as the same process.
	survived := func(pid int) bool {
		if rootSurvived && pid == root.pid {
			return true
		}
		old, wasCounted := a.prev[pid]
		c, isCounted := a.cur[pid]
		return wasCounted && isCounted && old.start == c.start
	}

	var total uint64
	if a.primed {
		clear(a.alive)
		for _, p := range all {
			a.alive[p.pid] = p.startTime
		}
		// Charge each process that died to its parent or the orphan pool.
		clear(a.reaped)
		var orphans uint64
		for pid, old := range a.prev {
			if start, ok := a.alive[pid]; ok && start == old.start {
				continue // alive, counted or not
			}
			if survived(old.ppid) {
				a.reaped[old.ppid] = satAdd(a.reaped[old.ppid], satAdd(old.self, old.child))
			} else {
				orphans = satAdd(orphans, satAdd(old.self, old.child))
			}
		}
		// Own time of counted processes; child time of survivors.
		var childGrowth uint64
		for pid, c := range a.cur {
			if !survived(pid) {
				total = satAdd(total, satAdd(c.self, c.child))
				continue
			}
			old := a.prev[pid]
			total = satAdd(total, satSub(c.self, old.self))
			childGrowth = satAdd(childGrowth, satSub(satSub(c.child, old.child), a.reaped[pid]))
		}
		if rootSurvived {
			childGrowth = satAdd(childGrowth, satSub(satSub(curRoot.child, a.prevRoot.child), a.reaped[root.pid]))
		}
		total = satAdd(total, satSub(childGrowth, orphans))
	}
	a.prev, a.cur = a.cur, a.prev
	a.prevRoot, a.havePrevRoot = curRoot, root != nil
	a.primed = true
	return total
}
