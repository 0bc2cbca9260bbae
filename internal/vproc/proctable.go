package vproc

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/ssi-cluster/ssi/internal/procstat"
)

// Proc is one process of a node's table.
type Proc struct {
	Pid, PPid, PGid, Sid int
	UID, GID             int     // effective (the owner of /proc/PID)
	State                string  // R, S, D, Z, T, ...
	Comm                 string  // the kernel's short name
	Cmdline              string  // arguments joined by spaces; [comm] for kernel threads
	RSS                  uint64  // resident bytes
	CPUTime              float64 // seconds of user+system time
	CPUPercent           float64 // CPU time over lifetime, as ps shows it
	Start                float64 // when it started, in seconds after boot (Uptime)
	Threads              int
}

// clockTicks is USER_HZ, 100 on every Linux architecture ssi runs on.
const clockTicks = 100

// bufSize is the buffer one file of a process is read into: /proc/PID/stat
// is at most about 1.2 KiB, and a longer command line is cut here.
const bufSize = 4096

// statFields are the fields of /proc/PID/stat that ps needs. comm points
// into the parsed buffer.
type statFields struct {
	pid, ppid, pgid, sid int
	state                string
	comm                 []byte
	utime, stime         uint64
	threads              int
	start                uint64 // ticks after boot
	rssPages             uint64
}

// parseStat parses /proc/PID/stat (fields up to rss, 24). It does not
// allocate.
func parseStat(b []byte) (statFields, error) {
	st, err := procstat.Parse(b)
	if err == nil {
		err = st.Need(24)
	}
	if err != nil {
		return statFields{}, err
	}
	num := func(k int) uint64 {
		v, e := st.Uint(k)
		if e != nil && err == nil {
			err = e
		}
		return v
	}
	s := statFields{pid: st.Pid, comm: st.Comm, state: stateName(st.Field(3))}
	s.ppid, s.pgid, s.sid = int(num(4)), int(num(5)), int(num(6))
	s.utime, s.stime = num(14), num(15)
	s.threads = int(num(20))
	s.start = num(22)
	s.rssPages = num(24)
	return s, err
}

// states holds the one-letter process states as strings, so that a table
// does not allocate one per process.
var states = func() (s [128]string) {
	for i := range s {
		s[i] = string(rune(i))
	}
	return s
}()

func stateName(b []byte) string {
	if len(b) == 1 && b[0] < 128 {
		return states[b[0]]
	}
	return string(b)
}

// parseIDs reads the real uid and gid from /proc/PID/status.
func parseIDs(b []byte) (uid, gid int, err error) {
	uid, gid = -1, -1
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || (k != "Uid" && k != "Gid") {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			return 0, 0, fmt.Errorf("status: empty %s", k)
		}
		n, e := strconv.Atoi(f[0])
		if e != nil {
			return 0, 0, fmt.Errorf("status: %s: %w", k, e)
		}
		if k == "Uid" {
			uid = n
		} else {
			gid = n
		}
	}
	if uid < 0 || gid < 0 {
		return 0, 0, errors.New("status: no Uid or Gid")
	}
	return uid, gid, nil
}

// Table reads every process visible in procDir (normally /proc), opening
// and closing each process's files. Processes that end while it reads are
// skipped. A caller that reads the table again and again should keep a
// Cache instead.
func Table(procDir string) ([]Proc, error) {
	return (&Cache{dir: procDir}).Table()
}

// Lookup reads one process; ok is false if there is no such process.
func Lookup(procDir string, pid int) (Proc, bool) {
	r := newReader(procDir)
	return r.once(pid)
}

// readPids lists the processes in procDir: its entries named by a number.
// It reads the directory with getdents64 into one buffer and parses the
// names where they lie, rather than making a string of each.
func readPids(procDir string) ([]int, error) {
	fd, err := unix.Open(procDir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: procDir, Err: err}
	}
	defer unix.Close(fd)
	buf := make([]byte, 32<<10)
	var pids []int
	for {
		n, err := unix.Getdents(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "getdents", Path: procDir, Err: err}
		}
		if n <= 0 {
			return pids, nil
		}
		if pids, err = appendPids(pids, buf[:n]); err != nil {
			return nil, fmt.Errorf("%s: %w", procDir, err)
		}
	}
}

// appendPids appends the numbers that name entries of b, records of
// struct linux_dirent64 (ino u64, off s64, reclen u16, type u8, name).
func appendPids(pids []int, b []byte) ([]int, error) {
	const nameOff = 19
	for len(b) > 0 {
		if len(b) < nameOff {
			return pids, errors.New("getdents: short record")
		}
		reclen := int(binary.NativeEndian.Uint16(b[16:18]))
		if reclen <= nameOff || reclen > len(b) {
			return pids, fmt.Errorf("getdents: record of %d bytes in %d", reclen, len(b))
		}
		name := b[nameOff:reclen]
		if i := bytes.IndexByte(name, 0); i >= 0 {
			name = name[:i]
		}
		if pid, ok := procstat.Decimal(name); ok && pid > 0 {
			pids = append(pids, int(pid))
		}
		b = b[reclen:]
	}
	return pids, nil
}

// Uptime is the seconds since boot of the machine of procDir, 0 if it
// cannot be read; a process's age is Uptime less its Start.
func Uptime(procDir string) float64 { return readUptime(procDir) }

