package checkpoint

import (
	"fmt"
	"io/fs"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
)

// Reason codes of a refusal. They are stable: callers compare codes, never
// message text.
type ReasonCode int

// Refusal reasons.
const (
	MultiThreaded ReasonCode = iota + 1 // no longer reported: threads are dumped and restored
	SharedMemory                        // writable shared memory: MAP_SHARED anonymous, shm, memfd
	Socket                              // an open socket
	Traced                              // another tracer is attached
	Device                              // a device file other than /dev/null, zero, full, random and urandom
	IOUring                             // an io_uring instance
	Pipe                                // a pipe or FIFO (not yet handled)
	DeletedFile                         // an open or mapped file that was unlinked
	Unsupported                         // another object the engine cannot restore
	Gone                                // the process does not exist or cannot be read
	Timers                              // a POSIX timer (timer_create) that cannot be carried
	Locks                               // a file lock or lease (POSIX, OFD, flock, lease, delegation): not carried
	Unrestorable                        // a restore could not reopen what it has: working directory, files, root
)

var reasonNames = map[ReasonCode]string{MultiThreaded: "multi-threaded", SharedMemory: "shared memory",
	Socket: "socket", Traced: "traced", Device: "device", IOUring: "io_uring", Pipe: "pipe",
	DeletedFile: "deleted file", Unsupported: "unsupported", Gone: "gone", Timers: "timers",
	Locks: "lock", Unrestorable: "not restorable"}

func (c ReasonCode) String() string {
	if s, ok := reasonNames[c]; ok {
		return s
	}
	return "reason " + strconv.Itoa(int(c))
}

// Reason is one cause of a refusal, with the object that causes it.
type Reason struct {
	Code   ReasonCode
	Detail string // e.g. "fd 3: socket:[1234]"
}

func (r Reason) String() string { return r.Code.String() + ": " + r.Detail }

// RefusalError says why a process cannot be checkpointed, like openMosix's
// /proc/PID/cantmove. It is returned before anything is frozen.
type RefusalError struct {
	Pid     int
	Reasons []Reason
}

func (e *RefusalError) Error() string {
	why := FormatReasons(e.Reasons)
	if !strings.HasPrefix(why, "\n") {
		why = " " + why
	}
	return fmt.Sprintf("checkpoint: process %d cannot move:%s", e.Pid, why)
}

// FormatReasons groups reasons by kind, in the order each kind first
// appears: "kind: detail; detail" for one kind; for several, one such line
// per kind, each on a line of its own after a newline and two spaces, so
// that "cannot move:" + FormatReasons(rs) reads
//
//	cannot move:
//	  lock: holds a write lock (POSIX) on /db.sqlite; holds an exclusive lock (flock) on /x
//	  socket: fd 3: socket:[77]
func FormatReasons(rs []Reason) string {
	var codes []ReasonCode
	by := map[ReasonCode][]string{}
	for _, r := range rs {
		if _, ok := by[r.Code]; !ok {
			codes = append(codes, r.Code)
		}
		by[r.Code] = append(by[r.Code], r.Detail)
	}
	lines := make([]string, len(codes))
	for i, c := range codes {
		lines[i] = c.String() + ": " + strings.Join(by[c], "; ")
	}
	if len(lines) == 1 {
		return lines[0]
	}
	return "\n  " + strings.Join(lines, "\n  ")
}

// Has reports whether the refusal includes code.
func (e *RefusalError) Has(code ReasonCode) bool {
	for _, r := range e.Reasons {
		if r.Code == code {
			return true
		}
	}
	return false
}

