package load

import "strconv"

// Scope says which processes count.
type Scope int

const (
	// ScopeAll counts every pid visible in the proc directory. Use it when
	// the agent runs in its own PID namespace with its own /proc, or owns
	// the machine.
	ScopeAll Scope = iota
	// ScopeDescendants counts only the descendants of the Sampler's root
	// pid (not the root itself), found by following ppid chains. Use it
	// when several agents share one PID namespace.
	ScopeDescendants
)

func (s Scope) String() string {
	switch s {
	case ScopeAll:
		return "all"
	case ScopeDescendants:
		return "descendants"
	}
	return "Scope(" + strconv.Itoa(int(s)) + ")"
}

// descendants returns the processes whose ppid chain leads to root (root
// itself excluded), and root's own entry if present. A process whose
// parent died was reparented to init or a subreaper and no longer counts,
// unless root is that subreaper.
func descendants(procs []procStat, root int) (counted []procStat, rootStat *procStat) {
	parent := make(map[int]int, len(procs))
	for i := range procs {
		parent[procs[i].pid] = procs[i].ppid
		if procs[i].pid == root {
			rootStat = &procs[i]
		}
	}
	known := make(map[int]bool, len(procs)) // pid -> descends from root
	var chain []int
	for _, p := range procs {
		chain = chain[:0]
		in := false
		// Walk up from p until root, a pid already classified, or the top
		// of the tree. The step limit guards against a ppid cycle that a
		// non-atomic walk over reused pids could in theory produce.
		for q, steps := p.pid, 0; steps <= len(procs); steps++ {
			if q == root {
				in = len(chain) > 0 // root is not its own descendant
				break
			}
			if v, ok := known[q]; ok {
				in = v
				break
			}
			chain = append(chain, q)
			pp, ok := parent[q]
			if !ok {
				break // ppid 0, or the parent vanished mid-walk
			}
			q = pp
		}
		for _, q := range chain {
			known[q] = in
		}
		if in {
			counted = append(counted, p)
		}
	}
	return counted, rootStat
}
