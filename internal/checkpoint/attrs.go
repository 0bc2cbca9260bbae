package checkpoint

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
)

// Attributes of a process that a program can set and see, carried since
// image format version 5 so that none is lost without a word: the OOM
// score adjustment, the audit login uid, the personality, the prctl
// flags (dumpable, THP disabled, child subreaper, no_new_privs), the
// membarrier registrations, and each mapping's advice and locks (the
// VmFlags of /proc/PID/smaps: MADV_DONTDUMP, MADV_DONTFORK,
// MADV_WIPEONFORK, MADV_HUGEPAGE, MADV_NOHUGEPAGE, MADV_MERGEABLE,
// MADV_SEQUENTIAL, MADV_RANDOM, mlock and mlock2(MLOCK_ONFAULT)). What
// cannot be carried is refused (see attrRefusals): a seccomp filter,
// capabilities other than those a restore gives (all for root, none for
// another user), and sealed mappings.

// ProcAttrs are the carried attributes; Image.Attrs is nil in images
// before version 5, and such a restore leaves the stub's.
type ProcAttrs struct {
	OOMScoreAdj    int32  // /proc/PID/oom_score_adj
	LoginUID       uint32 // /proc/PID/loginuid; NoLoginUID if unset
	Personality    uint32 // personality(2)
	Dumpable       uint32 // PR_GET_DUMPABLE: 0, 1, or 2 (SUID_DUMP_ROOT, from fs.suid_dumpable; not settable)
	THPDisable     bool   // PR_GET_THP_DISABLE
	ChildSubreaper bool   // PR_GET_CHILD_SUBREAPER
	NoNewPrivs     bool   // PR_GET_NO_NEW_PRIVS
	Membarrier     uint32 // MEMBARRIER_CMD_GET_REGISTRATIONS: the REGISTER_* commands done
	Advice         []MapAdvice
	Timers         []PosixTimer // timer_create(2), by ascending id (ptimers.go)
}

// NoLoginUID is the login uid of a process no login set it for.
const NoLoginUID = 1<<32 - 1

// MapAdvice is the advice and locking of one mapping, as bits Adv*.
type MapAdvice struct {
	Start, End uint64
	Flags      uint32
}

// Advice bits of a mapping, each from one VmFlags name of smaps.
const (
	AdvDontDump    = 1 << iota // dd: MADV_DONTDUMP
	AdvDontFork                // dc: MADV_DONTFORK
	AdvWipeOnFork              // wf: MADV_WIPEONFORK
	AdvHugePage                // hg: MADV_HUGEPAGE
	AdvNoHugePage              // nh: MADV_NOHUGEPAGE
	AdvMergeable               // mg: MADV_MERGEABLE
	AdvSequential              // sr: MADV_SEQUENTIAL
	AdvRandom                  // rr: MADV_RANDOM
	AdvLocked                  // lo: mlock
	AdvLockOnFault             // lf: mlock2(MLOCK_ONFAULT)
	advAll         = 1<<iota - 1
)

var vmFlagAdvice = map[string]uint32{"dd": AdvDontDump, "dc": AdvDontFork, "wf": AdvWipeOnFork,
	"hg": AdvHugePage, "nh": AdvNoHugePage, "mg": AdvMergeable, "sr": AdvSequential, "rr": AdvRandom,
	"lo": AdvLocked, "lf": AdvLockOnFault}

// madvise advice values, for the bits that madvise sets.
var adviceMadvise = []struct {
	bit    uint32
	advice uint64
}{{AdvDontDump, 16}, {AdvDontFork, 10}, {AdvWipeOnFork, 18}, {AdvHugePage, 14}, {AdvNoHugePage, 15},
	{AdvMergeable, 12}, {AdvSequential, 2}, {AdvRandom, 1}}

// smapsFlags is what a restore needs of /proc/PID/smaps: per mapping, its
// advice bits, and the mappings that are sealed (VmFlags "sl") or were
// mapped with the right to become writable ("mw", VM_MAYWRITE).
type smapsFlags struct {
	Advice   []MapAdvice
	Sealed   []uint64        // starts of sealed mappings
	MayWrite map[uint64]bool // by start
}

// parseSmaps reads the VmFlags line of each mapping of /proc/PID/smaps.
func parseSmaps(text string) (smapsFlags, error) {
	sf := smapsFlags{MayWrite: map[uint64]bool{}}
	var cur *Mapping
	for line := range strings.Lines(text) {
		line = strings.TrimRight(line, "\n")
		if flags, ok := strings.CutPrefix(line, "VmFlags:"); ok {
			if cur == nil {
				return sf, fmt.Errorf("smaps: VmFlags before any mapping")
			}
			var bits uint32
			for _, f := range strings.Fields(flags) {
				bits |= vmFlagAdvice[f]
				switch f {
				case "sl":
					sf.Sealed = append(sf.Sealed, cur.Start)
				case "mw":
					sf.MayWrite[cur.Start] = true
				}
			}
			if bits != 0 {
				sf.Advice = append(sf.Advice, MapAdvice{Start: cur.Start, End: cur.End, Flags: bits})
			}
			cur = nil
			continue
		}
		k, _, _ := strings.Cut(line, " ")
		if strings.Contains(k, ":") || line == "" {
			continue // a "Key: value" line
		}
		m, err := parseMapsLine(line)
		if err != nil {
			return sf, fmt.Errorf("smaps: %w", err)
		}
		cur = &m
	}
	return sf, nil
}