// procView is what the refusal decision looks at, read from /proc.
type procView struct {
	Threads   int
	TracerPid int
	// TrapPending: a SIGTRAP is pending and handled (see trapBit).
	TrapPending bool
	Maps        []Mapping
	Fds         []fdView
	Timers      []PosixTimer // POSIX timers listed in /proc/PID/timers
	TimerIDs    bool         // this kernel gives a timer its id back
	Locks       []heldLock
	Restore     restoreView
	// Sec is the process's seccomp mode, uid and capabilities; Self the
	// checker's, which a restore runs as.
	Sec, Self secView
	// Inotify are its inotify instances (CheckWith looks at their
	// queues).
	Inotify []KObject
	// InnerPipes are the pipes both of whose ends the process holds.
	InnerPipes map[uint64]bool
	// InnerPairs are its Unix stream socketpairs with both ends held;
	// PairWhy says why another socketpair is not carried.
	InnerPairs map[uint64]bool
	PairWhy    map[uint64]string
	// SharedWith holds, by inode, another process that maps the
	// process's MAP_SHARED anonymous memory.
	SharedWith map[uint64]int
	// ShmemSize holds, by start address, the size of the object behind
	// each mapping of gone shmem (-1: unknown).
	ShmemSize map[uint64]int64
	// Objects holds the refusals about kernel objects (an epoll watch
	// that a restore could not register again), decided against the
	// whole descriptor table, external descriptors included.
	Objects []Reason
}

// fdView is one open descriptor: its /proc/PID/fd link, file mode and,
// for a device, its number.
type fdView struct {
	Fd     int
	Target string
	Mode   fs.FileMode
	Rdev   uint64
	ID     fileID // the file's device and inode (zero if unknown)
	Size   int64  // a regular file's size
	Nlink  uint64 // its links
}

// refusals is the pure decision: every reason the process in v cannot move.
func refusals(v procView) []Reason {
	var rs []Reason
	add := func(c ReasonCode, f string, a ...any) { rs = append(rs, Reason{c, fmt.Sprintf(f, a...)}) }
	if v.TracerPid != 0 {
		add(Traced, "traced by pid %d", v.TracerPid)
	}
	if v.TrapPending {
		add(Unsupported, "a SIGTRAP is pending and the process handles it: a restore, which single-steps the process, would reset the handler (try again once the signal is taken)")
	}
	rs = append(rs, timerRefusals(v.Timers, v.TimerIDs)...)
	for _, m := range v.Maps {
		where := fmt.Sprintf("mapping %#x-%#x %s", m.Start, m.End, m.Path)
		if m.Kind == KindAnonShared {
			if why := anonSharedRefusal(m, &v); why != "" {
				add(SharedMemory, "%s: %s", where, why)
			}
			continue
		}
		switch {
		case strings.Contains(m.Path, "io_uring"):
			add(IOUring, "%s", where)
		case m.Flags&MapShared != 0 && !strings.HasPrefix(m.Path, "/") ||
			m.Flags&MapShared != 0 && (strings.HasPrefix(m.Path, "/dev/shm/") || strings.HasPrefix(m.Path, "/SYSV") ||
				strings.HasPrefix(m.Path, "/memfd:") || m.Path == "/dev/zero" || strings.HasPrefix(m.Path, "/dev/zero ")):
			add(SharedMemory, "%s", where)
		case strings.HasSuffix(m.Path, " (deleted)"):
			add(DeletedFile, "%s", where)
		case strings.HasPrefix(m.Path, "/dev/"):
			add(Device, "%s", where)
		case m.Kind == KindAnon && m.Path != "" && !strings.HasPrefix(m.Path, "[anon:") && !strings.HasPrefix(m.Path, "[anon_shmem:"):
			add(Unsupported, "%s", where)
		}
	}
	var deleted int64 // bytes of the deleted files carried
	for _, f := range v.Fds {
		where := fmt.Sprintf("fd %d: %s", f.Fd, f.Target)
		switch {
		case strings.HasPrefix(f.Target, "socket:"):
			id, _ := socketID(f.Target)
			if why := v.PairWhy[id]; why != "" {
				add(Socket, "%s: %s", where, why)
			} else if !v.InnerPairs[id] {
				add(Socket, "%s", where)
			}
		case strings.HasPrefix(f.Target, "pipe:") || f.Mode&fs.ModeNamedPipe != 0:
			if id, ok := pipeID(f.Target); !ok || !v.InnerPipes[id] {
				add(Pipe, "%s", where)
			}
		case f.Target == "anon_inode:[io_uring]":
			add(IOUring, "%s", where)
		case strings.HasSuffix(f.Target, " (deleted)"):
			if why := deletedRefusal(f); why != "" {
				add(DeletedFile, "%s: %s", where, why)
			} else {
				deleted += f.Size
			}
		case isObject(f.Target):
		case f.Target == "/dev/null" && f.Mode&fs.ModeCharDevice != 0:
		case f.Mode&fs.ModeCharDevice != 0 && statelessDevice(f.Rdev, f.Target):
		case f.Mode&fs.ModeDevice != 0:
			add(Device, "%s", where)
		case !strings.HasPrefix(f.Target, "/") || !f.Mode.IsRegular() && !f.Mode.IsDir():
			add(Unsupported, "%s", where)
		}
	}
	if deleted > maxDeletedBytes {
		add(DeletedFile, "deleted files of %d bytes in all: at most %d are carried", deleted, maxDeletedBytes)
	}
	for _, l := range v.Locks {
		add(Locks, "%s", l.describe())
	}
	rs = append(rs, v.Objects...)
	rs = append(rs, attrRefusals(v.Sec, v.Self)...)
	return append(rs, unrestorable(v.Restore, v.Fds, v.Maps)...)
}