func readUptime(procDir string) float64 {
	b, err := os.ReadFile(filepath.Join(procDir, "uptime"))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

// reader reads processes of one /proc, for one goroutine: its buffer is
// reused for every file.
type reader struct {
	dir    string
	uptime float64
	page   uint64
	buf    []byte
}

func newReader(procDir string) *reader {
	return &reader{dir: procDir, uptime: readUptime(procDir), page: uint64(os.Getpagesize()), buf: make([]byte, bufSize)}
}

// once reads process pid by opening and closing its files: seven system
// calls.
func (r *reader) once(pid int) (Proc, bool) {
	dir := r.dir + "/" + strconv.Itoa(pid)
	// /proc/PID belongs to the process's effective uid and gid (what ps
	// shows; the directory, unlike the files in it, does so even when the
	// process is not dumpable): one stat instead of reading status.
	var fi unix.Stat_t
	if err := unix.Stat(dir, &fi); err != nil {
		return Proc{}, false
	}
	b, err := readSmall(dir+"/stat", r.buf)
	if err != nil {
		return Proc{}, false
	}
	p, err := r.fromStat(pid, &fi, b, nil)
	if err != nil {
		return Proc{}, false
	}
	b, err = readSmall(dir+"/cmdline", r.buf)
	if errors.Is(err, unix.ESRCH) || errors.Is(err, unix.ENOENT) {
		return Proc{}, false // it ended
	}
	r.setCmdline(&p, b, nil)
	return p, true
}

// fromStat makes the Proc of pid, but for its command line, from the owner
// of its /proc directory and the text of its stat file. The strings of
// prev, the process's last reading, are reused where they are unchanged.
func (r *reader) fromStat(pid int, owner *unix.Stat_t, stat []byte, prev *procFiles) (Proc, error) {
	st, err := parseStat(stat)
	if err != nil {
		return Proc{}, err
	}
	if st.pid != pid {
		return Proc{}, fmt.Errorf("stat of pid %d names pid %d", pid, st.pid)
	}
	p := Proc{Pid: pid, PPid: st.ppid, PGid: st.pgid, Sid: st.sid, UID: int(owner.Uid), GID: int(owner.Gid),
		State: st.state, RSS: st.rssPages * r.page, CPUTime: float64(st.utime+st.stime) / clockTicks,
		Threads: st.threads}
	if prev != nil && string(st.comm) == prev.comm {
		p.Comm = prev.comm
	} else {
		p.Comm = string(st.comm)
	}
	p.Start = float64(st.start) / clockTicks
	if age := r.uptime - p.Start; age > 0 {
		p.CPUPercent = 100 * p.CPUTime / age
	}
	return p, nil
}

// setCmdline sets p.Cmdline from the text of /proc/PID/cmdline (changed in
// place), reusing prev's string when it is unchanged.
func (r *reader) setCmdline(p *Proc, cmd []byte, prev *procFiles) {
	for i, c := range cmd {
		if c == 0 {
			cmd[i] = ' '
		}
	}
	cmd = bytes.TrimSpace(cmd)
	switch {
	case len(cmd) == 0 && prev != nil && isBracketed(prev.cmdline, p.Comm):
		p.Cmdline = prev.cmdline
	case len(cmd) == 0:
		p.Cmdline = "[" + p.Comm + "]"
	case prev != nil && string(cmd) == prev.cmdline:
		p.Cmdline = prev.cmdline
	default:
		p.Cmdline = string(cmd)
	}
}

// isBracketed tells whether s is "[" + comm + "]".
func isBracketed(s, comm string) bool {
	return len(s) == len(comm)+2 && s[0] == '[' && s[len(s)-1] == ']' && s[1:len(s)-1] == comm
}

// Owner returns the real uid of process pid.
func Owner(procDir string, pid int) (int, error) {
	b, err := os.ReadFile(filepath.Join(procDir, strconv.Itoa(pid), "status"))
	if err != nil {
		return 0, err
	}
	uid, _, err := parseIDs(b)
	return uid, err
}

// UIDs returns the real, effective and saved uids of process pid (what
// the kernel's kill permission check looks at).
func UIDs(procDir string, pid int) ([3]int, error) {
	b, err := os.ReadFile(filepath.Join(procDir, strconv.Itoa(pid), "status"))
	if err != nil {
		return [3]int{}, err
	}
	return parseUIDs(b)
}

// parseUIDs reads the first three fields of the Uid line of a status
// file.
func parseUIDs(b []byte) ([3]int, error) {
	var out [3]int
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || k != "Uid" {
			continue
		}
		f := strings.Fields(v)
		if len(f) < 3 {
			return out, fmt.Errorf("status: Uid has %d fields", len(f))
		}
		for i := range out {
			n, err := strconv.Atoi(f[i])
			if err != nil || n < 0 {
				return out, fmt.Errorf("status: Uid: %q", f[i])
			}
			out[i] = n
		}
		return out, nil
	}
	return out, errors.New("status: no Uid")
}

// readSmall reads a small /proc file into buf with open, one read and
// close (os.ReadFile also stats it and reads until end of file): a process
// table reads two files of each process, so system calls are most of its
// cost. One read is enough: stat and cmdline give all of their text, up to
// len(buf), to every read. A longer file is cut at len(buf), which only
// shortens a very long command line.
func readSmall(path string, buf []byte) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	return readAt(fd, buf)
}

// readAt reads a /proc file from its start with one pread: a stat or
// cmdline file kept open gives the process's text as it is now.
func readAt(fd int, buf []byte) ([]byte, error) {
	for {
		n, err := unix.Pread(fd, buf, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
}

// workers is how many goroutines read a table of n processes: reading /proc
// is system calls, most of them in the kernel's text generation, so they
// are spread over the CPUs, but a small table is not worth the goroutines.
func workers(n int) int {
	return min(runtime.GOMAXPROCS(0), max(1, n/256))
}

// parallel runs f(w, i) for every i in [0, n), spread over k goroutines
// numbered w.
func parallel(k, n int, f func(w, i int)) {
	var wg sync.WaitGroup
	for w := range k {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += k {
				f(w, i)
			}
		}()
	}
	wg.Wait()
}
