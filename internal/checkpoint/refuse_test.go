package checkpoint

import (
	"errors"
	"io/fs"
	"strconv"
	"strings"
	"testing"
	"time"
)

// goodRestore is a restoreView in which the working directory (/), the
// executable (/bin/x) and paths lead to the files the process has (all
// of ID zero, as the test views' descriptors).
func goodRestore(paths ...string) restoreView {
	r := restoreView{Cwd: "/", Root: "/", Exe: "/bin/x", Now: map[string]pathNow{"/": {}, "/bin/x": {}}}
	for _, p := range paths {
		r.Now[p] = pathNow{}
	}
	return r
}

func TestRefusals(t *testing.T) {
	anon := Mapping{Start: 0x1000, End: 0x2000, Prot: ProtRead | ProtWrite, Kind: KindAnon}
	shared := anon
	shared.Flags = MapShared
	shm := shared
	shm.Path = "/dev/shm/x"
	memfd := shared
	memfd.Path = "/memfd:buf (deleted)"
	fileShared := shared
	fileShared.Path, fileShared.Kind = "/var/data", KindFileShared
	deleted := anon
	deleted.Path, deleted.Kind = "/tmp/x (deleted)", KindFilePrivate
	ring := shared
	ring.Path = "anon_inode:[io_uring]"
	ok := procView{Threads: 1, Maps: []Mapping{anon, fileShared},
		Fds:     []fdView{{0, "/dev/null", fs.ModeDevice | fs.ModeCharDevice, 0, fileID{}, 0, 0}, {1, "/tmp/out", 0, 0, fileID{}, 0, 0}, {3, "/tmp", fs.ModeDir, 0, fileID{}, 0, 0}},
		Restore: goodRestore("/tmp/out", "/tmp")}
	with := func(f func(v *procView)) procView {
		v := ok
		v.Maps = append([]Mapping(nil), ok.Maps...)
		v.Fds = append([]fdView(nil), ok.Fds...)
		f(&v)
		return v
	}
	tests := []struct {
		name string
		v    procView
		want []ReasonCode
	}{
		{"movable", ok, nil},
		{"threads", with(func(v *procView) { v.Threads = 3 }), nil}, // threads move now
		{"traced", with(func(v *procView) { v.TracerPid = 42 }), []ReasonCode{Traced}},
		{"shared anon", with(func(v *procView) { v.Maps = append(v.Maps, shared) }), []ReasonCode{SharedMemory}},
		{"shm", with(func(v *procView) { v.Maps = append(v.Maps, shm) }), []ReasonCode{SharedMemory}},
		{"memfd", with(func(v *procView) { v.Maps = append(v.Maps, memfd) }), []ReasonCode{SharedMemory}},
		{"deleted map", with(func(v *procView) { v.Maps = append(v.Maps, deleted) }), []ReasonCode{DeletedFile}},
		{"io_uring map", with(func(v *procView) { v.Maps = append(v.Maps, ring) }), []ReasonCode{IOUring}},
		{"socket", with(func(v *procView) { v.Fds = append(v.Fds, fdView{4, "socket:[77]", fs.ModeSocket, 0, fileID{}, 0, 0}) }), []ReasonCode{Socket}},
		{"pipe", with(func(v *procView) { v.Fds = append(v.Fds, fdView{4, "pipe:[77]", fs.ModeNamedPipe, 0, fileID{}, 0, 0}) }), []ReasonCode{Pipe}},
		{"fifo", with(func(v *procView) { v.Fds = append(v.Fds, fdView{4, "/tmp/fifo", fs.ModeNamedPipe, 0, fileID{}, 0, 0}) }), []ReasonCode{Pipe}},
		{"tty", with(func(v *procView) {
			v.Fds = append(v.Fds, fdView{4, "/dev/pts/0", fs.ModeDevice | fs.ModeCharDevice, 0, fileID{}, 0, 0})
		}), []ReasonCode{Device}},
		{"io_uring fd", with(func(v *procView) { v.Fds = append(v.Fds, fdView{4, "anon_inode:[io_uring]", 0, 0, fileID{}, 0, 0}) }), []ReasonCode{IOUring}},
		{"pidfd", with(func(v *procView) { v.Fds = append(v.Fds, fdView{4, "anon_inode:[pidfd]", 0, 0, fileID{}, 0, 0}) }), []ReasonCode{Unsupported}},
		{"eventfd moves", with(func(v *procView) { v.Fds = append(v.Fds, fdView{4, "anon_inode:[eventfd]", 0, 0, fileID{}, 0, 0}) }), nil},
		{"deleted fd, carried", with(func(v *procView) { v.Fds = append(v.Fds, fdView{4, "/tmp/y (deleted)", 0, 0, fileID{}, 0, 0}) }), nil},
		{"deleted fd, linked elsewhere", with(func(v *procView) { v.Fds = append(v.Fds, fdView{4, "/tmp/y (deleted)", 0, 0, fileID{}, 0, 1}) }), []ReasonCode{DeletedFile}},
		{"posix timers", with(func(v *procView) { v.Timers, v.TimerIDs = []PosixTimer{{ID: 0, Clock: 1}, {ID: 1, Clock: 0}}, true }), nil},
		{"posix timers, no ids back", with(func(v *procView) { v.Timers = []PosixTimer{{ID: 0, Clock: 1}} }), []ReasonCode{Timers}},
		{"posix timer on a thread's CPU clock", with(func(v *procView) { v.Timers, v.TimerIDs = []PosixTimer{{ID: 0, Clock: -2}}, true }), []ReasonCode{Timers}},
		{"posix timer on its own CPU clock", with(func(v *procView) { v.Timers, v.TimerIDs = []PosixTimer{{ID: 0, Clock: -6}}, true }), nil},
		{"posix timer on another process's CPU clock", with(func(v *procView) { v.Timers, v.TimerIDs = []PosixTimer{{ID: 0, Clock: -6 - 8*77}}, true }), []ReasonCode{Timers}},
		{"several", with(func(v *procView) {
			v.Threads = 2
			v.Fds = append(v.Fds, fdView{5, "socket:[1]", fs.ModeSocket, 0, fileID{}, 0, 0})
		}), []ReasonCode{Socket}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs := refusals(tt.v)
			var got []ReasonCode
			for _, r := range rs {
				got = append(got, r.Code)
				if r.Detail == "" {
					t.Errorf("reason %v without detail", r.Code)
				}
			}
			if tt.name == "posix timer on a thread's CPU clock" && rs[0].Detail != "POSIX timer 0 runs on the CPU-time clock of a thread or of another process (clock -2): not carried" {
				t.Errorf("detail %q", rs[0].Detail)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", rs, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("got %v, want %v", rs, tt.want)
				}
			}
		})
	}
}

