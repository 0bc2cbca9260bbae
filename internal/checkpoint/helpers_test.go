package checkpoint

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// needTracing skips tests that trace real processes where they cannot run.
func needTracing(t testing.TB) {
	t.Helper()
	if runtime.GOARCH != "amd64" || runtime.GOOS != "linux" {
		t.Skip("checkpoint engine is linux/amd64 only")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: ptrace of other processes and PR_SET_MM_MAP (CAP_SYS_RESOURCE)")
	}
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("needs gcc to build the test programs")
	}
}

// buildC compiles testdata/NAME.c statically (dynamically if the first
// extra flag is "-dynamic") into a temporary directory.
func buildC(t testing.TB, name string, extra ...string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), name)
	args := append([]string{"-static", "-O2", "-o", out, filepath.Join("testdata", name+".c")}, extra...)
	if len(extra) > 0 && extra[0] == "-dynamic" {
		args = append([]string{"-O2", "-o", out, filepath.Join("testdata", name+".c")}, extra[1:]...)
	}
	if b, err := exec.Command("gcc", args...).CombinedOutput(); err != nil {
		t.Fatalf("gcc %s: %v\n%s", name, err, b)
	}
	return out
}

// start runs bin with stdin and stderr on /dev/null and stdout to the
// returned file; it is killed and reaped at cleanup.
func start(t testing.TB, bin string, args ...string) (*exec.Cmd, string) {
	t.Helper()
	stdout := filepath.Join(t.TempDir(), "stdout")
	f, err := os.Create(stdout)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command(bin, args...)
	cmd.Stdout = f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd, stdout
}

// reap kills and reaps a process we are the parent of.
func reap(t testing.TB, p *os.Process) {
	t.Helper()
	p.Signal(syscall.SIGKILL)
	p.Wait()
}

// waitLines waits until file has at least n lines and returns them.
func waitLines(t testing.TB, file string, n int) []string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		lines := readLines(file)
		if len(lines) >= n {
			return lines
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d lines, waited for %d", file, len(lines), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func readLines(file string) []string {
	b, _ := os.ReadFile(file)
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	return lines
}

// running reports whether pid exists and is not a zombie or stopped.
func running(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	st, err := parseStat(string(b))
	return err == nil && strings.IndexByte("RS", st.State) >= 0
}

// dumpResume freezes pid, dumps it and lets it go on.
func dumpResume(t testing.TB, pid int) *Image {
	t.Helper()
	p, err := Freeze(pid)
	if err != nil {
		t.Fatal(err)
	}
	img, err := p.Dump()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Resume(); err != nil {
		t.Fatal(err)
	}
	return img
}

// moveAndCheck starts bin with args(out), where bin writes 0, 1, 2... to
// out, moves it rounds times (plainly, or pre-copied as a migration does:
// how) checking that its count goes on after each move, then sends it
// SIGUSR1 and checks that it ends with status 0: the programs check their
// own state then (what names what they check). moved, if set, sees the
// image of each plain move (nil when pre-copied) and the new pid.
func moveAndCheck(t *testing.T, stub, bin, how, what string, rounds int, args func(out string) []string, moved func(round int, img *Image, pid int)) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "out")
	cmd, _ := start(t, bin, args(out)...)
	waitLines(t, out, 5)
	pid := cmd.Process.Pid
	var res *Restored
	for round := range rounds {
		var img *Image
		if how == "plain" {
			img, res = migrateWith(t, pid, stub, migration{})
		} else {
			res = precopyMigrate(t, pid, stub)
		}
		pid = res.Pid
		if moved != nil {
			moved(round, img, pid)
		}
		checkCount(t, waitLines(t, out, len(readLines(out))+5))
	}
	res.Process.Signal(syscall.SIGUSR1)
	if st, err := res.Process.Wait(); err != nil || !st.Success() {
		t.Fatalf("the restored program ended with %v (%v): %s", st, err, what)
	}
}

// outOnly is the arguments of a program that takes only its output file.
func outOnly(out string) []string { return []string{out} }
