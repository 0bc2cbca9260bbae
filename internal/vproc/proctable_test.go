package vproc

import (
	"encoding/binary"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	for _, tc := range []struct {
		line string
		want statFields
	}{
		{"4242 (my (odd) prog) S 1 4242 4242 0 -1 4194304 100 0 0 0 250 50 0 0 20 0 3 0 1000 1000000 512 18446744073709551615",
			statFields{pid: 4242, comm: []byte("my (odd) prog"), state: "S", ppid: 1, pgid: 4242, sid: 4242,
				utime: 250, stime: 50, threads: 3, start: 1000, rssPages: 512}},
		{"7 (a) b) R 1 2 3 0 -1 0 0 0 0 0 9 8 0 0 20 0 1 0 5 0 6 0 0 0\n",
			statFields{pid: 7, comm: []byte("a) b"), state: "R", ppid: 1, pgid: 2, sid: 3,
				utime: 9, stime: 8, threads: 1, start: 5, rssPages: 6}},
		{"2 (kthreadd) I 0 0 0 0 -1 2129984 0 0 0 0 0 0 0 0 20 0 1 0 1 0 0 18446744073709551615 0 0",
			statFields{pid: 2, comm: []byte("kthreadd"), state: "I", threads: 1, start: 1}},
		{"3 () Z 1 3 3 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 1 0 0",
			statFields{pid: 3, comm: []byte{}, state: "Z", ppid: 1, pgid: 3, sid: 3, threads: 1, start: 1}},
	} {
		s, err := parseStat([]byte(tc.line))
		if err != nil {
			t.Errorf("parseStat(%q): %v", tc.line, err)
			continue
		}
		if string(s.comm) != string(tc.want.comm) {
			t.Errorf("parseStat(%q) comm = %q, want %q", tc.line, s.comm, tc.want.comm)
		}
		s.comm, tc.want.comm = nil, nil
		if !reflect.DeepEqual(s, tc.want) {
			t.Errorf("parseStat(%q) = %+v, want %+v", tc.line, s, tc.want)
		}
	}
	for _, bad := range []string{
		"", "12 comm S", "x (c) S 1 2 3", "1 (c) S 1", ") 1 (c",
		"1 (c) S 1 2 3 0 -1 0 0 0 0 0 x 0 0 0 20 0 1 0 5 0 0",  // utime
		"1 (c) S -1 2 3 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 0 0", // ppid
		"1 (c) S 1 2 3 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 0",    // no rss
		"99999999999999999999 (c) S 1 2 3 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 0 0",
	} {
		if _, err := parseStat([]byte(bad)); err == nil {
			t.Errorf("parseStat(%q) succeeded", bad)
		}
	}
}

func TestParseStatDoesNotAllocate(t *testing.T) {
	line := []byte("4242 (prog) S 1 4242 4242 0 -1 4194304 100 0 0 0 250 50 0 0 20 0 3 0 1000 1000000 512 0")
	if n := testing.AllocsPerRun(100, func() { parseStat(line) }); n != 0 {
		t.Errorf("parseStat allocates %v times", n)
	}
}

func TestParseIDs(t *testing.T) {
	for _, tc := range []struct {
		in       string
		uid, gid int
		ok       bool
	}{
		{"Name:\tx\nUid:\t1000\t1001\t1000\t1000\nGid:\t100\t100\t100\t100\n", 1000, 100, true},
		{"Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0", 0, 0, true},
		{"Name:\tx\nUid:\t1000\t1000\t1000\t1000\n", 0, 0, false},
		{"Uid:\nGid:\t1\n", 0, 0, false},
		{"Uid:\tx\nGid:\t1\n", 0, 0, false},
	} {
		uid, gid, err := parseIDs([]byte(tc.in))
		if (err == nil) != tc.ok || uid != tc.uid || gid != tc.gid {
			t.Errorf("parseIDs(%q) = %d, %d, %v; want %d, %d, ok %v", tc.in, uid, gid, err, tc.uid, tc.gid, tc.ok)
		}
	}
}

func TestSetCmdline(t *testing.T) {
	r := &reader{}
	for _, tc := range []struct {
		raw, comm, want string
	}{
		{"sleep\x003600\x00", "sleep", "sleep 3600"},
		{"", "kworker/0:1", "[kworker/0:1]"},
		{"\x00\x00", "x", "[x]"},
		{"nginx: worker process\x00\x00\x00", "nginx", "nginx: worker process"},
	} {
		p := Proc{Comm: tc.comm}
		r.setCmdline(&p, []byte(tc.raw), nil)
		if p.Cmdline != tc.want {
			t.Errorf("cmdline %q = %q, want %q", tc.raw, p.Cmdline, tc.want)
		}
		prev := &procFiles{cmdline: tc.want}
		if n := testing.AllocsPerRun(10, func() { r.setCmdline(&p, []byte(tc.raw), prev) }); n > 1 { // the []byte conversion
			t.Errorf("cmdline %q unchanged allocates %v times", tc.raw, n)
		}
	}
}