// TestRefuseLive checks real refusals, and that the process runs on.
func TestRefuseLive(t *testing.T) {
	needTracing(t)
	cases := []struct {
		prog  string
		flags []string
		code  ReasonCode
	}{
		{"socket", nil, Socket},
		{"traced", nil, Traced},
		{"posixtimers", nil, Timers},
	}
	for _, c := range cases {
		t.Run(c.prog, func(t *testing.T) {
			cmd, stdout := start(t, buildC(t, c.prog, c.flags...))
			pid := cmd.Process.Pid
			if c.prog == "traced" {
				pid, _ = strconv.Atoi(strings.TrimSpace(waitLines(t, stdout, 1)[0]))
			}
			deadline := time.Now().Add(5 * time.Second)
			for {
				b := Check(pid)
				var re *RefusalError
				if errors.As(b, &re) && re.Has(c.code) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("Check(%d) = %v, want a refusal for %v", pid, b, c.code)
				}
				time.Sleep(10 * time.Millisecond) // the program may not have got there yet
			}
			p, err := Freeze(pid)
			var re *RefusalError
			if !errors.As(err, &re) || !re.Has(c.code) {
				if p != nil {
					p.Resume()
				}
				t.Fatalf("Freeze(%d) = %v, want a refusal for %v", pid, err, c.code)
			}
			t.Logf("%v", err)
			time.Sleep(20 * time.Millisecond)
			if !running(pid) {
				t.Fatalf("process %d no longer running after the refusal", pid)
			}
		})
	}
}