// secView is what the attribute refusals look at, from /proc/PID/status
// (and, for sealed mappings, smaps).
type secView struct {
	Seccomp                                int // 0 none, 1 strict, 2 filter
	SeccompFilters                         int // how many filters
	NoNewPrivs                             bool
	Uid                                    uint32 // effective
	CapInh, CapPrm, CapEff, CapBnd, CapAmb uint64
	hasCaps, hasUid                        bool
	Sealed                                 []uint64 // starts of sealed mappings
}

// parseSecStatus reads the Seccomp, Uid and Cap* lines of
// /proc/PID/status.
func parseSecStatus(s string) secView {
	var v secView
	seen := 0
	for line := range strings.Lines(s) {
		k, val, ok := strings.Cut(strings.TrimRight(line, "\n"), ":")
		if !ok {
			continue
		}
		val = strings.TrimSpace(val)
		switch k {
		case "Seccomp":
			v.Seccomp, _ = strconv.Atoi(val)
		case "Seccomp_filters":
			v.SeccompFilters, _ = strconv.Atoi(val)
		case "NoNewPrivs":
			v.NoNewPrivs = val == "1"
		case "Uid":
			if f := strings.Fields(val); len(f) >= 2 {
				n, err := strconv.ParseUint(f[1], 10, 32)
				v.Uid, v.hasUid = uint32(n), err == nil
			}
		case "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb":
			n, err := strconv.ParseUint(val, 16, 64)
			if err != nil {
				continue
			}
			*map[string]*uint64{"CapInh": &v.CapInh, "CapPrm": &v.CapPrm, "CapEff": &v.CapEff,
				"CapBnd": &v.CapBnd, "CapAmb": &v.CapAmb}[k] = n
			seen++
		}
	}
	v.hasCaps = seen == 5
	return v
}

// attrRefusals is the pure decision on what a restore would not give the
// process v back: a seccomp filter, capabilities other than a restore's,
// and sealed mappings. A restore runs as the restoring agent, self, and
// drops to the process's uids: root keeps the agent's capabilities, any
// other user has none.
func attrRefusals(v, self secView) []Reason {
	var rs []Reason
	add := func(f string, a ...any) { rs = append(rs, Reason{Unsupported, fmt.Sprintf(f, a...)}) }
	// The restored process inherits the agent's filters (a unit's
	// SystemCallFilter): a process with as many, in the same mode, runs
	// under the agent's (filters are only ever added).
	switch {
	case v.Seccomp == self.Seccomp && v.SeccompFilters == self.SeccompFilters:
	case v.Seccomp == 1:
		add("seccomp strict mode: not carried")
	default:
		add("%d seccomp filters where a restore gives the agent's %d: not carried (the process would run under other filters)", v.SeccompFilters, self.SeccompFilters)
	}
	if self.NoNewPrivs && !v.NoNewPrivs {
		add("the agent runs with no_new_privs, which a restored process inherits and cannot drop: the process would lose setuid programs")
	}
	if v.hasCaps && v.hasUid && self.hasCaps {
		want, gives := uint64(0), "no capability (it is not root)"
		if v.Uid == 0 {
			want, gives = self.CapEff, fmt.Sprintf("root the agent's capabilities (%#x)", self.CapEff)
		}
		if v.CapPrm != want || v.CapEff != want || v.CapBnd != self.CapBnd || v.CapAmb != 0 || v.CapInh != self.CapInh {
			add("capabilities (permitted %#x, effective %#x, bounding %#x, ambient %#x, inheritable %#x) are not carried: a restore gives %s",
				v.CapPrm, v.CapEff, v.CapBnd, v.CapAmb, v.CapInh, gives)
		}
	}
	for _, s := range v.Sealed {
		add("mapping at %#x is sealed (mseal): not carried", s)
	}
	return rs
}

// The membarrier(2) commands that register a process.
const (
	membarrierGetRegistrations = 1 << 9
	membarrierRegisterAll      = 1<<2 | 1<<4 | 1<<6 | 1<<8 // GLOBAL_EXPEDITED, PRIVATE_EXPEDITED, ..._SYNC_CORE, ..._RSEQ
)

// selfSec is the checker's own secView, read once.
var selfSec = sync.OnceValue(func() secView {
	b, _ := os.ReadFile("/proc/self/status")
	return parseSecStatus(string(b))
})
