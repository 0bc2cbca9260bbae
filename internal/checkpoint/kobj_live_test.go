package checkpoint

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestRestoreKernelObjects migrates, three times, a program driven by an
// epoll loop (testdata/kobjs.c: a periodic timerfd, a signalfd, a
// semaphore eventfd with a one-shot watch, and an epoll instance inside
// another): its lines go on with no gap or repeat, and the program ends
// with status 0 at SIGUSR1 (read through its signalfd), having checked
// itself that its objects behave as before.
func TestRestoreKernelObjects(t *testing.T) {
	needTracing(t)
	stub, bin := buildC(t, "stub"), buildC(t, "kobjs")
	moveAndCheck(t, stub, bin, "plain", "it found one of its objects changed", 3, outOnly, func(round int, img *Image, _ int) {
		if len(img.Objects) != 5 {
			t.Fatalf("round %d: %d objects in the image, want 5: %+v", round, len(img.Objects), img.Objects)
		}
	})
}

// TestRestoreKernelObjectsFdinfo compares the kernel's own view of each
// object (/proc/PID/fdinfo) before a dump and after the restore, on the
// same program with a timer that does not fire meanwhile: counters,
// modes, flags, masks, clocks and interest lists are the same, the
// timer's time left within the time the migration took.
func TestRestoreKernelObjectsFdinfo(t *testing.T) {
	needTracing(t)
	stub := buildC(t, "stub")
	bin := buildC(t, "kobjs")
	out := filepath.Join(t.TempDir(), "out")
	cmd, _ := start(t, bin, out, "quiet")
	pid := cmd.Process.Pid
	time.Sleep(200 * time.Millisecond) // set up
	before := objectFdinfo(t, pid)
	_, res := migrateWith(t, pid, stub, migration{})
	after := objectFdinfo(t, res.Pid)
	if len(before) != 5 {
		t.Fatalf("%d objects before, want 5: %v", len(before), before)
	}
	for fd, b := range before {
		a, ok := after[fd]
		if !ok {
			t.Errorf("fd %d: gone after the restore", fd)
			continue
		}
		bv, av := timerLeft(b), timerLeft(a)
		if d := bv - av; d < 0 || d > 5*time.Second {
			t.Errorf("fd %d: timer left %v before, %v after", fd, bv, av)
		}
		if bs, as := dropTimerLeft(b), dropTimerLeft(a); bs != as {
			t.Errorf("fd %d:\nbefore:\n%s\nafter:\n%s", fd, bs, as)
		}
	}
}

var (
	fdinfoNoise = regexp.MustCompile(`(?m)^(pos|mnt_id|ino|eventfd-id):.*\n|\s+pos:\S+ ino:\S+ sdev:\S+`)
	itValue     = regexp.MustCompile(`it_value: \((\d+), (\d+)\)`)
)

// objectFdinfo reads the fdinfo of every kernel object of pid, without
// what differs by nature between two processes (inode numbers, ids).
func objectFdinfo(t *testing.T, pid int) map[int]string {
	t.Helper()
	fds, err := readFds(pid)
	if err != nil {
		t.Fatal(err)
	}
	m := map[int]string{}
	for _, f := range fds {
		if !isObject(f.Target) {
			continue
		}
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/fdinfo/" + strconv.Itoa(f.Fd))
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(fdinfoNoise.ReplaceAllString(string(b), "")), "\n")
		for i, l := range lines {
			// A one-shot watch that fired keeps only its mode bits; a
			// restore cannot register it without EPOLLERR|EPOLLHUP,
			// which the kernel adds to every watch (see kobj.go).
			lines[i] = strings.Replace(l, "events: 40000018", "events: 40000000", 1)
		}
		slices.Sort(lines) // an interest list is shown in the kernel's order
		m[f.Fd] = f.Target + "\n" + strings.Join(lines, "\n")
	}
	return m
}

