package checkpoint

import (
	"io/fs"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

var fe00 = unix.Mkdev(0xfe, 0)

func TestParseLockLine(t *testing.T) {
	tests := []struct {
		line string
		want lockEntry
		bad  bool
	}{
		{"1: POSIX  ADVISORY  WRITE 3568 fe:00:2531452 0 EOF\n",
			lockEntry{Kind: "POSIX", State: "ADVISORY", Mode: "WRITE", Pid: 3568, HasInode: true, Dev: fe00, Ino: 2531452, End: -1}, false},
		{"2: FLOCK  ADVISORY  READ  3517 fe:00:2531448 0 EOF",
			lockEntry{Kind: "FLOCK", State: "ADVISORY", Mode: "READ", Pid: 3517, HasInode: true, Dev: fe00, Ino: 2531448, End: -1}, false},
		{"3: OFDLCK ADVISORY  WRITE -1 08:11:12 100 199",
			lockEntry{Kind: "OFDLCK", State: "ADVISORY", Mode: "WRITE", Pid: -1, HasInode: true, Dev: unix.Mkdev(8, 0x11), Ino: 12, Start: 100, End: 199}, false},
		{"4: LEASE  ACTIVE    READ  3452 fe:00:7 0 EOF",
			lockEntry{Kind: "LEASE", State: "ACTIVE", Mode: "READ", Pid: 3452, HasInode: true, Dev: fe00, Ino: 7, End: -1}, false},
		{"5: LEASE  BREAKING  UNLCK 3452 fe:00:7 0 EOF",
			lockEntry{Kind: "LEASE", State: "BREAKING", Mode: "UNLCK", Pid: 3452, HasInode: true, Dev: fe00, Ino: 7, End: -1}, false},
		{"6: DELEG  ACTIVE    READ  0 103:02:9 0 EOF",
			lockEntry{Kind: "DELEG", State: "ACTIVE", Mode: "READ", HasInode: true, Dev: unix.Mkdev(0x103, 2), Ino: 9, End: -1}, false},
		{"7: -> POSIX  ADVISORY  WRITE 3443 fe:00:2531452 0 EOF",
			lockEntry{Kind: "POSIX", State: "ADVISORY", Mode: "WRITE", Waiting: true, Pid: 3443, HasInode: true, Dev: fe00, Ino: 2531452, End: -1}, false},
		{"8: POSIX  *NOINODE* WRITE 12 <none>:0 0 EOF",
			lockEntry{Kind: "POSIX", State: "*NOINODE*", Mode: "WRITE", Pid: 12, End: -1}, false},
		{"\t1: ACCESS ADVISORY  READ  5 fe:00:1 1073741824 1073741825",
			lockEntry{Kind: "ACCESS", State: "ADVISORY", Mode: "READ", Pid: 5, HasInode: true, Dev: fe00, Ino: 1, Start: 1 << 30, End: 1<<30 + 1}, false},
		{"", lockEntry{}, true},
		{"1: POSIX ADVISORY WRITE 1 fe:00:1 0", lockEntry{}, true},       // short
		{"x: POSIX ADVISORY WRITE 1 fe:00:1 0 EOF", lockEntry{}, true},   // id
		{"1: BOGUS ADVISORY WRITE 1 fe:00:1 0 EOF", lockEntry{}, true},   // kind
		{"1: POSIX ADVISORY WRITE 1 fe:00 0 EOF", lockEntry{}, true},     // dev
		{"1: POSIX ADVISORY WRITE 1 fe:zz:1 0 EOF", lockEntry{}, true},   // dev
		{"1: POSIX ADVISORY WRITE one fe:00:1 0 EOF", lockEntry{}, true}, // pid
		{"1: POSIX ADVISORY WRITE 1 fe:00:1 9 8", lockEntry{}, true},     // end < start
		{"1: POSIX ADVISORY WRITE 1 fe:00:1 -1 EOF", lockEntry{}, true},  // start
	}
	for _, tt := range tests {
		got, err := parseLockLine(tt.line)
		if tt.bad {
			if err == nil {
				t.Errorf("parseLockLine(%q) = %+v, want an error", tt.line, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("parseLockLine(%q) = %+v, %v; want %+v", tt.line, got, err, tt.want)
		}
	}
}

func FuzzParseLockLine(f *testing.F) {
	for _, s := range []string{
		"1: POSIX  ADVISORY  WRITE 3568 fe:00:2531452 0 EOF",
		"3: OFDLCK ADVISORY  WRITE -1 08:11:12 100 199",
		"4: LEASE  BREAKING  UNLCK 3452 fe:00:7 0 EOF",
		"7: -> FLOCK  ADVISORY  WRITE 3443 fe:00:2531452 0 EOF",
		"8: POSIX  *NOINODE* WRITE 12 <none>:0 0 EOF",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		e, err := parseLockLine(line)
		if err != nil {
			return
		}
		if e.Kind == "" || e.Start < 0 || e.End != -1 && e.End < e.Start || e.Pid < -1 {
			t.Fatalf("parseLockLine(%q) = %+v", line, e)
		}
		if !e.HasInode && (e.Dev != 0 || e.Ino != 0) {
			t.Fatalf("parseLockLine(%q) = %+v: an inode without HasInode", line, e)
		}
		es, err := parseFdinfoLocks("pos:\t0\nlock:\t" + line + "\n")
		if err != nil || len(es) != 1 || es[0] != e {
			t.Fatalf("as an fdinfo line: %+v, %v; want %+v", es, err, e)
		}
	})
}

func TestParseFdinfoLocks(t *testing.T) {
	text := "pos:\t0\nflags:\t0100002\nmnt_id:\t25\nino:\t2531452\n" +
		"lock:\t1: FLOCK  ADVISORY  WRITE 9 fe:00:2531452 0 EOF\n" +
		"lock:\t2: POSIX  ADVISORY  READ  9 fe:00:2531452 0 99\n"
	es, err := parseFdinfoLocks(text)
	if err != nil || len(es) != 2 || es[0].Kind != "FLOCK" || es[1].Kind != "POSIX" || es[1].End != 99 {
		t.Fatalf("parseFdinfoLocks = %+v, %v", es, err)
	}
	if es, err := parseFdinfoLocks("pos:\t0\nflags:\t02\n"); err != nil || es != nil {
		t.Errorf("no lock lines: %+v, %v", es, err)
	}
	if _, err := parseFdinfoLocks("pos:\t0\nlock:\tgarbage\n"); err == nil {
		t.Error("a lock line that cannot be read passed for no lock")
	}
	// /proc/locks: what cannot be read is skipped.
	all := parseProcLocks("1: POSIX  ADVISORY  WRITE 9 fe:00:1 0 EOF\nnonsense\n2: FLOCK  ADVISORY  WRITE 9 fe:00:2 0 EOF\n")
	if len(all) != 2 {
		t.Errorf("parseProcLocks: %+v", all)
	}
}

func FuzzParseFdinfoLocks(f *testing.F) {
	f.Add("pos:\t0\nflags:\t02\nlock:\t1: FLOCK  ADVISORY  WRITE 9 fe:00:2531452 0 EOF\n")
	f.Add("lock:\t1: LEASE  ACTIVE    READ  3452 fe:00:7 0 EOF\nlock:\t2: OFDLCK ADVISORY  WRITE -1 08:11:12 100 199\n")
	f.Fuzz(func(t *testing.T, text string) {
		es, err := parseFdinfoLocks(text)
		if err != nil {
			return
		}
		n := 0
		for line := range strings.Lines(text) {
			if strings.HasPrefix(line, "lock:") {
				n++
			}
		}
		if len(es) != n {
			t.Fatalf("%d locks from %d lock lines", len(es), n)
		}
		parseProcLocks(text) // must not panic
	})
}

func TestHeldLocks(t *testing.T) {
	db := fdView{3, "/data/db.sqlite", 0, 0, fileID{fe00, 100}, 0, 0}
	other := fdView{4, "/data/other", 0, 0, fileID{fe00, 200}, 0, 0}
	fds := []fdView{db, other}
	e := func(line string) lockEntry {
		t.Helper()
		l, err := parseLockLine(line)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	tests := []struct {
		name    string
		all     []lockEntry
		fdLocks map[int][]lockEntry
		want    []string
	}{
		{"none", nil, nil, nil},
		{"posix by pid", []lockEntry{e("1: POSIX  ADVISORY  WRITE 50 fe:00:100 0 EOF")}, nil,
			[]string{"holds a write lock (POSIX) on /data/db.sqlite"}},
		{"posix of another pid", []lockEntry{e("1: POSIX  ADVISORY  WRITE 51 fe:00:100 0 EOF")}, nil, nil},
		{"posix on a file no fd names", []lockEntry{e("1: POSIX  ADVISORY  READ  50 fe:00:300 0 EOF")}, nil,
			[]string{"holds a read lock (POSIX) on device 254:0 inode 300"}},
		{"waiter is not a holder", []lockEntry{e("1: -> POSIX  ADVISORY  WRITE 50 fe:00:100 0 EOF")}, nil, nil},
		{"flock by pid but not through our fds", []lockEntry{e("1: FLOCK  ADVISORY  WRITE 50 fe:00:100 0 EOF")}, nil, nil},
		{"flock inherited (another pid) through fd 3", nil,
			map[int][]lockEntry{3: {e("1: FLOCK  ADVISORY  WRITE 49 fe:00:100 0 EOF")}},
			[]string{"holds an exclusive lock (flock) on /data/db.sqlite"}},
		{"shared flock", nil, map[int][]lockEntry{4: {e("1: FLOCK  ADVISORY  READ  50 fe:00:200 0 EOF")}},
			[]string{"holds a shared lock (flock) on /data/other"}},
		{"ofd", []lockEntry{e("1: OFDLCK ADVISORY  WRITE -1 fe:00:100 0 EOF")},
			map[int][]lockEntry{3: {e("1: OFDLCK ADVISORY  WRITE -1 fe:00:100 0 EOF")}},
			[]string{"holds a write lock (OFD) on /data/db.sqlite"}},
		{"lease", nil, map[int][]lockEntry{4: {e("1: LEASE  ACTIVE    READ  50 fe:00:200 0 EOF")}},
			[]string{"holds a read lease on /data/other"}},
		{"lease being broken", nil, map[int][]lockEntry{4: {e("1: LEASE  BREAKING  UNLCK 50 fe:00:200 0 EOF")}},
			[]string{"holds a lease (being broken) on /data/other"}},
		{"delegation", nil, map[int][]lockEntry{4: {e("1: DELEG  ACTIVE    WRITE 50 fe:00:200 0 EOF")}},
			[]string{"holds a write delegation on /data/other"}},
		{"posix in both places, several ranges: once", []lockEntry{
			e("1: POSIX  ADVISORY  READ  50 fe:00:100 1073741826 1073742335"),
			e("2: POSIX  ADVISORY  WRITE 50 fe:00:100 1073741824 1073741824"),
			e("3: POSIX  ADVISORY  WRITE 50 fe:00:100 1073741825 1073741825")},
			map[int][]lockEntry{3: {e("1: POSIX  ADVISORY  READ  50 fe:00:100 1073741826 1073742335"),
				e("2: POSIX  ADVISORY  WRITE 50 fe:00:100 1073741824 1073741824")}},
			[]string{"holds a read lock (POSIX) on /data/db.sqlite", "holds a write lock (POSIX) on /data/db.sqlite"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, l := range heldLocks(50, tt.all, fds, tt.fdLocks) {
				got = append(got, l.describe())
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %q\nwant %q", got, tt.want)
			}
		})
	}
}

// TestRefusalsLocks: locks are reasons of kind Locks, and RunsOn (a
// checkpoint that leaves the process running) drops them.
func TestRefusalsLocks(t *testing.T) {
	v := procView{Threads: 1, Fds: []fdView{{3, "/data/db", 0, 0, fileID{}, 0, 0}}, Restore: goodRestore("/data/db"),
		Locks: []heldLock{{"POSIX", "ADVISORY", "WRITE", "/data/db"}}}
	rs := refusals(v)
	if len(rs) != 1 || rs[0].Code != Locks || rs[0].String() != "lock: holds a write lock (POSIX) on /data/db" {
		t.Fatalf("refusals: %v", rs)
	}
	w := v
	Options{RunsOn: true}.apply(&w)
	if rs := refusals(w); len(rs) != 0 {
		t.Errorf("RunsOn: %v", rs)
	}
}

func TestFormatReasons(t *testing.T) {
	rs := []Reason{{Locks, "holds a write lock (POSIX) on /db"}, {Socket, "fd 3: socket:[1]"},
		{Locks, "holds an exclusive lock (flock) on /x"}, {Socket, "fd 4: socket:[2]"}}
	want := "\n  lock: holds a write lock (POSIX) on /db; holds an exclusive lock (flock) on /x\n  socket: fd 3: socket:[1]; fd 4: socket:[2]"
	if got := FormatReasons(rs); got != want {
		t.Errorf("got %q\nwant %q", got, want)
	}
	if got := FormatReasons(rs[1:2]); got != "socket: fd 3: socket:[1]" {
		t.Errorf("one reason: %q", got)
	}
	e := &RefusalError{Pid: 7, Reasons: rs[:1]}
	if e.Error() != "checkpoint: process 7 cannot move: lock: holds a write lock (POSIX) on /db" {
		t.Errorf("Error: %q", e.Error())
	}
	_ = fs.ModeDir
}
