package vproc

import (
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

// Cache reads a node's process table again and again for a third less than
// Table (half of what Table cost when it read each file to end of file).
// It keeps each process's /proc/PID directory, stat and cmdline files open
// between calls and reads them again from the start: three system calls a
// process (fstat, pread, pread) instead of seven, and no path lookups. What
// is left is the kernel making the text of stat and reading the command
// line out of the process's memory. It keeps handles, not data: every call
// reads what each process is now, after exec, setuid or a rewritten argv
// alike.
//
// The files are bound to the process, not to its pid: once the process
// has ended they answer ESRCH, and if its pid names a new process the
// cache opens that one's files. Files of processes no longer listed are
// closed on the next call. At most MaxCached processes, and a quarter of
// the open-file limit, are held; processes beyond that are read as Table
// does.
//
// A Cache is safe for concurrent use; calls are served one at a time.
type Cache struct {
	dir  string
	max  int // processes whose files may be kept open
	mu   sync.Mutex
	open map[int]*procFiles // by pid
}

// MaxCached bounds the processes a Cache keeps open: three descriptors
// each, and in the kernel about 5 KiB (the stat file keeps a page).
const MaxCached = 4096

// filesPerProc is how many descriptors a cached process holds.
const filesPerProc = 3

// NewCache returns an empty cache of the processes in procDir (normally
// /proc). Close releases its files.
func NewCache(procDir string) *Cache {
	limit := uint64(MaxCached)
	var rl unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &rl) == nil {
		limit = min(limit, rl.Cur/4/filesPerProc)
	}
	return &Cache{dir: procDir, max: int(limit)}
}

// Table reads every process visible in the cache's /proc, as Table does.
func (c *Cache) Table() ([]Proc, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	pids, err := readPids(c.dir)
	if err != nil {
		return nil, err
	}
	// files[i] are the open files of pids[i]; not yet open (dir -1) for a
	// new process while there is room; nil to read it once.
	files := make([]*procFiles, len(pids))
	kept := 0
	for i, pid := range pids {
		if f := c.open[pid]; f != nil {
			files[i] = f
			delete(c.open, pid)
			kept++
		}
	}
	for _, f := range c.open {
		f.close() // not listed: the process has ended
	}
	room := c.max - kept
	for i := range files {
		if files[i] == nil && room > 0 {
			files[i] = &procFiles{dir: -1, stat: -1, cmd: -1}
			room--
		}
	}

	k := workers(len(pids))
	readers := make([]*reader, k)
	parts := make([][]Proc, k)
	readers[0] = newReader(c.dir)
	for w := 1; w < k; w++ {
		r := *readers[0]
		r.buf = make([]byte, bufSize)
		readers[w] = &r
	}
	parallel(k, len(pids), func(w, i int) {
		p, f, ok := readers[w].proc(pids[i], files[i])
		files[i] = f
		if ok {
			parts[w] = append(parts[w], p)
		}
	})

	c.open = nil
	if c.max > 0 {
		c.open = make(map[int]*procFiles, min(len(pids), c.max))
		for i, f := range files {
			if f != nil {
				c.open[pids[i]] = f
			}
		}
	}
	n := 0
	for _, part := range parts {
		n += len(part)
	}
	out := make([]Proc, 0, n)
	for _, part := range parts {
		out = append(out, part...)
	}
	return out, nil
}

// Close closes the files the cache holds. The cache still answers after,
// reading every process as Table does.
func (c *Cache) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, f := range c.open {
		f.close()
	}
	c.open, c.max = nil, 0
	return nil
}

// procFiles are the open files of one process, and the strings last read
// from them, reused while the text is unchanged so that a table of
// unchanged processes allocates little.
type procFiles struct {
	dir, stat, cmd int // descriptors, -1 if not open
	comm, cmdline  string
}

// openProc opens the files of process pid. stat and cmdline are opened
// from the directory, so all three belong to the same process even if pid
// is reused meanwhile.
func (f *procFiles) openProc(procDir string, pid int) error {
	var err error
	f.dir, err = unix.Open(procDir+"/"+strconv.Itoa(pid), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		f.dir = -1
		return err
	}
	if f.stat, err = unix.Openat(f.dir, "stat", unix.O_RDONLY|unix.O_CLOEXEC, 0); err != nil {
		f.stat = -1
		return err
	}
	if f.cmd, err = unix.Openat(f.dir, "cmdline", unix.O_RDONLY|unix.O_CLOEXEC, 0); err != nil {
		f.cmd = -1
		return err
	}
	return nil
}

func (f *procFiles) close() {
	for _, fd := range []*int{&f.dir, &f.stat, &f.cmd} {
		if *fd >= 0 {
			unix.Close(*fd)
			*fd = -1
		}
	}
}

// proc reads process pid through its files f, opening them first if they
// are new or belong to a process that has ended (pid may now name
// another); with f nil, or if they cannot be opened, it reads the process
// once. It returns the files to keep: f, or nil.
func (r *reader) proc(pid int, f *procFiles) (Proc, *procFiles, bool) {
	if f == nil {
		p, ok := r.once(pid)
		return p, nil, ok
	}
	if f.dir >= 0 {
		if p, ok := r.kept(pid, f); ok {
			return p, f, true
		}
		f.close()
	}
	if f.openProc(r.dir, pid) != nil {
		f.close()
		p, ok := r.once(pid)
		return p, nil, ok
	}
	p, ok := r.kept(pid, f)
	if !ok {
		f.close()
		return Proc{}, nil, false
	}
	return p, f, true
}

// kept reads a process through its open files; ok is false if it has
// ended.
func (r *reader) kept(pid int, f *procFiles) (Proc, bool) {
	// The directory first: that of an ended process answers fstat, owned
	// by root, but its stat file then fails.
	var fi unix.Stat_t
	if unix.Fstat(f.dir, &fi) != nil {
		return Proc{}, false
	}
	b, err := readAt(f.stat, r.buf)
	if err != nil {
		return Proc{}, false
	}
	p, err := r.fromStat(pid, &fi, b, f)
	if err != nil {
		return Proc{}, false
	}
	b, err = readAt(f.cmd, r.buf)
	if err == unix.ESRCH {
		return Proc{}, false
	}
	r.setCmdline(&p, b, f)
	f.comm, f.cmdline = p.Comm, p.Cmdline
	return p, true
}
