package checkpoint

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// lineReader collects the lines read from a pipe or pty master, "\r"
// stripped, until EOF (or EIO: a pty whose slave side is all closed).
type lineReader struct {
	mu    sync.Mutex
	lines []string
	done  chan struct{}
}

func readFrom(f *os.File) *lineReader {
	l := &lineReader{done: make(chan struct{})}
	go func() {
		defer close(l.done)
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			l.mu.Lock()
			l.lines = append(l.lines, strings.TrimSuffix(sc.Text(), "\r"))
			l.mu.Unlock()
		}
	}()
	return l
}

// wait waits until at least n lines have come and returns them.
func (l *lineReader) wait(t *testing.T, n int) []string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		l.mu.Lock()
		lines := append([]string(nil), l.lines...)
		l.mu.Unlock()
		if len(lines) >= n {
			return lines
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d lines, waited for %d", len(lines), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// all waits for the end of the stream and returns every line.
func (l *lineReader) all(t *testing.T) []string {
	t.Helper()
	select {
	case <-l.done:
	case <-time.After(10 * time.Second):
		t.Fatal("no end of stream")
	}
	return l.wait(t, 0)
}

var stdio = []int{0, 1, 2}

// nullStdio returns /dev/null for fds 0 and 2 and out for fd 1.
func nullStdio(t *testing.T, out *os.File) map[int]*os.File {
	t.Helper()
	in, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	errf, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close(); errf.Close() })
	return map[int]*os.File{0: in, 1: out, 2: errf}
}

func pipe(t *testing.T) (r, w *os.File) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	return r, w
}

// startReading starts cmd, closes our copy w of what it writes to, and
// reads r until 10 lines have come.
func startReading(t *testing.T, cmd *exec.Cmd, w, r *os.File) *lineReader {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	w.Close()
	l := readFrom(r)
	l.wait(t, 10)
	return l
}