// dirent is one linux_dirent64 record of name, padded to 8 bytes.
func dirent(name string) []byte {
	n := (19 + len(name) + 1 + 7) &^ 7
	b := make([]byte, n)
	binary.NativeEndian.PutUint16(b[16:], uint16(n))
	copy(b[19:], name)
	return b
}

func TestAppendPids(t *testing.T) {
	for _, tc := range []struct {
		what string
		b    []byte
		want []int
		ok   bool
	}{
		{"pids and others", slices.Concat(dirent("."), dirent(".."), dirent("1"), dirent("self"), dirent("4194303"), dirent("0"), dirent("12x")),
			[]int{1, 4194303}, true},
		{"empty", nil, nil, true},
		{"short record", dirent("1")[:10], nil, false},
		{"record longer than the buffer", dirent("1")[:20], nil, false},
		{"zero length", make([]byte, 24), nil, false},
	} {
		got, err := appendPids(nil, tc.b)
		if (err == nil) != tc.ok || !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, %v; want %v, ok %v", tc.what, got, err, tc.want, tc.ok)
		}
	}
}

func TestReadPids(t *testing.T) {
	dir := t.TempDir()
	for i := range 3000 { // more than one getdents buffer
		if err := os.Mkdir(filepath.Join(dir, strconv.Itoa(i+1)), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.Mkdir(filepath.Join(dir, "self"), 0o755)
	pids, err := readPids(dir)
	slices.Sort(pids)
	if err != nil || len(pids) != 3000 || pids[0] != 1 || pids[2999] != 3000 {
		t.Errorf("readPids = %d pids (%v...), %v", len(pids), pids[:min(3, len(pids))], err)
	}
	if pids, err := readPids("/proc"); err != nil || !slices.Contains(pids, os.Getpid()) {
		t.Errorf("readPids(/proc) = %d pids, %v; want this process's", len(pids), err)
	}
	if _, err := readPids(filepath.Join(dir, "none")); err == nil {
		t.Error("readPids of a missing directory succeeded")
	}
}

func TestTableSeesSelf(t *testing.T) {
	procs, err := Table("/proc")
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, p := range procs {
		found = found || p.Comm == "vproc.test"
	}
	if !found {
		t.Errorf("the test process is not in the table of %d processes", len(procs))
	}
}

// startSleepers starts n children that sleep until the test ends, and
// waits until they sleep.
func startSleepers(tb testing.TB, n int, args ...string) []*exec.Cmd {
	tb.Helper()
	if len(args) == 0 {
		args = []string{"sleep", "3600"}
	}
	var cmds []*exec.Cmd
	tb.Cleanup(func() {
		for _, c := range cmds {
			c.Process.Kill()
			c.Wait()
		}
	})
	for range n {
		c := exec.Command(args[0], args[1:]...)
		if err := c.Start(); err != nil {
			tb.Fatal(err)
		}
		cmds = append(cmds, c)
	}
	// Until a child sleeps its state and size may still change.
	deadline := time.Now().Add(10 * time.Second)
	for _, c := range cmds {
		for {
			p, ok := Lookup("/proc", c.Process.Pid)
			if ok && p.State == "S" {
				break
			}
			if time.Now().After(deadline) {
				tb.Fatalf("child %d does not sleep: %+v", c.Process.Pid, p)
			}
			time.Sleep(time.Millisecond)
		}
	}
	return cmds
}

// byPid picks the processes of cmds out of a table, without CPUPercent
// (it moves with the clock).
func byPid(procs []Proc, cmds ...*exec.Cmd) map[int]Proc {
	want := map[int]bool{}
	for _, c := range cmds {
		want[c.Process.Pid] = true
	}
	out := map[int]Proc{}
	for _, p := range procs {
		if want[p.Pid] {
			p.CPUPercent = 0
			out[p.Pid] = p
		}
	}
	return out
}

func mustTable(t *testing.T, table func() ([]Proc, error), cmds ...*exec.Cmd) map[int]Proc {
	t.Helper()
	procs, err := table()
	if err != nil {
		t.Fatal(err)
	}
	return byPid(procs, cmds...)
}

func TestCacheMatchesTable(t *testing.T) {
	for _, max := range []int{MaxCached, 3, 0} {
		cmds := startSleepers(t, 10)
		c := NewCache("/proc")
		if max < c.max {
			c.max = max
		}
		once := mustTable(t, func() ([]Proc, error) { return Table("/proc") }, cmds...)
		for round := range 3 {
			got := mustTable(t, c.Table, cmds...)
			if len(got) != len(cmds) {
				t.Fatalf("max %d, round %d: %d of %d children listed", max, round, len(got), len(cmds))
			}
			for pid, p := range got {
				if p != once[pid] {
					t.Errorf("max %d, round %d: cache read %+v, Table %+v", max, round, p, once[pid])
				}
				if p.Cmdline != "sleep 3600" || p.Comm != "sleep" || p.PPid != os.Getpid() || p.UID != os.Geteuid() {
					t.Errorf("max %d: %+v", max, p)
				}
			}
			if len(c.open) > c.max {
				t.Errorf("max %d: %d processes held", c.max, len(c.open))
			}
		}
		c.Close()
	}
}

func TestCacheFollowsExec(t *testing.T) {
	// The same process (pid and start time) with a new command line,
	// comm and uid: the cache must show what it is now.
	args := []string{"sh", "-c", "read x; exec sleep 3600"}
	if os.Geteuid() == 0 {
		if _, err := exec.LookPath("setpriv"); err == nil {
			args[2] = "read x; exec setpriv --reuid=65534 --regid=65534 --clear-groups sleep 3600"
		}
	}
	sh := exec.Command(args[0], args[1:]...)
	in, err := sh.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := sh.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { sh.Process.Kill(); sh.Wait() }()
	c := NewCache("/proc")
	defer c.Close()
	pid := sh.Process.Pid
	before := mustTable(t, c.Table, sh)[pid]
	if before.Comm != "sh" || before.Cmdline != strings.Join(args, " ") {
		t.Fatalf("before exec: %+v", before)
	}
	held := *c.open[pid]
	io.WriteString(in, "\n")
	deadline := time.Now().Add(10 * time.Second)
	for {
		p := mustTable(t, c.Table, sh)[pid]
		if p.Comm == "sleep" && p.Cmdline == "sleep 3600" {
			if strings.Contains(args[2], "setpriv") && (p.UID != 65534 || p.GID != 65534) {
				t.Errorf("after setuid exec: uid %d gid %d, want 65534", p.UID, p.GID)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after exec the cache still reads %+v", p)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if f := c.open[pid]; f == nil || f.dir != held.dir || f.stat != held.stat || f.cmd != held.cmd {
		t.Errorf("the process's files were reopened (%+v, then %+v): this test wants the kept ones read", held, f)
	}
}

func TestCacheReusedPid(t *testing.T) {
	cmds := startSleepers(t, 2)
	a, b := cmds[0], cmds[1]
	c := NewCache("/proc")
	defer c.Close()
	mustTable(t, c.Table, cmds...)
	a.Process.Kill()
	a.Wait()
	// b's pid as if it were a's reused: the cache holds the files of the
	// ended a under it.
	c.open[b.Process.Pid].close()
	c.open[b.Process.Pid] = c.open[a.Process.Pid]
	delete(c.open, a.Process.Pid)
	got := mustTable(t, c.Table, cmds...)
	if _, ok := got[a.Process.Pid]; ok {
		t.Errorf("ended process %d listed", a.Process.Pid)
	}
	if p, ok := got[b.Process.Pid]; !ok || p.Cmdline != "sleep 3600" {
		t.Errorf("process %d behind a reused pid: %+v, %v", b.Process.Pid, p, ok)
	}
	if _, ok := c.open[a.Process.Pid]; ok || c.open[b.Process.Pid] == nil {
		t.Errorf("held after: %v", c.open)
	}
}

func TestCacheClosesFiles(t *testing.T) {
	// fds counts this process's descriptors of /proc/PID, /proc/PID/stat
	// and /proc/PID/cmdline (" (deleted)" once a process of the machine
	// listed in the cache has ended meanwhile).
	held := regexp.MustCompile(`^/proc/[0-9]+(/stat|/cmdline)?( \(deleted\))?$`)
	fds := func() int {
		d, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, e := range d {
			if l, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && held.MatchString(l) {
				n++
			}
		}
		return n
	}
	cmds := startSleepers(t, 5)
	base := fds()
	c := NewCache("/proc")
	mustTable(t, c.Table, cmds...)
	open := fds() - base
	if open != filesPerProc*len(c.open) || len(c.open) < len(cmds) {
		t.Errorf("%d descriptors held for %d processes", open, len(c.open))
	}
	cmds[0].Process.Kill()
	cmds[0].Wait()
	mustTable(t, c.Table, cmds...)
	// Other processes of the machine may have come and gone meanwhile.
	if _, ok := c.open[cmds[0].Process.Pid]; ok {
		t.Error("the files of an ended child are kept")
	}
	if n := fds() - base; n != filesPerProc*len(c.open) {
		t.Errorf("%d descriptors held for %d processes after a child ended", n, len(c.open))
	}
	c.Close()
	if n := fds(); n != base {
		t.Errorf("%d descriptors after Close, want %d", n, base)
	}
	if procs := mustTable(t, c.Table, cmds...); len(procs) != len(cmds)-1 || fds() != base {
		t.Errorf("after Close: %d children listed, %d descriptors", len(procs), fds()-base)
	}
}

func TestCacheOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to start a process as another user")
	}
	cmd := exec.Command("sleep", "3600")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65533}}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	c := NewCache("/proc")
	defer c.Close()
	for range 2 {
		p := mustTable(t, c.Table, cmd)[cmd.Process.Pid]
		if p.UID != 65534 || p.GID != 65533 {
			t.Errorf("uid %d gid %d, want 65534 65533", p.UID, p.GID)
		}
	}
	if p, ok := Lookup("/proc", cmd.Process.Pid); !ok || p.UID != 65534 {
		t.Errorf("Lookup: %+v, %v", p, ok)
	}
}

