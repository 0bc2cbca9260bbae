package checkpoint

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// queryAttrs asks the process, by injected calls, the attributes only it
// can tell (the prctl flags, personality, membarrier registrations), into
// a; buf is the dump's temporary page, read reads from it.
func queryAttrs(in *injector, buf uint64, read func(off uint64, n int) ([]byte, error), a *ProcAttrs) error {
	get := func(what string, nr uintptr, args ...uint64) (uint64, error) {
		v, err := in.callOK(nr, args...)
		if err != nil {
			return 0, fmt.Errorf("checkpoint: %s: %w", what, err)
		}
		return v, nil
	}
	var err error
	if a.Dumpable, err = get32(get("PR_GET_DUMPABLE", unix.SYS_PRCTL, unix.PR_GET_DUMPABLE, 0, 0, 0, 0)); err != nil {
		return err
	}
	v, err := get("PR_GET_THP_DISABLE", unix.SYS_PRCTL, unix.PR_GET_THP_DISABLE, 0, 0, 0, 0)
	if err != nil {
		return err
	}
	a.THPDisable = v != 0
	if v, err = get("PR_GET_NO_NEW_PRIVS", unix.SYS_PRCTL, unix.PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0); err != nil {
		return err
	}
	a.NoNewPrivs = v != 0
	if _, err = get("PR_GET_CHILD_SUBREAPER", unix.SYS_PRCTL, unix.PR_GET_CHILD_SUBREAPER, buf+2048, 0, 0, 0); err != nil {
		return err
	}
	b, err := read(2048, 4)
	if err != nil {
		return err
	}
	a.ChildSubreaper = binary.LittleEndian.Uint32(b) != 0
	if a.Personality, err = get32(get("personality", unix.SYS_PERSONALITY, 0xffffffff)); err != nil {
		return err
	}
	if err := queryTimers(in, buf, read, a.Timers); err != nil {
		return err
	}
	rv, err := in.call(unix.SYS_MEMBARRIER, membarrierGetRegistrations, 0, 0)
	switch {
	case err != nil:
		return err
	case rv >= 0:
		a.Membarrier = uint32(rv) & membarrierRegisterAll
	case rv != -int64(unix.EINVAL) && rv != -int64(unix.ENOSYS):
		return fmt.Errorf("checkpoint: membarrier: %w", unix.Errno(-rv))
	}
	// EINVAL: a kernel before 6.3 cannot tell; ENOSYS: no membarrier.
	return nil
}

func get32(v uint64, err error) (uint32, error) { return uint32(v), err }

// readAttrs reads from /proc/PID the attributes the process does not
// need to be asked (OOM score adjustment, login uid, the advice of each
// mapping, from smaps unless given) into a, and marks the shared
// mappings that may become writable. A sealed mapping is refused here.
func readAttrs(dir string, img *Image, a *ProcAttrs, smaps string) error {
	b, err := os.ReadFile(dir + "/oom_score_adj")
	if err != nil {
		return err
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 32)
	if err != nil {
		return fmt.Errorf("oom_score_adj: %v", err)
	}
	a.OOMScoreAdj = int32(n)
	if a.Timers, err = readTimers(dir); err != nil {
		return err
	}
	slices.SortFunc(a.Timers, func(x, y PosixTimer) int { return int(x.ID) - int(y.ID) })
	a.LoginUID = NoLoginUID
	if b, err = os.ReadFile(dir + "/loginuid"); err == nil {
		u, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 32)
		if err != nil {
			return fmt.Errorf("loginuid: %v", err)
		}
		a.LoginUID = uint32(u)
	} else if !errors.Is(err, os.ErrNotExist) { // no CONFIG_AUDIT: none
		return err
	}
	if smaps == "" {
		if b, err = os.ReadFile(dir + "/smaps"); err != nil {
			return err
		}
		smaps = string(b)
	}
	sf, err := parseSmaps(smaps)
	if err != nil {
		return err
	}
	kinds := map[uint64]Kind{}
	for i := range img.Mappings {
		m := &img.Mappings[i]
		kinds[m.Start] = m.Kind
		if m.Kind == KindFileShared && sf.MayWrite[m.Start] {
			m.Flags |= MapMayWrite
		}
	}
	var sealed []Reason
	for _, s := range sf.Sealed {
		if k := kinds[s]; k != KindVDSO && k != KindVVAR && k != KindVsyscall {
			sealed = append(sealed, Reason{Unsupported, fmt.Sprintf("mapping at %#x is sealed (mseal): not carried", s)})
		}
	}
	if len(sealed) > 0 {
		pid, _ := strconv.Atoi(strings.TrimPrefix(dir, "/proc/"))
		return &RefusalError{Pid: pid, Reasons: sealed}
	}
	for _, ad := range sf.Advice {
		switch kinds[ad.Start] {
		case KindVDSO, KindVVAR, KindVsyscall, 0:
			continue // the kernel's own, or a mapping maps no longer lists
		}
		a.Advice = append(a.Advice, ad)
	}
	return nil
}

// readSmapsLck reads /proc/PID/smaps and, before it, the VmLck line of
// /proc/PID/status ("" and "" if either cannot be read).
func readSmapsLck(pid int) (smaps, lck string) {
	if lck = statusLck(pid); lck == "" {
		return "", ""
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/smaps")
	if err != nil {
		return "", ""
	}
	return string(b), lck
}

// statusLck returns the VmLck line of /proc/PID/status, or "".
func statusLck(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return ""
	}
	for line := range strings.Lines(string(b)) {
		if strings.HasPrefix(line, "VmLck:") {
			return line
		}
	}
	return ""
}
