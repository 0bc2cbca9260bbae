package load

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// fakeProc describes one process of a fake proc directory.
type fakeProc struct {
	pid, ppid                    int
	comm                         string
	utime, stime, cutime, cstime uint64
	start                        uint64
	// threads holds the state of each thread; the first is the main
	// thread (tid = pid), the others get tids pid+1, pid+2, ...
	threads string
}

// statLine formats a stat line the way the kernel does, with the fields
// the sampler does not use set to plausible constants.
func statLine(pid, ppid int, comm string, state byte, utime, stime, cutime, cstime uint64, threads int, start uint64) string {
	return fmt.Sprintf("%d (%s) %s %d %d %d 0 -1 4194560 100 0 0 0 %d %d %d %d 20 0 %d 0 %d 10000000 300 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n",
		pid, comm, []byte{state}, ppid, pid, pid, utime, stime, cutime, cstime, threads, start)
}

// writeFakeProc (re)creates dir as a proc directory holding procs and a
// meminfo file; selfTask, if not empty, becomes the thread-self link.
func writeFakeProc(t *testing.T, dir string, procs []fakeProc, selfTask string) {
	t.Helper()
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	write := func(path, data string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(dir, "meminfo"), sampleMeminfo)
	write(filepath.Join(dir, "uptime"), "100.00 150.00\n") // a non-pid entry
	for _, p := range procs {
		comm := p.comm
		if comm == "" {
			comm = "proc"
		}
		pdir := filepath.Join(dir, fmt.Sprint(p.pid))
		write(filepath.Join(pdir, "stat"),
			statLine(p.pid, p.ppid, comm, p.threads[0], p.utime, p.stime, p.cutime, p.cstime, len(p.threads), p.start))
		for i := range len(p.threads) {
			tid := p.pid + i
			write(filepath.Join(pdir, "task", fmt.Sprint(tid), "stat"),
				statLine(tid, p.ppid, comm, p.threads[i], 0, 0, 0, 0, len(p.threads), p.start))
		}
	}
	if selfTask != "" {
		if err := os.Symlink(selfTask, filepath.Join(dir, "thread-self")); err != nil {
			t.Fatal(err)
		}
	}
}
