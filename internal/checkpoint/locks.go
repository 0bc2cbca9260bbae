package checkpoint

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// File locks and leases do not move: the kernel holds them for an open
// file description (flock, OFD locks, leases) or for the process's file
// table (POSIX locks), and a restored process reopens its files afresh,
// without them. A process that holds one is refused (reason Locks), so
// that no lock is ever dropped without a word.
//
// They are found in two places. /proc/PID/fdinfo/N lists, in its "lock:"
// lines, every lock and lease held through descriptor N (the kernel's
// show_fd_locks: those whose file is N's and whose owner is N's open file
// description, or the process's file table for POSIX locks): every kind,
// whoever took it (an flock inherited from a parent is the child's too).
// /proc/locks lists every lock of the system with the pid of its taker
// (-1 for an OFD lock); its POSIX locks with our pid are ours too (their
// owner is the file table, which the pid names).

// lockEntry is one line of /proc/locks, or the text after "lock:" in
// /proc/PID/fdinfo/N: the kernel's lock_get_status, as
//
//	1: POSIX  ADVISORY  WRITE 3568 fd:00:2531452 0 EOF
//	2: FLOCK  ADVISORY  READ  3517 fd:00:2531448 0 EOF
//	3: OFDLCK ADVISORY  WRITE -1 fd:00:2531442 100 199
//	4: LEASE  ACTIVE    READ  3452 fd:00:2531440 0 EOF
//	5: -> POSIX  ADVISORY  WRITE 3443 fd:00:2531452 0 EOF   (a waiter)
type lockEntry struct {
	Kind     string // POSIX, OFDLCK, FLOCK, LEASE, DELEG, ACCESS, UNKNOWN
	State    string // ADVISORY, *NOINODE*; for a lease ACTIVE, BREAKING or BREAKER
	Mode     string // WRITE, READ, UNLCK (a lease being broken to nothing)
	Waiting  bool   // a blocked request ("->"), not a lock held
	Pid      int    // the taker's pid in the reader's pid namespace; -1 for OFD locks, 0 if not visible
	HasInode bool   // false for "<none>:0"
	Dev      uint64 // unix.Mkdev(major, minor)
	Ino      uint64
	Start    int64
	End      int64 // -1: to the end of the file (EOF)
}

// parseLockLine parses one lock line (see lockEntry).
func parseLockLine(line string) (lockEntry, error) {
	var e lockEntry
	bad := func(what string) (lockEntry, error) {
		return lockEntry{}, fmt.Errorf("lock line %q: bad %s", line, what)
	}
	f := strings.Fields(line)
	if len(f) < 1 || !strings.HasSuffix(f[0], ":") {
		return bad("id")
	}
	if _, err := strconv.ParseInt(strings.TrimSuffix(f[0], ":"), 10, 64); err != nil {
		return bad("id")
	}
	f = f[1:]
	if len(f) > 0 && f[0] == "->" {
		e.Waiting = true
		f = f[1:]
	}
	if len(f) != 7 {
		return bad("field count")
	}
	switch f[0] {
	case "POSIX", "OFDLCK", "FLOCK", "LEASE", "DELEG", "ACCESS", "UNKNOWN":
		e.Kind = f[0]
	default:
		return bad("kind")
	}
	e.State, e.Mode = f[1], f[2]
	pid, err := strconv.ParseInt(f[3], 10, 64)
	if err != nil || pid < -1 || pid > 1<<32 {
		return bad("pid")
	}
	e.Pid = int(pid)
	if f[4] != "<none>:0" {
		parts := strings.Split(f[4], ":")
		if len(parts) != 3 {
			return bad("device:inode")
		}
		major, err1 := strconv.ParseUint(parts[0], 16, 32)
		minor, err2 := strconv.ParseUint(parts[1], 16, 32)
		ino, err3 := strconv.ParseUint(parts[2], 10, 64)
		if err1 != nil || err2 != nil || err3 != nil {
			return bad("device:inode")
		}
		e.HasInode, e.Dev, e.Ino = true, unix.Mkdev(uint32(major), uint32(minor)), ino
	}
	if e.Start, err = strconv.ParseInt(f[5], 10, 64); err != nil || e.Start < 0 {
		return bad("start")
	}
	if f[6] == "EOF" {
		e.End = -1
	} else if e.End, err = strconv.ParseInt(f[6], 10, 64); err != nil || e.End < e.Start {
		return bad("end")
	}
	return e, nil
}

// parseProcLocks parses /proc/locks. Lines it cannot read are skipped: a
// later kernel may add kinds; the fdinfo lines still see every lock held
// through a descriptor.
func parseProcLocks(text string) []lockEntry {
	var es []lockEntry
	for line := range strings.Lines(text) {
		if e, err := parseLockLine(line); err == nil {
			es = append(es, e)
		}
	}
	return es
}