func timerLeft(s string) time.Duration {
	m := itValue.FindStringSubmatch(s)
	if m == nil {
		return 0
	}
	sec, _ := strconv.Atoi(m[1])
	ns, _ := strconv.Atoi(m[2])
	return time.Duration(sec)*time.Second + time.Duration(ns)
}

func dropTimerLeft(s string) string {
	return strings.TrimSpace(itValue.ReplaceAllString(s, "it_value: ..."))
}

// TestRestoreGoProgram migrates a Go program that uses timers, goroutines
// and os/signal three times: its runtime's epoll instance and eventfd
// come along, its ticks go on, and it still takes its signal.
func TestRestoreGoProgram(t *testing.T) {
	needTracing(t)
	stub := buildC(t, "stub")
	bin := filepath.Join(t.TempDir(), "goticker")
	gocmd := filepath.Join(runtime.GOROOT(), "bin", "go")
	build := exec.Command(gocmd, "build", "-o", bin, "./testdata/goticker")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	moveAndCheck(t, stub, bin, "plain", "the Go program did not end with status 0 at SIGUSR1", 3, outOnly, func(round int, img *Image, _ int) {
		kinds := map[ObjKind]int{}
		for _, o := range img.Objects {
			kinds[o.Kind]++
		}
		t.Logf("round %d: %d threads, objects %v", round, 1+len(img.Threads), kinds)
		if kinds[ObjEpoll] == 0 {
			t.Fatalf("round %d: no epoll instance in the image of a Go program: %+v", round, img.Objects)
		}
	})
}

