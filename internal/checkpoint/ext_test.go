package checkpoint

import (
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

// TestRestoreITimer restores a process whose SIGALRM handler counts the
// expiries of a 20 ms ITIMER_REAL: the count must go on, without a gap or
// a repeat.
func TestRestoreITimer(t *testing.T) {
	needTracing(t)
	stub := buildC(t, "stub")
	out := filepath.Join(t.TempDir(), "out")
	cmd, _ := start(t, buildC(t, "itimer"), out)
	waitLines(t, out, 5)
	img, npid := migrate(t, cmd.Process.Pid, stub)
	if it := img.ITimers[0]; it.Interval != 20*time.Millisecond || it.Value <= 0 || it.Value > 20*time.Millisecond {
		t.Errorf("dumped ITIMER_REAL %+v, want a 20ms interval", it)
	}
	if img.ITimers[1] != (ITimer{}) || img.ITimers[2] != (ITimer{}) {
		t.Errorf("dumped ITIMER_VIRTUAL/PROF %+v, want disarmed", img.ITimers[1:])
	}
	before := len(readLines(out))
	lines := waitLines(t, out, before+10)
	checkCount(t, lines)
	if !running(npid) {
		t.Fatalf("restored process %d not running", npid)
	}
	t.Logf("count went on from %d to %d", before, len(lines))
}

// TestRestoreITimerExpired restores the same process as getitimer shows
// it between an expiry of its ITIMER_REAL and the SIGALRM being taken:
// no time left, the interval still set. The timer must go on (setitimer
// with a zero value disarmed it, and a process waiting for its next tick
// waited for ever: the itest suite's "signals and timer" case hung so).
func TestRestoreITimerExpired(t *testing.T) {
	needTracing(t)
	stub := buildC(t, "stub")
	out := filepath.Join(t.TempDir(), "out")
	cmd, _ := start(t, buildC(t, "itimer"), out)
	waitLines(t, out, 5)
	_, res := migrateWith(t, cmd.Process.Pid, stub, migration{edit: func(img *Image) { img.ITimers[0].Value = 0 }})
	before := len(readLines(out))
	checkCount(t, waitLines(t, out, before+10))
	if !running(res.Pid) {
		t.Fatalf("restored process %d not running", res.Pid)
	}
}

// TestRestorePendingSignals restores a process with two queued, blocked
// real-time signals, one in the thread queue and one in the shared queue:
// both arrive after the restore, with their values, in order.
func TestRestorePendingSignals(t *testing.T) {
	needTracing(t)
	stub := buildC(t, "stub")
	dir := t.TempDir()
	out, gofile := filepath.Join(dir, "out"), filepath.Join(dir, "go")
	cmd, _ := start(t, buildC(t, "rtsig"), out, gofile)
	waitLines(t, out, 1)
	img, npid := migrate(t, cmd.Process.Pid, stub)
	var shared []bool
	for _, p := range img.Pending {
		if p.Signo() != 35 { // SIGRTMIN+1 as glibc numbers it (SIGRTMIN is 34)
			t.Errorf("pending signal %d, want 35", p.Signo())
		}
		shared = append(shared, p.Shared)
	}
	if !reflect.DeepEqual(shared, []bool{false, true}) {
		t.Errorf("pending signals shared %v, want [false true]", shared)
	}
	if err := os.WriteFile(gofile, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	lines := waitLines(t, out, 2)
	if lines[1] != "7 9" {
		t.Fatalf("restored process %d received %q, want \"7 9\"", npid, lines[1])
	}
}

// TestRestoreCredentials restores a process started as nobody (65534,
// supplementary group 100) as that user.
func TestRestoreCredentials(t *testing.T) {
	needTracing(t)
	stub := buildC(t, "stub")
	bin := buildC(t, "counter")
	dir := t.TempDir()
	// The test directories are root's and 0700: let nobody in.
	for _, d := range []string{filepath.Dir(dir), dir, filepath.Dir(bin)} {
		if err := os.Chmod(d, 0o777); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(dir, "out")
	cmd := exec.Command(bin, out)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{100}}}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	waitLines(t, out, 10)
	img, npid := migrate(t, cmd.Process.Pid, stub)
	want := &Creds{Uid: [3]uint32{65534, 65534, 65534}, Gid: [3]uint32{65534, 65534, 65534}, Groups: []uint32{100}}
	if !reflect.DeepEqual(img.Creds, want) {
		t.Errorf("dumped credentials %+v, want %+v", img.Creds, want)
	}
	checkCount(t, waitLines(t, out, len(readLines(out))+10))
	status, err := os.ReadFile("/proc/" + strconv.Itoa(npid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for line := range strings.Lines(string(status)) {
		k, v, _ := strings.Cut(strings.TrimSpace(line), ":")
		got[k] = strings.Join(strings.Fields(v), " ")
	}
	for k, v := range map[string]string{"Uid": "65534 65534 65534 65534", "Gid": "65534 65534 65534 65534", "Groups": "100"} {
		if got[k] != v {
			t.Errorf("restored process %d: %s %q, want %q", npid, k, got[k], v)
		}
	}
}

func TestParseCreds(t *testing.T) {
	s := sampleStatus + "Uid:\t1000\t1001\t1002\t1001\nGid:\t100\t101\t102\t101\nGroups:\t4 24 27 \n"
	c, err := parseCreds(s)
	if err != nil {
		t.Fatal(err)
	}
	want := &Creds{Uid: [3]uint32{1000, 1001, 1002}, Gid: [3]uint32{100, 101, 102}, Groups: []uint32{4, 24, 27}}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("got %+v, want %+v", c, want)
	}
	if c, err := parseCreds(sampleStatus + "Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nGroups:\t\n"); err != nil || c.Groups != nil {
		t.Fatalf("no groups: %+v, %v", c, err)
	}
	if _, err := parseCreds(sampleStatus + "Uid:\t0\t0\t0\t0\nGroups:\t\n"); err == nil {
		t.Error("missing Gid accepted")
	}
	if _, err := parseCreds(sampleStatus + "Uid:\t0\tx\t0\t0\nGid:\t0\t0\t0\t0\nGroups:\t\n"); err == nil {
		t.Error("bad Uid accepted")
	}
}
