package checkpoint

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The correctness suite: programs run to their end once straight and
// once migrated in the middle; both runs must leave the same output.

// sameAsUnmigrated runs argv twice, each run in a directory of its own
// ("{dir}" in argv names it) with stdout to {dir}/stdout: straight, and
// migrated as soon as ready says so (polled every millisecond). Both must
// exit 0 and leave the same stdout and the same files named outputs. It
// returns the image and the directory of the migrated run.
func sameAsUnmigrated(t *testing.T, stub string, ready func(pid int, dir string) bool, outputs []string, argv ...string) (*Image, string) {
	t.Helper()
	var img *Image
	run := func(migrated bool) string {
		dir := t.TempDir()
		args := make([]string, len(argv))
		for i, a := range argv {
			args[i] = strings.ReplaceAll(a, "{dir}", dir)
		}
		f, err := os.Create(filepath.Join(dir, "stdout"))
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Stdout = f
		err = cmd.Start()
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		if !migrated {
			if err := cmd.Wait(); err != nil {
				t.Fatalf("%s: %v", args[0], err)
			}
			return dir
		}
		for deadline := time.Now().Add(10 * time.Second); !ready(cmd.Process.Pid, dir); time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) || !alive(cmd.Process.Pid) {
				t.Fatalf("%s: ended or timed out before it was ready to migrate", args[0])
			}
		}
		var res *Restored
		img, res = migrateWith(t, cmd.Process.Pid, stub, migration{dead: func() { cmd.Wait() }})
		st, err := res.Process.Wait()
		if err != nil || !st.Success() {
			t.Fatalf("restored %s: %v, %v", args[0], st, err)
		}
		return dir
	}
	straight, migrated := run(false), run(true)
	for _, name := range append([]string{"stdout"}, outputs...) {
		a, err1 := os.ReadFile(filepath.Join(straight, name))
		b, err2 := os.ReadFile(filepath.Join(migrated, name))
		if err1 != nil || err2 != nil {
			t.Fatalf("%s: %v, %v", name, err1, err2)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs after migration: %d bytes, unmigrated %d", name, len(b), len(a))
		}
	}
	return img, migrated
}

// alive reports whether pid exists and has not exited (it may be in
// uninterruptible sleep, reading a file, which running does not count).
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	st, err := parseStat(string(b))
	return err == nil && st.State != 'Z' && st.State != 'X'
}

// stdoutLines says ready once {dir}/stdout has n lines.
func stdoutLines(n int) func(int, string) bool {
	return func(_ int, dir string) bool { return len(readLines(filepath.Join(dir, "stdout"))) >= n }
}

// TestSuiteFiles runs programs that append with O_APPEND through two
// descriptors, seek and write (and read back), and work through a
// MAP_SHARED file mapping (not copied: the file is the truth).
func TestSuiteFiles(t *testing.T) {
	needTracing(t)
	stub := buildC(t, "stub")
	for _, prog := range []string{"appender", "seeker", "mapshared"} {
		t.Run(prog, func(t *testing.T) {
			img, _ := sameAsUnmigrated(t, stub, stdoutLines(150), []string{"data"}, buildC(t, prog), "{dir}/data")
			for _, m := range img.Mappings {
				if m.Kind == KindFileShared && m.Data != nil {
					t.Errorf("shared file mapping %s copied", m.Path)
				}
			}
			if prog == "mapshared" && !hasKind(img, KindFileShared) {
				t.Errorf("no shared file mapping in the image")
			}
		})
	}
}

func hasKind(img *Image, k Kind) bool {
	for _, m := range img.Mappings {
		if m.Kind == k {
			return true
		}
	}
	return false
}

// TestSuiteSha256sum migrates sha256sum in the middle of a 200 MB file.
func TestSuiteSha256sum(t *testing.T) {
	needTracing(t)
	bin, err := exec.LookPath("sha256sum")
	if err != nil {
		t.Skip("sha256sum not installed: skipping the sha256sum migration")
	}
	stub := buildC(t, "stub")
	const size = 200 << 20
	in := filepath.Join(t.TempDir(), "in")
	sum := writeRandom(t, in, size)
	// Ready once the input is read between 10% and 90% (fd 3).
	mid := func(pid int, _ string) bool {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/fdinfo/3")
		if err != nil {
			return false
		}
		pos, _, err := parseFdinfo(string(b))
		return err == nil && pos > size/10 && pos < size*9/10
	}
	img, dir := sameAsUnmigrated(t, stub, mid, nil, bin, in)
	for _, f := range img.Files {
		if f.Path == in && (f.Offset <= 0 || f.Offset >= size) {
			t.Errorf("dumped at offset %d of %d: not in the middle", f.Offset, size)
		}
	}
	want := hex.EncodeToString(sum[:]) + "  " + in
	if got := readLines(filepath.Join(dir, "stdout")); len(got) != 1 || got[0] != want {
		t.Errorf("sha256sum printed %q, want %q", got, want)
	}
}