// parseFdinfoLocks returns the locks of the "lock:" lines of a
// /proc/PID/fdinfo/N text, and an error for a lock line it cannot read
// (a lock that cannot be read must not pass for no lock).
func parseFdinfoLocks(text string) ([]lockEntry, error) {
	var es []lockEntry
	for line := range strings.Lines(text) {
		rest, ok := strings.CutPrefix(line, "lock:")
		if !ok {
			continue
		}
		e, err := parseLockLine(rest)
		if err != nil {
			return nil, err
		}
		es = append(es, e)
	}
	return es, nil
}

// heldLock is one lock or lease a process holds, with the file it is on.
type heldLock struct {
	Kind, State, Mode string
	Path              string // the file, or "device M:N inode I" if no descriptor of the process names it
}

// describe says what l is, as a refusal reason: "holds a write lock
// (POSIX) on /path/db.sqlite".
func (l heldLock) describe() string {
	mode := strings.ToLower(l.Mode)
	a := func(s string) string {
		if s == "" {
			return "a"
		}
		switch s[0] {
		case 'a', 'e', 'i', 'o', 'u':
			return "an " + s
		}
		return "a " + s
	}
	var what string
	switch l.Kind {
	case "POSIX":
		what = a(mode+" lock") + " (POSIX)"
	case "OFDLCK":
		what = a(mode+" lock") + " (OFD)"
	case "FLOCK":
		switch l.Mode {
		case "WRITE":
			what = "an exclusive lock (flock)"
		case "READ":
			what = "a shared lock (flock)"
		default:
			what = a(mode+" lock") + " (flock)"
		}
	case "LEASE", "DELEG":
		noun := "lease"
		if l.Kind == "DELEG" {
			noun = "delegation"
		}
		if l.Mode == "UNLCK" {
			what = "a " + noun
		} else {
			what = a(mode + " " + noun)
		}
		if l.State == "BREAKING" {
			what += " (being broken)"
		}
	default:
		what = a(mode+" lock") + " (" + l.Kind + ")"
	}
	return "holds " + what + " on " + l.Path
}

// heldLocks is the pure decision of which locks pid holds: those of its
// descriptors' fdinfo (fdLocks, by descriptor), and the POSIX locks of
// /proc/locks (all) taken by pid, on a file that one of its descriptors
// (fds, with their device and inode) names. Waiters are not locks held.
// Each lock is listed once.
func heldLocks(pid int, all []lockEntry, fds []fdView, fdLocks map[int][]lockEntry) []heldLock {
	pathOf := func(e lockEntry) string {
		if e.HasInode {
			for _, f := range fds {
				if f.ID.Dev == e.Dev && f.ID.Ino == e.Ino && f.ID != (fileID{}) {
					return f.Target
				}
			}
			return fmt.Sprintf("device %d:%d inode %d", unix.Major(e.Dev), unix.Minor(e.Dev), e.Ino)
		}
		return "a file without an inode"
	}
	var out []heldLock
	seen := map[heldLock]bool{}
	add := func(l heldLock) {
		if !seen[l] {
			seen[l] = true
			out = append(out, l)
		}
	}
	for _, f := range fds {
		for _, e := range fdLocks[f.Fd] {
			if !e.Waiting {
				add(heldLock{e.Kind, e.State, e.Mode, f.Target})
			}
		}
	}
	for _, e := range all {
		if e.Waiting || e.Pid != pid || (e.Kind != "POSIX" && e.Kind != "ACCESS") {
			continue
		}
		add(heldLock{e.Kind, e.State, e.Mode, pathOf(e)})
	}
	return out
}

// readLocks reads what heldLocks needs for pid: /proc/locks and the lock
// lines of every descriptor's fdinfo (fds: all of them, the external
// ones included: a lock is held whatever the descriptor).
func readLocks(pid int, fds []fdView) ([]heldLock, error) {
	text, err := os.ReadFile("/proc/locks")
	if err != nil && !errors.Is(err, os.ErrNotExist) { // no CONFIG_PROC_FS locks: fdinfo still tells
		return nil, err
	}
	all := parseProcLocks(string(text))
	dir := "/proc/" + strconv.Itoa(pid) + "/fdinfo/"
	fdLocks := map[int][]lockEntry{}
	for _, f := range fds {
		b, err := os.ReadFile(dir + strconv.Itoa(f.Fd))
		if errors.Is(err, os.ErrNotExist) {
			continue // closed meanwhile
		}
		if err != nil {
			return nil, err
		}
		es, err := parseFdinfoLocks(string(b))
		if err != nil {
			return nil, err
		}
		if len(es) > 0 {
			fdLocks[f.Fd] = es
		}
	}
	return heldLocks(pid, all, fds, fdLocks), nil
}