func TestLookup(t *testing.T) {
	cmds := startSleepers(t, 1, "sleep", "3600", "0.5")
	p, ok := Lookup("/proc", cmds[0].Process.Pid)
	if !ok || p.Cmdline != "sleep 3600 0.5" || p.PPid != os.Getpid() || p.State == "" || p.Threads != 1 {
		t.Errorf("Lookup = %+v, %v", p, ok)
	}
	cmds[0].Process.Kill()
	cmds[0].Wait()
	if p, ok := Lookup("/proc", cmds[0].Process.Pid); ok {
		t.Errorf("Lookup of an ended process = %+v", p)
	}
}

func FuzzParseStat(f *testing.F) {
	f.Add([]byte("1 (init) S 0 1 1 0 -1 4194560 1 0 0 0 1 2 0 0 20 0 1 0 5 1000 100 1"))
	f.Add([]byte("2 (a) b) R 1 2 2 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 0 0 0"))
	f.Fuzz(func(t *testing.T, b []byte) { parseStat(b) })
}

func FuzzParseIDs(f *testing.F) {
	f.Add([]byte("Name:\tx\nUid:\t1000\t1000\t1000\t1000\nGid:\t100\t100\t100\t100\n"))
	f.Fuzz(func(t *testing.T, b []byte) { parseIDs(b) })
}