// writeRandom writes size pseudo-random bytes to file and returns their
// SHA-256.
func writeRandom(t *testing.T, file string, size int) [32]byte {
	t.Helper()
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	r := rand.NewChaCha8([32]byte{7})
	buf := make([]byte, 1<<20)
	for n := 0; n < size; n += len(buf) {
		r.Read(buf)
		h.Write(buf)
		if _, err := f.Write(buf); err != nil {
			t.Fatal(err)
		}
	}
	return [32]byte(h.Sum(nil))
}

// TestSuiteGzipStream migrates `gzip -c` in the middle of a stream, from
// a pipe on its stdin to a pipe on its stdout, as the agent will: fds 0,
// 1 and 2 are external; what was written into the old stdin pipe but not
// yet read is drained from our copy of its reading end once the process
// is gone and written first into the new pipe; what gzip wrote into the
// old stdout pipe is read to its end. Old and new output together are
// what an unmigrated gzip writes.
func TestSuiteGzipStream(t *testing.T) {
	needTracing(t)
	bin, err := exec.LookPath("gzip")
	if err != nil {
		t.Skip("gzip not installed: skipping the gzip migration")
	}
	stub := buildC(t, "stub")
	var stream []byte
	for x, i := uint64(1), 0; len(stream) < 16<<20; i++ {
		x = x*6364136223846793005 + 1442695040888963407
		stream = strconv.AppendUint(append(strconv.AppendInt(stream, int64(i), 10), ' '), x>>40, 16)
		stream = append(stream, '\n')
	}
	cmd := exec.Command(bin, "-c")
	cmd.Stdin = bytes.NewReader(stream)
	want, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}

	in0r, in0w := pipe(t)
	out0r, out0w := pipe(t)
	cmd = exec.Command(bin, "-c")
	cmd.Stdin, cmd.Stdout = in0r, out0w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	out0w.Close() // in0r is kept, to drain
	feed := startFeeding(stream, in0w)
	oldOut := collect(out0r)
	for feed.fed() < len(stream)/3 {
		time.Sleep(time.Millisecond)
	}
	feed.mu.Lock() // paused
	in1r, in1w := pipe(t)
	out1r, out1w := pipe(t)
	files := nullStdio(t, out1w)
	files[0] = in1r
	var left []byte
	_, res := migrateWith(t, cmd.Process.Pid, stub, migration{ext: stdio, files: files,
		dead: func() { cmd.Wait(); left = drain(t, in0r) }})
	in1r.Close()
	out1w.Close()
	t.Logf("%d of %d bytes fed, %d of them unread at the freeze", feed.off, len(stream), len(left))
	newOut := collect(out1r)
	if _, err := in1w.Write(left); err != nil {
		t.Fatal(err)
	}
	feed.w = in1w
	feed.mu.Unlock()
	if st, err := res.Process.Wait(); err != nil || !st.Success() {
		t.Fatalf("restored gzip: %v, %v", st, err)
	}
	got := append(<-oldOut, <-newOut...)
	if !bytes.Equal(got, want) {
		t.Fatalf("gzip output differs after migration: %d bytes, unmigrated %d", len(got), len(want))
	}
}

// feeder writes data into a pipe, in chunks, under mu: holding mu pauses
// it (a write blocked on a full pipe gives up within 10 ms and is tried
// again), and w can be changed meanwhile. It closes w at the end.
type feeder struct {
	mu   sync.Mutex
	w    *os.File
	data []byte
	off  int
}

func startFeeding(data []byte, w *os.File) *feeder {
	f := &feeder{w: w, data: data}
	go func() {
		for {
			f.mu.Lock()
			if f.off == len(f.data) {
				f.w.Close()
				f.mu.Unlock()
				return
			}
			f.w.SetWriteDeadline(time.Now().Add(10 * time.Millisecond))
			n, _ := f.w.Write(f.data[f.off:min(f.off+64<<10, len(f.data))])
			f.off += n
			f.mu.Unlock()
		}
	}()
	return f
}

func (f *feeder) fed() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.off
}

// collect reads r to its end and sends what it read.
func collect(r *os.File) <-chan []byte {
	c := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(r)
		c <- b
	}()
	return c
}

// drain reads what is left in the pipe whose reading end is r, without
// waiting for more.
func drain(t *testing.T, r *os.File) []byte {
	t.Helper()
	fd := int(r.Fd())
	if err := unix.SetNonblock(fd, true); err != nil {
		t.Fatal(err)
	}
	var left []byte
	buf := make([]byte, 64<<10)
	for {
		n, err := unix.Read(fd, buf)
		if n <= 0 || err != nil {
			return left
		}
		left = append(left, buf[:n]...)
	}
}
