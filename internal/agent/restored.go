package agent

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"

	"github.com/ssi-cluster/ssi/internal/vproc"
)

// A process restored here by a migration (or `ssi restore`) is this
// agent's child, not held (package hold): its session dies with the
// agent. So that none is lost without a word, each has a record in the
// state directory while it runs here; an agent that starts reads those
// left behind and says, in its log, what became of each: a process run
// for a deputy lost its stdio (the pipes were the agent's) and is not
// re-adopted; a native process may run on, untracked by this node.

// restoredRec is the record of a process restored here.
type restoredRec struct {
	CPID    int64  `json:"cpid"`
	Pid     int    `json:"pid"`
	Home    int    `json:"home"`
	Run     bool   `json:"run"` // run for a deputy (its stdio was the agent's)
	Cmdline string `json:"cmdline"`
}

func (a *Agent) restoredDir() string { return filepath.Join(a.cfg.StateDir, "restored") }

func (a *Agent) restoredPath(cpid int64) string {
	return filepath.Join(a.restoredDir(), strconv.FormatInt(cpid, 10)+".json")
}

// noteRestored records a restored process's session (not held).
func (s *runSession) noteRestored() {
	r := restoredRec{CPID: s.rec.CPID, Pid: s.pid(), Home: s.rec.Home, Run: !s.native()}
	if p, ok := vproc.Lookup("/proc", r.Pid); ok {
		r.Cmdline = p.Cmdline
	}
	b, _ := json.Marshal(r)
	if err := os.MkdirAll(s.a.restoredDir(), 0o700); err != nil {
		s.a.log.Warn("cannot record a restored process", "cpid", showCPID(r.CPID), "err", err)
		return
	}
	if err := os.WriteFile(s.a.restoredPath(r.CPID), b, 0o600); err != nil {
		s.a.log.Warn("cannot record a restored process", "cpid", showCPID(r.CPID), "err", err)
	}
}

// forgetRestored drops the record: the process ended or moved on.
func (s *runSession) forgetRestored() { os.Remove(s.a.restoredPath(s.rec.CPID)) }

// reportRestored says what became of the processes restored here before
// this agent started, and drops their records.
func (a *Agent) reportRestored() {
	ents, err := os.ReadDir(a.restoredDir())
	if err != nil {
		return
	}
	for _, e := range ents {
		path := filepath.Join(a.restoredDir(), e.Name())
		b, err := os.ReadFile(path)
		os.Remove(path)
		var r restoredRec
		if err != nil || json.Unmarshal(b, &r) != nil {
			continue
		}
		p, alive := vproc.Lookup("/proc", r.Pid)
		alive = alive && p.State != "Z" && p.Cmdline == r.Cmdline
		switch {
		case r.Run && alive:
			a.log.Warn("a process restored here for a deputy outlived this agent's restart but cannot be re-adopted: its stdio pipes were the agent's; it is not tracked",
				"cpid", showCPID(r.CPID), "pid", r.Pid, "home", r.Home)
		case r.Run:
			a.log.Warn("a process restored here for a deputy was lost with this agent's restart: its stdio pipes were the agent's",
				"cpid", showCPID(r.CPID), "pid", r.Pid, "home", r.Home)
		case alive:
			a.log.Warn("a native process restored here runs on after this agent's restart, but is no longer tracked here",
				"cpid", showCPID(r.CPID), "pid", r.Pid, "origin", r.Home)
		default:
			a.log.Warn("a native process restored here ended while this agent restarted, or with it",
				"cpid", showCPID(r.CPID), "pid", r.Pid, "origin", r.Home)
		}
	}
}
