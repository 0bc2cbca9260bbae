package agent

import (
	"fmt"
	"sync"
	"time"

	"github.com/ssi-cluster/ssi/internal/rexec"
	"github.com/ssi-cluster/ssi/internal/vproc"
)

// Tracking of processes run for deputies (OpenSSI's origin-node tracking).
//
// On the home node, each deputy (the `ssi run` process, or one of its
// threads for --np) is the origin of one process running elsewhere: its
// pid or tid is the origin part of that process's cluster pid, and the
// home agent knows where the process runs. On the executing node, each
// process run for a deputy carries the cluster pid it was given, which
// replaces node<<22|pid in the process table.

// homeRec is a process whose origin is this node, running on Node as Pid.
type homeRec struct {
	CPID int64
	Node int
	Pid  int // 0 until it started
	// Deputy: the local process holding the cluster pid is alive and
	// attached (hidden from the table: the remote process stands for it).
	Deputy bool
	// Ended: the process is known to have ended (or been lost).
	Ended bool
}

// runRec is a process run here for a deputy.
type runRec struct {
	CPID, PPid, PGid int64 // cluster pids: its own, its deputy's parent and group
	Home             int
	NoMigrate        bool
	// Helper is the pid of the exec helper leading its tty session (its
	// parent, hidden from the table), 0 without a tty.
	Helper int
	// Holder is the pid of its holder (package hold: its parent, or its
	// helper's; hidden from the table), 0 for a process not held.
	Holder int
}

type tracker struct {
	mu    sync.Mutex
	home  map[int]*homeRec // by the origin part (deputy pid or tid)
	runs  map[int]*runRec  // by local pid
	ended endedRuns        // runs of this home that ended, for `where`
}

func newTracker() *tracker {
	return &tracker{home: map[int]*homeRec{}, runs: map[int]*runRec{}}
}

// endedRuns remembers how the last runs of this home ended, so that a
// lookup of one says it ended rather than "no process".
type endedRuns struct {
	by    map[int64]string // cpid -> "ended at 15:04:05 with exit status 3"
	order []int64
}

// maxEnded bounds endedRuns: the oldest is forgotten first.
const maxEnded = 4096

func (e *endedRuns) add(cpid int64, what string) {
	if e.by == nil {
		e.by = map[int64]string{}
	}
	if _, ok := e.by[cpid]; !ok {
		e.order = append(e.order, cpid)
	}
	e.by[cpid] = what
	for len(e.order) > maxEnded {
		delete(e.by, e.order[0])
		e.order = e.order[1:]
	}
}

// noteEnded records how run cpid of this home ended.
func (t *tracker) noteEnded(cpid int64, what string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.ended.add(cpid, what)
}

// endedHow says how run cpid of this home ended ("" if not known).
func (t *tracker) endedHow(cpid int64) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.ended.by[cpid]
}

// endedText describes an exit status for endedRuns.
func endedText(at time.Time, st rexec.Status) string {
	switch {
	case st.Lost:
		return "was lost at " + at.Format("15:04:05")
	case st.Signal != 0:
		return fmt.Sprintf("ended at %s, killed by signal %d", at.Format("15:04:05"), st.Signal)
	}
	return fmt.Sprintf("ended at %s with exit status %d", at.Format("15:04:05"), st.Code)
}

func (t *tracker) setHome(originPid int, r *homeRec) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.home[originPid] = r
}

// runsAt notes where r's process runs: node, as pid there.
func (t *tracker) runsAt(r *homeRec, node, pid int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	r.Node, r.Pid = node, pid
}

// endHome notes that r's process ended.
func (t *tracker) endHome(r *homeRec) {
	t.mu.Lock()
	defer t.mu.Unlock()
	r.Ended = true
}

// releaseHome is called when r's deputy is gone: r is forgotten if its
// process ended, else kept (without a deputy) so that the process, hung
// up but perhaps alive, stays reachable by its cluster pid.
func (t *tracker) releaseHome(originPid int, r *homeRec) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.home[originPid] != r {
		return
	}
	if r.Ended {
		delete(t.home, originPid)
	} else {
		r.Deputy = false
	}
}

// dropStale forgets the deputy-less entry of originPid if it is still
// cpid's.
func (t *tracker) dropStale(originPid int, cpid int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if r := t.home[originPid]; r != nil && r.CPID == cpid && !r.Deputy {
		delete(t.home, originPid)
	}
}

// homeOf returns where the process with origin part pid runs, if it runs
// elsewhere (or was started here for a deputy).
func (t *tracker) homeOf(pid int) (homeRec, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	r, ok := t.home[pid]
	if !ok {
		return homeRec{}, false
	}
	return *r, true
}

// hidden returns the local pids hidden from the table: deputies (the
// process they stand for is listed where it runs) and exec helpers.
func (t *tracker) hidden() map[int]bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[int]bool, len(t.home))
	for pid, r := range t.home {
		if r.Deputy {
			out[pid] = true
		}
	}
	for _, r := range t.runs {
		if r.Helper != 0 {
			out[r.Helper] = true
		}
		if r.Holder != 0 {
			out[r.Holder] = true
		}
	}
	return out
}

func (t *tracker) addRun(pid int, r *runRec) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.runs[pid] = r
}

// dropRun forgets pid's record if it is still r: a process that moved
// back here may have the same pid and a record of its own already.
func (t *tracker) dropRun(pid int, r *runRec) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.runs[pid] == r {
		delete(t.runs, pid)
	}
}

// runsSnapshot copies the table of processes run here.
func (t *tracker) runsSnapshot() map[int]runRec {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[int]runRec, len(t.runs))
	for pid, r := range t.runs {
		out[pid] = *r
	}
	return out
}

// runByCPID finds the process run here as cpid and its local pid.
func (t *tracker) runByCPID(cpid int64) (int, runRec, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for pid, r := range t.runs {
		if r.CPID == cpid {
			return pid, *r, true
		}
	}
	return 0, runRec{}, false
}

// cpidOf is the cluster pid of local process pid on node num: the one it
// was given if it was run for a deputy, else num<<22|pid.
func cpidOf(runs map[int]runRec, num, pid int) int64 {
	if r, ok := runs[pid]; ok {
		return r.CPID
	}
	c, err := vproc.Make(num, pid)
	if err != nil {
		return 0
	}
	return int64(c)
}

// showCPID prints a cluster pid with its node and pid parts.
func showCPID(c int64) string {
	x := vproc.CPID(c)
	return fmt.Sprintf("%d (node %d, pid %d)", c, x.Node(), x.Pid())
}
