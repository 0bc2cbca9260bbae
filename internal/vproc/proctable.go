package vproc

import (
	"bytes"
	"errors"
	"fmt"
	"golang.org/x/sys/unix"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
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
	Threads              int
}

// clockTicks is USER_HZ, 100 on every Linux architecture ssi runs on.
const clockTicks = 100

// statFields are the fields of /proc/PID/stat that ps needs.
type statFields struct {
	pid, ppid, pgid, sid int
	state, comm          string
	utime, stime         uint64
	threads              int
	start                uint64 // ticks after boot
	rssPages             uint64
}

// parseStat parses /proc/PID/stat. The comm field may hold spaces and ')',
// so the fields are read after the last ')'.
func parseStat(b []byte) (statFields, error) {
	var s statFields
	open := bytes.IndexByte(b, '(')
	close := bytes.LastIndexByte(b, ')')
	if open < 1 || close < open {
		return s, errors.New("stat: no (comm)")
	}
	pid, err := strconv.Atoi(string(bytes.TrimSpace(b[:open])))
	if err != nil {
		return s, fmt.Errorf("stat: pid: %w", err)
	}
	s.pid, s.comm = pid, string(b[open+1:close])
	f := strings.Fields(string(b[close+1:]))
	// After comm: state(3) ppid(4) pgrp(5) session(6) ... utime(14) stime(15)
	// ... num_threads(20) ... starttime(22) vsize(23) rss(24).
	if len(f) < 22 {
		return s, fmt.Errorf("stat: %d fields after comm, want at least 22", len(f))
	}
	num := func(i int) uint64 {
		v, e := strconv.ParseUint(f[i], 10, 64)
		if e != nil && err == nil {
			err = fmt.Errorf("stat: field %d: %w", i+3, e)
		}
		return v
	}
	s.state = f[0]
	s.ppid, s.pgid, s.sid = int(num(1)), int(num(2)), int(num(3))
	s.utime, s.stime = num(11), num(12)
	s.threads = int(num(17))
	s.start = num(19)
	s.rssPages = num(21)
	return s, err
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

// Table reads every process visible in procDir (normally /proc). Processes
// that end while it reads are skipped.
func Table(procDir string) ([]Proc, error) {
	names, err := readNames(procDir)
	if err != nil {
		return nil, err
	}
	uptime := readUptime(procDir)
	page := uint64(os.Getpagesize())
	// Reading /proc is system calls, most of them in the kernel's text
	// generation: spread the processes over the CPUs.
	workers := min(runtime.GOMAXPROCS(0), max(1, len(names)/256))
	parts := make([][]Proc, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 4096)
			for i := w; i < len(names); i += workers {
				pid, err := strconv.Atoi(names[i])
				if err != nil {
					continue
				}
				if p, ok := readProc(procDir+"/"+names[i], pid, uptime, page, buf); ok {
					parts[w] = append(parts[w], p)
				}
			}
		}()
	}
	wg.Wait()
	var out []Proc
	for _, part := range parts {
		out = append(out, part...)
	}
	return out, nil
}

// Lookup reads one process; ok is false if there is no such process.
func Lookup(procDir string, pid int) (Proc, bool) {
	return readProc(procDir+"/"+strconv.Itoa(pid), pid, readUptime(procDir), uint64(os.Getpagesize()), make([]byte, 4096))
}

func readNames(procDir string) ([]string, error) {
	d, err := os.Open(procDir)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	return d.Readdirnames(-1)
}

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

func readProc(dir string, pid int, uptime float64, page uint64, buf []byte) (Proc, bool) {
	sb, err := readSmall(dir+"/stat", buf)
	if err != nil {
		return Proc{}, false
	}
	st, err := parseStat(sb)
	if err != nil || st.pid != pid {
		return Proc{}, false
	}
	// /proc/PID belongs to the process's effective uid and gid (what ps
	// shows): one stat instead of reading and parsing status.
	var fi unix.Stat_t
	if err := unix.Stat(dir, &fi); err != nil {
		return Proc{}, false
	}
	cmd, _ := readSmall(dir+"/cmdline", buf)
	p := Proc{Pid: pid, PPid: st.ppid, PGid: st.pgid, Sid: st.sid, UID: int(fi.Uid), GID: int(fi.Gid), State: st.state,
		Comm: st.comm, RSS: st.rssPages * page, CPUTime: float64(st.utime+st.stime) / clockTicks, Threads: st.threads}
	p.Cmdline = strings.TrimSpace(strings.ReplaceAll(string(cmd), "\x00", " "))
	if p.Cmdline == "" {
		p.Cmdline = "[" + st.comm + "]"
	}
	if age := uptime - float64(st.start)/clockTicks; age > 0 {
		p.CPUPercent = 100 * p.CPUTime / age
	}
	return p, true
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

// readSmall reads a small /proc file into buf with open, read and close
// only (os.ReadFile also stats it): a process table reads two files of each
// process, so system calls are most of its cost. A longer file is cut at
// len(buf), which only shortens a very long command line.
func readSmall(path string, buf []byte) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	n := 0
	for n < len(buf) {
		m, err := unix.Read(fd, buf[n:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if m == 0 {
			break
		}
		n += m
	}
	return buf[:n], nil
}
