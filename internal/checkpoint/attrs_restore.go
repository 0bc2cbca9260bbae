package checkpoint

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

const sysMlock2 = 325

// attrs gives the new process the image's attributes that it sets itself:
// personality, the prctl flags but dumpable (see dumpable), membarrier
// registrations, each mapping's advice and locks, and the login uid. It
// runs while the process is still root.
func (r *restorer) attrs(a *ProcAttrs) error {
	if a == nil {
		return nil
	}
	in := r.in
	do := func(what string, nr uintptr, args ...uint64) error {
		if _, err := in.callOK(nr, args...); err != nil {
			return fmt.Errorf("checkpoint: %s: %w", what, err)
		}
		return nil
	}
	if a.Personality != 0 {
		if err := do("personality", unix.SYS_PERSONALITY, uint64(a.Personality)); err != nil {
			return err
		}
	}
	if a.THPDisable {
		if err := do("PR_SET_THP_DISABLE", unix.SYS_PRCTL, unix.PR_SET_THP_DISABLE, 1, 0, 0, 0); err != nil {
			return err
		}
	}
	if a.ChildSubreaper {
		if err := do("PR_SET_CHILD_SUBREAPER", unix.SYS_PRCTL, unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
			return err
		}
	}
	if a.NoNewPrivs {
		if err := do("PR_SET_NO_NEW_PRIVS", unix.SYS_PRCTL, unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return err
		}
	}
	for bit := uint32(1); bit != 0 && bit <= a.Membarrier; bit <<= 1 {
		if a.Membarrier&bit != 0 {
			if err := do(fmt.Sprintf("membarrier register %#x", bit), unix.SYS_MEMBARRIER, uint64(bit), 0, 0); err != nil {
				return err
			}
		}
	}
	for _, m := range a.Advice {
		for _, am := range adviceMadvise {
			if m.Flags&am.bit != 0 {
				if err := do(fmt.Sprintf("madvise %#x-%#x %d", m.Start, m.End, am.advice), unix.SYS_MADVISE, m.Start, m.End-m.Start, am.advice); err != nil {
					return err
				}
			}
		}
		if m.Flags&(AdvLocked|AdvLockOnFault) != 0 {
			flags := uint64(0)
			if m.Flags&AdvLockOnFault != 0 {
				flags = 1 // MLOCK_ONFAULT
			}
			if err := do(fmt.Sprintf("mlock2 %#x-%#x", m.Start, m.End), sysMlock2, m.Start, m.End-m.Start, flags); err != nil {
				return err
			}
		}
	}
	return r.loginUID(a.LoginUID)
}

// loginUID sets the audit login uid, which only the process itself may
// write (/proc/self/loginuid), if it is not already the stub's.
func (r *restorer) loginUID(uid uint32) error {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(r.in.pid) + "/loginuid")
	if err != nil {
		if os.IsNotExist(err) && uid == NoLoginUID {
			return nil // no audit in this kernel, none to set
		}
		return fmt.Errorf("checkpoint: loginuid: %w", err)
	}
	if strings.TrimSpace(string(b)) == strconv.FormatUint(uint64(uid), 10) {
		return nil
	}
	fd, err := r.open("/proc/self/loginuid", unix.O_WRONLY|unix.O_CLOEXEC)
	if err != nil {
		return fmt.Errorf("checkpoint: loginuid: %w", err)
	}
	defer r.in.call(unix.SYS_CLOSE, fd)
	s := strconv.FormatUint(uint64(uid), 10)
	if err := r.write(scratchStruct, []byte(s)); err != nil {
		return err
	}
	if _, err := r.in.callOK(unix.SYS_WRITE, fd, r.scratch+scratchStruct, uint64(len(s))); err != nil {
		return fmt.Errorf("checkpoint: set loginuid %d: %w", uid, err)
	}
	return nil
}

// oomScoreAdj sets the new process's OOM score adjustment from outside
// (lowering it needs CAP_SYS_RESOURCE, which the restorer has and the
// process, once it drops to its user, may not).
func oomScoreAdj(pid int, a *ProcAttrs) error {
	if a == nil || a.OOMScoreAdj == 0 {
		return nil
	}
	err := os.WriteFile("/proc/"+strconv.Itoa(pid)+"/oom_score_adj", []byte(strconv.Itoa(int(a.OOMScoreAdj))), 0)
	if err != nil {
		return fmt.Errorf("checkpoint: oom_score_adj %d: %w", a.OOMScoreAdj, err)
	}
	return nil
}

// dumpable sets the dumpable flag after the credentials (setresuid to
// another user resets it to fs.suid_dumpable): 0 or 1; 2 cannot be set
// and comes from fs.suid_dumpable as it did. An image without attributes
// does not say: the flag is left as the credentials made it.
func (r *restorer) dumpable(a *ProcAttrs) error {
	if a == nil || a.Dumpable > 1 {
		return nil
	}
	d := a.Dumpable
	if _, err := r.in.callOK(unix.SYS_PRCTL, unix.PR_SET_DUMPABLE, uint64(d), 0, 0, 0); err != nil {
		return fmt.Errorf("checkpoint: PR_SET_DUMPABLE %d: %w", d, err)
	}
	return nil
}
