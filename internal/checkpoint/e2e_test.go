package checkpoint

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// migrate freezes pid, dumps it, kills it, passes the image through the
// stream encoding and restores it from a fresh stub.
func migrate(t *testing.T, pid int, stub string) (*Image, int) {
	t.Helper()
	img, res := migrateWith(t, pid, stub, migration{})
	return img, res.Pid
}

// migration is what migrateWith does besides migrate.
type migration struct {
	ext   []int            // Options.External
	files map[int]*os.File // RestoreOptions.Files
	dead  func()           // called once the original is killed (to reap it, freeing its pid)
	edit  func(*Image)     // changes the decoded image before the restore
}

// migrateWith is migrate with options.
func migrateWith(t *testing.T, pid int, stub string, m migration) (*Image, *Restored) {
	t.Helper()
	t0 := time.Now()
	defer func() { t.Logf("migrate: total %v", time.Since(t0)) }()
	p, err := FreezeWith(pid, Options{External: m.ext})
	if err != nil {
		t.Fatalf("Freeze: %v", err)
	}
	img, err := p.Dump()
	if err != nil {
		p.Resume()
		t.Fatalf("Dump: %v", err)
	}
	t.Logf("freeze+dump %v", time.Since(t0))
	if err := p.Kill(); err != nil {
		t.Fatalf("Kill: %v", err)
	}
	if m.dead != nil {
		m.dead()
	}
	var buf bytes.Buffer
	if err := img.Encode(&buf); err != nil {
		t.Fatalf("Encode: %v", err)
	}
	img2, err := Decode(&buf)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	t.Logf("encode+decode done %v", time.Since(t0))
	if m.edit != nil {
		m.edit(img2)
	}
	res, err := RestoreWith(img2, stub, RestoreOptions{Files: m.files})
	if err != nil {
		t.Fatalf("Restore: %v", err)
	}
	t.Logf("restored as pid %d (image %d, kept %v: %v), threads %v (%d kept)", res.Pid, img.Pid, res.PidKept, res.PidErr, res.Tids, res.TidsKept)
	t.Cleanup(func() { reap(t, res.Process) })
	return img, res
}

// checkCount checks lines are 0, 1, 2... with no gap and no repeat.
func checkCount(t *testing.T, lines []string) {
	t.Helper()
	for i, l := range lines {
		if l != strconv.Itoa(i) {
			t.Fatalf("line %d is %q, want %d (lines %q)", i, l, i, lines[max(0, i-3):min(len(lines), i+3)])
		}
	}
}

func TestRestoreCounter(t *testing.T) {
	needTracing(t)
	stub := buildC(t, "stub")
	bin := buildC(t, "counter")
	out := filepath.Join(t.TempDir(), "out")
	cmd, stdout := start(t, bin, out)
	waitLines(t, out, 20)
	pid := cmd.Process.Pid
	var prev *Image
	for round := range 3 {
		img, npid := migrate(t, pid, stub)
		if prev != nil {
			sameProcess(t, prev, img)
		}
		before := len(readLines(out))
		lines := waitLines(t, out, before+20)
		if !running(npid) {
			t.Fatalf("restored process %d not running", npid)
		}
		checkCount(t, lines)
		checkCount(t, readLines(stdout)) // stdout is a regular file with an offset
		t.Logf("round %d: pid %d -> %d went on from line %d to %d", round, pid, npid, before, len(lines))
		prev, pid = img, npid
	}
}

// sameProcess checks that what a restore should carry over did: b is a
// dump of the process restored from a.
func sameProcess(t *testing.T, a, b *Image) {
	t.Helper()
	if len(a.Mappings) != len(b.Mappings) {
		t.Errorf("%d mappings became %d", len(a.Mappings), len(b.Mappings))
	}
	for i := range min(len(a.Mappings), len(b.Mappings)) {
		ma, mb := a.Mappings[i], b.Mappings[i]
		if ma.Start != mb.Start || ma.End != mb.End || ma.Prot != mb.Prot || ma.Flags != mb.Flags ||
			ma.Path != mb.Path || ma.Kind != mb.Kind || ma.Offset != mb.Offset {
			t.Errorf("mapping %d: %#x-%#x %d %s became %#x-%#x %d %s", i, ma.Start, ma.End, ma.Prot, ma.Path,
				mb.Start, mb.End, mb.Prot, mb.Path)
		}
	}
	type fixed struct {
		Comm, Exe, Cwd string
		Umask          uint32
		MM             MM
		Rseq           Rseq
		TID            uint64
		Robust         RobustList
		Alt            AltStack
		Mask           uint64
	}
	fa := fixed{a.Comm, a.Exe, a.Cwd, a.Umask, a.MM, a.Rseq, a.TIDAddress, a.RobustList, a.AltStack, a.SigMask}
	fb := fixed{b.Comm, b.Exe, b.Cwd, b.Umask, b.MM, b.Rseq, b.TIDAddress, b.RobustList, b.AltStack, b.SigMask}
	if fa != fb {
		t.Errorf("process state changed:\n was %+v\n now %+v", fa, fb)
	}
	if !reflect.DeepEqual(a.SigActions, b.SigActions) || !reflect.DeepEqual(a.Rlimits, b.Rlimits) ||
		!bytes.Equal(a.Auxv, b.Auxv) {
		t.Errorf("signal actions, limits or auxv changed")
	}
	if len(a.Files) != len(b.Files) {
		t.Errorf("files %+v became %+v", a.Files, b.Files)
	}
	for i := range min(len(a.Files), len(b.Files)) {
		fa, fb := a.Files[i], b.Files[i]
		if fa.Fd != fb.Fd || fa.Path != fb.Path || fa.Flags != fb.Flags || fb.Offset < fa.Offset {
			t.Errorf("file %+v became %+v", fa, fb)
		}
	}
}