// TestRestoreTailFollow migrates `tail -f` (coreutils, which follows with
// inotify) three times, appending to the file it follows after each move:
// every line reaches its output, and its watches have their numbers and
// files (fdinfo compared before and after).
func TestRestoreTailFollow(t *testing.T) {
	needTracing(t)
	tail, err := exec.LookPath("tail")
	if err != nil {
		t.Skip("no tail")
	}
	stub := buildC(t, "stub")
	dir := t.TempDir()
	log := filepath.Join(dir, "log")
	if err := os.WriteFile(log, []byte("0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd, out := start(t, tail, "-n", "+1", "-f", log)
	waitLines(t, out, 1)
	appendLine := func(n int) {
		f, err := os.OpenFile(log, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintln(f, n)
		f.Close()
	}
	appendLine(1)
	waitLines(t, out, 2)
	pid := cmd.Process.Pid
	n := 2
	for round := range 3 {
		before := objectFdinfo(t, pid)
		img, res := migrateWith(t, pid, stub, migration{})
		pid = res.Pid
		if !slices.ContainsFunc(img.Objects, func(o KObject) bool { return o.Kind == ObjInotify && len(o.Inotify) > 0 }) {
			t.Fatalf("round %d: no inotify watch in the image of tail -f: %+v", round, img.Objects)
		}
		if after := objectFdinfo(t, pid); !reflect.DeepEqual(before, after) {
			t.Errorf("round %d: fdinfo\nbefore %v\nafter  %v", round, before, after)
		}
		for range 3 {
			appendLine(n)
			n++
		}
		checkCount(t, waitLines(t, out, n))
	}
}

// TestRefuseInotifyUnread: a program that does not read its inotify
// events is refused (a restore starts with an empty queue), naming them.
func TestRefuseInotifyUnread(t *testing.T) {
	needTracing(t)
	bin := buildC(t, "inotify")
	dir := t.TempDir()
	var dirs []string
	for _, d := range []string{"a", "b", "c"} {
		p := filepath.Join(dir, d)
		os.Mkdir(p, 0o755)
		dirs = append(dirs, p)
	}
	cmd, _ := start(t, bin, append(append([]string{filepath.Join(dir, "out")}, dirs...), "idle")...)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if m := objectFdinfo(t, cmd.Process.Pid); len(m) == 1 && strings.Contains(fmt.Sprint(m), "wd:3") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the program did not set its watches up")
		}
	}
	os.WriteFile(filepath.Join(dirs[0], "x"), nil, 0o644)
	err := Check(cmd.Process.Pid)
	if err == nil || !strings.Contains(err.Error(), "bytes of events not yet read") {
		t.Fatalf("Check: %v; want a refusal for the events not read", err)
	}
}

// TestRestoreInotifyNumbers migrates a program whose inotify instance has
// watches 1 and 3 (2 was removed) twice: each watch keeps its number and
// its directory, and the program sees exactly the events of the files the
// test creates, none of the restore's own.
func TestRestoreInotifyNumbers(t *testing.T) {
	needTracing(t)
	stub := buildC(t, "stub")
	bin := buildC(t, "inotify")
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	var dirs []string
	for _, d := range []string{"a", "b", "c"} {
		p := filepath.Join(dir, d)
		if err := os.Mkdir(p, 0o755); err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, p)
	}
	cmd, _ := start(t, bin, append([]string{out}, dirs...)...)
	touch := func(d, name string) {
		if err := os.WriteFile(filepath.Join(d, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	pid := cmd.Process.Pid
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if m := objectFdinfo(t, pid); len(m) == 1 {
			for _, v := range m {
				if strings.Count(v, "inotify wd:") == 2 {
					goto ready
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the program did not set its watches up")
		}
	}
ready:
	touch(dirs[0], "x0")
	waitLines(t, out, 1)
	var want []string
	want = append(want, "1 x0")
	for round := range 2 {
		before := objectFdinfo(t, pid)
		_, res := migrateWith(t, pid, stub, migration{})
		pid = res.Pid
		if after := objectFdinfo(t, pid); !reflect.DeepEqual(before, after) {
			t.Errorf("round %d: fdinfo\nbefore %v\nafter  %v", round, before, after)
		}
		for i, d := range dirs {
			name := fmt.Sprintf("r%d", round)
			touch(d, name)
			if i != 1 {
				want = append(want, fmt.Sprintf("%d %s", i+1, name))
			}
		}
		// The last event, after which no other may come.
		touch(dirs[0], fmt.Sprintf("end%d", round))
		want = append(want, fmt.Sprintf("1 end%d", round))
		if got := waitLines(t, out, len(want)); !reflect.DeepEqual(got, want) {
			t.Fatalf("round %d: events\n got %q\nwant %q", round, got, want)
		}
	}
}

// TestRestoreDeletedFiles migrates, three times, a program writing to an
// O_TMPFILE file and to a file it unlinked: each comes back with its
// contents, offset and flags (O_APPEND), and the program reads back
// everything it wrote at the end.
func TestRestoreDeletedFiles(t *testing.T) {
	needTracing(t)
	stub, bin := buildC(t, "stub"), buildC(t, "tmpfile")
	moveAndCheck(t, stub, bin, "plain", "its deleted files lost what it wrote", 3, func(out string) []string {
		return []string{out, filepath.Dir(out)}
	}, func(round int, img *Image, _ int) {
		n := 0
		for _, o := range img.Objects {
			if o.Kind == ObjDeleted {
				n++
			}
		}
		if n != 2 {
			t.Fatalf("round %d: %d deleted files in the image, want 2", round, n)
		}
	})
}

// TestRestoreInnerPipes migrates, twice, plainly and pre-copied, a
// program that holds both ends of two pipes and two Unix stream
// socketpairs: a self-pipe of each kind used every round, and one of each
// with data waiting (both ways for the socketpair) and an end
// duplicated: all come back with their contents, numbers and flags.
func TestRestoreInnerPipes(t *testing.T) {
	needTracing(t)
	stub, bin := buildC(t, "stub"), buildC(t, "selfpipe")
	for _, how := range []string{"plain", "pre-copied"} {
		t.Run(how, func(t *testing.T) {
			moveAndCheck(t, stub, bin, how, "a pipe or socketpair lost its contents or its flags", 2, outOnly, nil)
		})
	}
}