func fstat(t *testing.T, f *os.File) unix.Stat_t {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// fdFlags returns the flags of /proc/PID/fdinfo/FD.
func fdFlags(t *testing.T, pid, fd int) uint32 {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/fdinfo/" + strconv.Itoa(fd))
	if err != nil {
		t.Fatal(err)
	}
	_, flags, err := parseFdinfo(string(b))
	if err != nil {
		t.Fatal(err)
	}
	return flags
}

// TestRestorePipeStdout moves a counter whose stdout is a pipe, which
// Check refuses and CheckWith accepts, twice: once plainly, once with
// pre-copy, each time onto a new pipe. Read one after the other the pipes
// carry the count without a gap or a repeat, and the restored process has
// its stdout as it was, blocking (Go's pipes are not), on the new pipe.
func TestRestorePipeStdout(t *testing.T) {
	needTracing(t)
	stub := buildC(t, "stub")
	out := filepath.Join(t.TempDir(), "out")
	r1, w1 := pipe(t)
	cmd := exec.Command(buildC(t, "counter"), out)
	cmd.Stdout = w1
	old := startReading(t, cmd, w1, r1)
	pid := cmd.Process.Pid
	var re *RefusalError
	if err := Check(pid); !errors.As(err, &re) || !re.Has(Pipe) {
		t.Fatalf("Check = %v, want a pipe refusal", err)
	}
	if err := CheckWith(pid, Options{External: stdio}); err != nil {
		t.Fatalf("CheckWith external stdio: %v", err)
	}

	r2, w2 := pipe(t)
	st := fstat(t, w2)
	img, res := migrateWith(t, pid, stub, migration{ext: stdio, files: nullStdio(t, w2), dead: func() { cmd.Wait() }})
	w2.Close()
	x := img.External
	if len(x) != 3 || !strings.HasPrefix(x[1].Target, "pipe:") || x[1].Flags&unix.O_ACCMODE != unix.O_WRONLY || x[1].TTY {
		t.Fatalf("external %+v, want fds 0 1 2, 1 a pipe open O_WRONLY", x)
	}
	for _, f := range img.Files {
		if f.Fd <= 2 {
			t.Errorf("fd %d both external and a file", f.Fd)
		}
	}
	if link, _ := os.Readlink("/proc/" + strconv.Itoa(res.Pid) + "/fd/1"); link != "pipe:["+strconv.FormatUint(st.Ino, 10)+"]" {
		t.Errorf("restored fd 1 is %q, want the new pipe %d", link, st.Ino)
	}
	if got, want := fdFlags(t, res.Pid, 1)&setflFlags, x[1].Flags&setflFlags; got != want {
		t.Errorf("restored fd 1 status flags %#o, want %#o as dumped", got, want)
	}
	lines := old.all(t)
	second := readFrom(r2)
	checkCount(t, append(lines, second.wait(t, 10)...))

	// Again with pre-copy, from the restored process.
	p, err := FreezeWith(res.Pid, Options{External: stdio})
	if err != nil {
		t.Fatal(err)
	}
	pc, err := p.PreCopy()
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if _, err := pc.Round(); err != nil {
		t.Fatal(err)
	}
	fp, img2, _, err := pc.Finish()
	if err != nil {
		t.Fatalf("Finish with external stdio: %v", err)
	}
	if err := fp.Kill(); err != nil {
		t.Fatal(err)
	}
	res.Process.Wait()
	r3, w3 := pipe(t)
	res3, err := RestoreWith(img2, stub, RestoreOptions{Files: nullStdio(t, w3)})
	if err != nil {
		t.Fatal(err)
	}
	defer reap(t, res3.Process)
	w3.Close()
	if !res3.PidKept {
		t.Errorf("second restore as %d: %v", res3.Pid, res3.PidErr)
	}
	lines = append(lines, second.all(t)...)
	checkCount(t, append(lines, readFrom(r3).wait(t, 10)...))
	checkCount(t, readLines(out))
}

// TestRestoreNeedsExternalFiles checks that an image with external
// descriptors is not restored without files for them, or with a file
// open the wrong way.
func TestRestoreNeedsExternalFiles(t *testing.T) {
	img := &Image{Arch: "x86_64", External: []ExternalFile{{Fd: 1, Flags: unix.O_WRONLY, Target: "pipe:[5]"}}}
	r, _ := pipe(t)
	tests := []struct {
		files map[int]*os.File
		want  string
	}{
		{nil, "external fd 1 (pipe:[5]) has no file to install"},
		{map[int]*os.File{0: r}, "external fd 1 (pipe:[5]) has no file to install"},
		{map[int]*os.File{1: r}, "external fd 1 (pipe:[5]) was open O_WRONLY, but |0 is open O_RDONLY"},
	}
	for _, tt := range tests {
		_, err := RestoreWith(img, "/nonexistent", RestoreOptions{Files: tt.files})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("files %v: %v, want %q", tt.files, err, tt.want)
		}
	}
}

// openPTY opens a new pty pair, neither the caller's controlling
// terminal.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return m, s
}

// TestRestorePTY moves a counter running on a pty, its controlling
// terminal, onto a new pty: the count goes on there, and the new pty is
// the controlling terminal of the restored process, leader of a new
// session.
func TestRestorePTY(t *testing.T) {
	needTracing(t)
	stub := buildC(t, "stub")
	out := filepath.Join(t.TempDir(), "out")
	m1, s1 := openPTY(t)
	cmd := exec.Command(buildC(t, "counter"), out)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = s1, s1, s1
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	old := startReading(t, cmd, s1, m1)
	m2, s2 := openPTY(t)
	st := fstat(t, s2)
	files := map[int]*os.File{0: s2, 1: s2, 2: s2}
	img, res := migrateWith(t, cmd.Process.Pid, stub, migration{ext: stdio, files: files, dead: func() { cmd.Wait() }})
	s2.Close()
	for _, x := range img.External {
		if !x.TTY || !x.CtlTTY || !strings.HasPrefix(x.Target, "/dev/pts/") {
			t.Errorf("external %+v, want the controlling pty", x)
		}
	}
	lines := old.all(t)
	checkCount(t, append(lines, readFrom(m2).wait(t, len(lines)+10)...))
	b, err := os.ReadFile("/proc/" + strconv.Itoa(res.Pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	if sid, tty := f[3], f[4]; sid != strconv.Itoa(res.Pid) || tty != strconv.FormatUint(st.Rdev, 10) {
		t.Errorf("restored session %s, tty_nr %s; want %d, %d (the new pty)", sid, tty, res.Pid, st.Rdev)
	}
}