func TestRestoreHeap(t *testing.T) {
	needTracing(t)
	stub := buildC(t, "stub")
	bin := buildC(t, "heap")
	out := filepath.Join(t.TempDir(), "out")
	cmd, _ := start(t, bin, out)
	first := waitLines(t, out, 2)
	migrate(t, cmd.Process.Pid, stub)
	before := len(readLines(out))
	lines := waitLines(t, out, before+5)
	sum := func(l string) string { return l[bytes.IndexByte([]byte(l), ' '):] }
	for i, l := range lines {
		if sum(l) != sum(first[0]) || l[:len(l)-len(sum(l))] != strconv.Itoa(i) {
			t.Fatalf("line %d: %q, want %d%s", i, l, i, sum(first[0]))
		}
	}
}

func TestRestoreInNanosleep(t *testing.T) {
	needTracing(t)
	stub := buildC(t, "stub")
	bin := buildC(t, "sleeper")
	out := filepath.Join(t.TempDir(), "out")
	cmd, _ := start(t, bin, out)
	waitLines(t, out, 2)
	time.Sleep(50 * time.Millisecond) // well inside a 300 ms nanosleep
	img, _ := migrate(t, cmd.Process.Pid, stub)
	if int64(img.Regs.Rax) != -516 || img.Regs.OrigRax != 230 {
		t.Errorf("dumped in rax %d orig_rax %d, want -516 (ERESTART_RESTARTBLOCK) in clock_nanosleep (230)",
			int64(img.Regs.Rax), img.Regs.OrigRax)
	}
	before := len(readLines(out))
	lines := waitLines(t, out, before+2)
	checkCount(t, lines)
}

func TestRestoreSignals(t *testing.T) {
	needTracing(t)
	stub := buildC(t, "stub")
	out := filepath.Join(t.TempDir(), "out")
	cmd, _ := start(t, buildC(t, "signals"), out)
	waitLines(t, out, 10)
	img, npid := migrate(t, cmd.Process.Pid, stub)
	if img.SigMask != 1<<(syscall.SIGHUP-1) || img.AltStack.Size != 65536 {
		t.Errorf("dumped mask %#x, altstack %+v", img.SigMask, img.AltStack)
	}
	n := len(waitLines(t, out, len(readLines(out))+3))
	for _, s := range []syscall.Signal{syscall.SIGUSR2, syscall.SIGHUP, syscall.SIGUSR1} {
		if err := syscall.Kill(npid, s); err != nil {
			t.Fatal(err)
		}
	}
	lines := waitLines(t, out, n+10)
	found := false
	for i, l := range lines {
		num, rest, _ := strings.Cut(l, " ")
		if num != strconv.Itoa(i) {
			t.Fatalf("line %d is %q", i, l)
		}
		if rest != "" {
			if rest != "usr1 1" {
				t.Fatalf("line %q: the handler did not run on the alternate stack", l)
			}
			found = true
		}
	}
	if !found || !running(npid) {
		t.Fatalf("SIGUSR1 handler did not run (%v) or the process died (running %v)", found, running(npid))
	}
}

// TestFreezeResume checks that a dumped, resumed process goes on without
// a gap or a repeat.
func TestFreezeResume(t *testing.T) {
	needTracing(t)
	out := filepath.Join(t.TempDir(), "out")
	cmd, _ := start(t, buildC(t, "counter"), out)
	waitLines(t, out, 5)
	for range 5 {
		p, err := Freeze(cmd.Process.Pid)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.Dump(); err != nil {
			t.Fatal(err)
		}
		if err := p.Resume(); err != nil {
			t.Fatal(err)
		}
		waitLines(t, out, len(readLines(out))+2)
	}
	checkCount(t, readLines(out))
}

// TestRestoreRefusesOtherVDSO checks that a failed restore leaves no
// process behind.
func TestRestoreRefusesOtherVDSO(t *testing.T) {
	needTracing(t)
	stub := buildC(t, "stub")
	cmd, _ := start(t, buildC(t, "counter"), filepath.Join(t.TempDir(), "out"))
	img := dumpResume(t, cmd.Process.Pid)
	for i := range img.Mappings {
		if img.Mappings[i].Kind == KindVDSO {
			img.Mappings[i].Data[100] ^= 0xff
		}
	}
	np, err := Restore(img, stub)
	if !errors.Is(err, ErrVDSOMismatch) {
		t.Fatalf("Restore = %v, %v; want ErrVDSOMismatch", np, err)
	}
	noChildLeft(t, cmd.Process.Pid)
}