// benchProcs is how many sleeping children the table benchmarks add to
// this machine's processes, as a node of `go run ./bench ps` has.
const benchProcs = 1000

// BenchmarkTable reads this machine's whole process table, with benchProcs
// sleeping children: once (Table) and through a Cache.
func BenchmarkTable(b *testing.B) {
	startSleepers(b, benchProcs)
	run := func(b *testing.B, table func() ([]Proc, error)) {
		n := 0
		for b.Loop() {
			procs, err := table()
			if err != nil {
				b.Fatal(err)
			}
			n = len(procs)
		}
		b.ReportMetric(float64(n), "procs")
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(max(n, 1)), "ns/proc")
	}
	b.Run("once", func(b *testing.B) { run(b, func() ([]Proc, error) { return Table("/proc") }) })
	b.Run("cache", func(b *testing.B) {
		c := NewCache("/proc")
		defer c.Close()
		run(b, c.Table)
	})
}

func TestParseUIDs(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want [3]int
		ok   bool
	}{
		{"Name:\tx\nUid:\t1000\t0\t0\t0\nGid:\t1\t1\t1\t1\n", [3]int{1000, 0, 0}, true},
		{"Uid:\t1\t2\t3\t4\n", [3]int{1, 2, 3}, true},
		{"Uid:\t1\t2\n", [3]int{}, false},
		{"Uid:\t1\t-2\t3\t4\n", [3]int{}, false},
		{"Gid:\t1\t2\t3\t4\n", [3]int{}, false},
		{"", [3]int{}, false},
	} {
		got, err := parseUIDs([]byte(tc.in))
		if (err == nil) != tc.ok || (tc.ok && got != tc.want) {
			t.Errorf("parseUIDs(%q) = %v, %v; want %v, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
	}
	self, err := UIDs("/proc", os.Getpid())
	if err != nil || self[0] != os.Getuid() || self[1] != os.Geteuid() {
		t.Errorf("UIDs of this process: %v, %v", self, err)
	}
}