// Check reports whether the process pid can be checkpointed, reading only
// /proc: it freezes nothing. It returns nil or a *RefusalError. See
// CheckWith for descriptors held from outside.
func Check(pid int) error { return CheckWith(pid, Options{}) }

func readProcView(pid int) (procView, error) {
	var v procView
	dir := "/proc/" + strconv.Itoa(pid)
	status, err := os.ReadFile(dir + "/status")
	if err != nil {
		return v, err
	}
	if exitedStatus(string(status)) {
		return v, errEnded
	}
	st, err := parseStatus(string(status))
	if err != nil {
		return v, err
	}
	v.Threads, v.TracerPid = st.Threads, st.TracerPid
	v.TrapPending = (st.SigPnd|st.ShdPnd)&trapBit != 0 && st.SigCgt&trapBit != 0
	v.Sec, v.Self = parseSecStatus(string(status)), selfSec()
	maps, err := os.ReadFile(dir + "/maps")
	if err != nil {
		return v, err
	}
	if v.Maps, err = parseMaps(string(maps)); err != nil {
		return v, err
	}
	if v.Fds, err = readFds(pid); err != nil {
		return v, err
	}
	v.SharedWith = sharedWith(pid, v.Maps)
	v.ShmemSize = shmemSizes(pid, v.Maps)
	pf, err := pipeFlags(pid, v.Fds)
	if err != nil {
		return v, err
	}
	v.InnerPipes = innerPipes(v.Fds, pf)
	if slices.ContainsFunc(v.Fds, func(f fdView) bool { return strings.HasPrefix(f.Target, "socket:") }) {
		socks, err := unixSockets()
		if err != nil {
			return v, err
		}
		v.InnerPairs, v.PairWhy = innerPairs(v.Fds, socks)
	}
	if v.Timers, err = readTimers(dir); err != nil {
		return v, err
	}
	v.TimerIDs = len(v.Timers) == 0 || timerIDs()
	if v.Locks, err = readLocks(pid, v.Fds); err != nil {
		return v, err
	}
	if v.Objects, v.Inotify, err = readObjectRefusals(pid, v.Fds); err != nil {
		return v, err
	}
	v.Restore, err = readRestoreView(pid, v.Fds, v.Maps)
	return v, err
}

func readFds(pid int) ([]fdView, error) {
	dir := "/proc/" + strconv.Itoa(pid) + "/fd/"
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var fds []fdView
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		target, err := os.Readlink(dir + e.Name())
		if err != nil {
			continue // closed meanwhile
		}
		f := fdView{Fd: fd, Target: target}
		if fi, err := os.Stat(dir + e.Name()); err == nil {
			f.Mode, f.ID = fi.Mode(), idOf(fi)
			if st, ok := fi.Sys().(*syscall.Stat_t); ok {
				f.Rdev, f.Size, f.Nlink = st.Rdev, st.Size, st.Nlink
			}
		}
		fds = append(fds, f)
	}
	sort.Slice(fds, func(i, j int) bool { return fds[i].Fd < fds[j].Fd })
	return fds, nil
}