// noChildLeft checks that no child but ours (the test's own process) is
// waiting to be reaped: a failed restore leaves nothing behind.
func noChildLeft(t *testing.T, ours int) {
	t.Helper()
	var ws syscall.WaitStatus
	if pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG|syscall.WALL, nil); pid > 0 && pid != ours {
		t.Fatalf("a child %d was left behind (%v)", pid, err)
	}
}

// TestRestoreDynamic restores a dynamically linked program (ld.so, libc.so
// mapped from their files).
func TestRestoreDynamic(t *testing.T) {
	needTracing(t)
	stub := buildC(t, "stub")
	out := filepath.Join(t.TempDir(), "out")
	cmd, _ := start(t, buildC(t, "counter", "-dynamic"), out)
	waitLines(t, out, 10)
	migrate(t, cmd.Process.Pid, stub)
	checkCount(t, waitLines(t, out, len(readLines(out))+20))
}

// TestRestorePython restores python3 in the middle of a computation whose
// result is known.
func TestRestorePython(t *testing.T) {
	needTracing(t)
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("no python3")
	}
	stub := buildC(t, "stub")
	out := filepath.Join(t.TempDir(), "out")
	script := `
import sys, time
f = open(sys.argv[1], "a", buffering=1)
total = 0
for i in range(300):
    total += i * i
    f.write("%d %d\n" % (i, total))
    time.sleep(0.005)
f.write("done %d\n" % total)
`
	cmd, _ := start(t, py, "-c", script, out)
	waitLines(t, out, 20)
	_, npid := migrate(t, cmd.Process.Pid, stub)
	lines := waitLines(t, out, 301)
	want := 0
	for i := range 300 {
		want += i * i
		if lines[i] != strconv.Itoa(i)+" "+strconv.Itoa(want) {
			t.Fatalf("line %d is %q", i, lines[i])
		}
	}
	if lines[300] != "done "+strconv.Itoa(want) {
		t.Fatalf("last line %q (pid %d)", lines[300], npid)
	}
}

// TestRestoreAVX checks that the extended register state (a pattern kept
// in ymm7 across system calls) comes back.
func TestRestoreAVX(t *testing.T) {
	needTracing(t)
	cpu, _ := os.ReadFile("/proc/cpuinfo")
	if !strings.Contains(string(cpu), " avx") {
		t.Skip("no AVX")
	}
	stub := buildC(t, "stub")
	out := filepath.Join(t.TempDir(), "out")
	cmd, _ := start(t, buildC(t, "avx", "-ffixed-xmm7"), out)
	waitLines(t, out, 10)
	migrate(t, cmd.Process.Pid, stub)
	lines := waitLines(t, out, len(readLines(out))+20)
	for i, l := range lines {
		if l != strconv.Itoa(i)+" ok" {
			t.Fatalf("line %d is %q", i, l)
		}
	}
}

// TestRestoreInPause restores a process blocked in pause(), which the
// freeze interrupts with -ERESTARTNOHAND: the call must be re-run, not
// return, until a signal comes.
func TestRestoreInPause(t *testing.T) {
	needTracing(t)
	stub := buildC(t, "stub")
	out := filepath.Join(t.TempDir(), "out")
	cmd, _ := start(t, buildC(t, "pauser"), out)
	waitLines(t, out, 1)
	time.Sleep(20 * time.Millisecond)
	img, npid := migrate(t, cmd.Process.Pid, stub)
	if int64(img.Regs.Rax) != -514 || img.Regs.OrigRax != 34 {
		t.Errorf("dumped in rax %d orig_rax %d, want -514 (ERESTARTNOHAND) in pause (34)",
			int64(img.Regs.Rax), img.Regs.OrigRax)
	}
	time.Sleep(100 * time.Millisecond)
	if n := len(readLines(out)); n != 1 {
		t.Fatalf("pause returned without a signal: %d lines", n)
	}
	for i := 1; i <= 3; i++ {
		syscall.Kill(npid, syscall.SIGUSR1)
		waitLines(t, out, i+1)
	}
	checkCount(t, readLines(out))
}

// TestMigrateNonChild dumps and kills a process that is not the caller's
// child (its parent shell has exited), and restores it.
func TestMigrateNonChild(t *testing.T) {
	needTracing(t)
	stub := buildC(t, "stub")
	bin := buildC(t, "counter")
	out := filepath.Join(t.TempDir(), "out")
	b, err := exec.Command("sh", "-c", `"$0" "$1" </dev/null >/dev/null 2>&1 & echo $!`, bin, out).Output()
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
	waitLines(t, out, 10)
	migrate(t, pid, stub)
	if err := syscall.Kill(pid, 0); err == nil && running(pid) {
		t.Fatalf("original %d still running", pid)
	}
	checkCount(t, waitLines(t, out, len(readLines(out))+20))
}
