package agent

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ssi-cluster/ssi/internal/rexec"
)

func TestOpenPassed(t *testing.T) {
	t.Parallel()
	pipe := func() (*os.File, *os.File) {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close(); w.Close() })
		return r, w
	}
	file := func() *os.File {
		f, err := os.Create(filepath.Join(t.TempDir(), "f"))
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	devnull := func() *os.File {
		f, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	zero := func() *os.File {
		f, err := os.Open("/dev/zero")
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	socket := func() *os.File {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0)
		if err != nil {
			t.Fatal(err)
		}
		unix.Close(fds[1])
		return os.NewFile(uintptr(fds[0]), "socket")
	}
	ptmx := func() *os.File {
		f, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
		if err != nil {
			t.Skip("no /dev/ptmx")
		}
		return f
	}
	for _, tc := range []struct {
		name  string
		mask  rexec.StdioMask
		files func() []*os.File
		err   string
	}{
		{"pipes", rexec.PassStdin | rexec.PassStdout, func() []*os.File {
			r, _ := pipe()
			_, w := pipe()
			return []*os.File{r, w}
		}, ""},
		{"file and /dev/null", rexec.PassStdout | rexec.PassStderr, func() []*os.File { return []*os.File{file(), devnull()} }, ""},
		{"fewer files than named", rexec.PassStdin | rexec.PassStdout | rexec.PassStderr, func() []*os.File { return []*os.File{devnull()} }, "named 3 streams and passed 1"},
		{"a socket", rexec.PassStdin, func() []*os.File { return []*os.File{socket()} }, "not a pipe, a file or /dev/null"},
		{"a terminal", rexec.PassStdout, func() []*os.File { return []*os.File{ptmx()} }, "terminal"},
		{"another device", rexec.PassStdin, func() []*os.File { return []*os.File{zero()} }, "other than /dev/null"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ps, err := openPassed(tc.mask, tc.files())
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer ps.close()
			for bit, f := range map[rexec.StdioMask]*os.File{rexec.PassStdin: ps.in, rexec.PassStdout: ps.out, rexec.PassStderr: ps.err} {
				if (tc.mask&bit != 0) != (f != nil) {
					t.Fatalf("stream %d: passed %v, got %v", bit, tc.mask&bit != 0, f)
				}
			}
		})
	}
}

// TestPassedPipeIsOwnDescription: the agent's pipe is non-blocking, the
// caller's stays as it was, and both reach the same pipe.
func TestPassedPipeIsOwnDescription(t *testing.T) {
	t.Parallel()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	wfd, err := unix.Dup(int(w.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	ps, err := openPassed(rexec.PassStdout, []*os.File{os.NewFile(uintptr(wfd), "w")})
	if err != nil {
		t.Fatal(err)
	}
	defer ps.close()
	theirs, _ := unix.FcntlInt(w.Fd(), unix.F_GETFL, 0)
	ours, _ := unix.FcntlInt(ps.out.Fd(), unix.F_GETFL, 0)
	if theirs&unix.O_NONBLOCK != 0 || ours&unix.O_NONBLOCK == 0 {
		t.Fatalf("flags: caller's %#x, agent's %#x", theirs, ours)
	}
	w.Close()
	if _, err := ps.out.Write([]byte("hi")); err != nil {
		t.Fatal(err)
	}
	ps.out.Close()
	ps.out = nil
	b := make([]byte, 8)
	if n, _ := r.Read(b); string(b[:n]) != "hi" {
		t.Fatalf("read %q through the caller's end", b[:n])
	}
}

func TestSendReadFiles(t *testing.T) {
	t.Parallel()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	conn := func(fd int) *net.UnixConn {
		f := os.NewFile(uintptr(fd), "sock")
		defer f.Close()
		c, err := net.FileConn(f)
		if err != nil {
			t.Fatal(err)
		}
		return c.(*net.UnixConn)
	}
	a, b := conn(fds[0]), conn(fds[1])
	defer a.Close()
	defer b.Close()
	null, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	sc := rexec.NewStreamConn(a, nil)
	start := rexec.Frame{Type: rexec.TStart, Data: []byte(`{"argv":["true"]}`)}
	if err := sc.SendFiles(start, null, null); err != nil {
		t.Fatal(err)
	}
	sc.Send(rexec.Frame{Type: rexec.TStdinEOF})
	first, files, err := rexec.ReadFiles(b, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer closeAll(files)
	if len(files) != 2 || len(first) == 0 {
		t.Fatalf("%d files and %d bytes", len(files), len(first))
	}
	rc := rexec.NewStreamConn(b, readerOf(first, b))
	for _, want := range []rexec.Type{rexec.TStart, rexec.TStdinEOF} {
		f, err := rc.Recv()
		if err != nil || f.Type != want {
			t.Fatalf("frame %v (%v), want %v", f.Type, err, want)
		}
	}
}
