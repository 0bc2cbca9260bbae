package agent

import (
	"os"
	"path/filepath"

	"github.com/ssi-cluster/ssi/internal/hold"
)

// Processes run here for deputies are held (package hold): each has a
// holder, its parent, that keeps its stdio and its output across this
// agent's restarts. The holders' sockets in the state directory are the
// table of those processes; an agent that starts re-adopts them.

// holderBinary is the holder's program: ssi-hold beside the agent's
// binary (small: one runs per process), else the agent's own binary.
func (a *Agent) holderBinary() string {
	p := filepath.Join(filepath.Dir(a.shim), "ssi-hold")
	if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
		return p
	}
	return a.shim
}

// holdDir is where the holders' sockets are (root only: the state
// directory is 0700).
func (a *Agent) holdDir() string { return filepath.Join(a.cfg.StateDir, "hold") }

// heldRec is the tracking record of a held process.
func heldRec(l *hold.Link) *runRec {
	s := l.Info.Spec
	rec := &runRec{CPID: s.CPID, PPid: s.PPid, PGid: s.PGid, Home: s.Home, NoMigrate: s.NoMigrate, Holder: l.Info.Holder}
	if l.Info.Pid != l.Info.Cmd {
		rec.Helper = l.Info.Pid
	}
	return rec
}

// readopt connects to the holders of the processes run here before this
// agent started and tracks them again under their cluster pids; their
// homes re-attach (Spec.Attach with Received, what they have) within
// the grace (spec.GraceMS, or run_grace), as after a broken stream.
func (a *Agent) readopt() {
	a.reportRestored()
	dir := a.holdDir()
	ents, err := os.ReadDir(dir)
	if err != nil {
		if !os.IsNotExist(err) {
			a.log.Error("cannot list the held processes", "dir", dir, "err", err)
		}
		return
	}
	for _, e := range ents {
		cpid, ok := hold.CPIDOf(e.Name())
		if !ok {
			continue
		}
		path := filepath.Join(dir, e.Name())
		l, err := hold.Dial(path)
		if err != nil {
			// The holder is gone (killed, or the node rebooted): so is
			// the process, whose stdio it held.
			a.log.Warn("a held process is gone with its holder", "cpid", showCPID(cpid), "err", err)
			os.Remove(path)
			continue
		}
		if l.Info.Spec.CPID != cpid {
			a.log.Error("a holder's record names another process; left alone", "socket", path, "cpid", showCPID(l.Info.Spec.CPID))
			l.Close()
			continue
		}
		s := a.newSession(l.Info.Spec, l.Proc, heldRec(l))
		s.adopt(l)
		a.log.Info("re-adopted a held process", "cpid", showCPID(cpid), "pid", l.Info.Cmd, "holder", l.Info.Holder,
			"home", l.Info.Spec.Home, "input_passed", l.Info.Passed)
		s.start()
		go s.expectAttach(s.grace)
	}
}
