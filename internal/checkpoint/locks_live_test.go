package checkpoint

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// holdsLock reports whether pid still holds a lock or lease through one
// of its descriptors (a "lock:" line in its fdinfo).
func holdsLock(pid int) bool {
	dir := "/proc/" + strconv.Itoa(pid) + "/fdinfo/"
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		b, _ := os.ReadFile(dir + e.Name())
		if strings.Contains(string(b), "\nlock:") {
			return true
		}
	}
	return false
}

// refusedFor checks that Check and Freeze refuse pid for code with
// detail, and that pid runs on.
func refusedFor(t *testing.T, pid int, code ReasonCode, detail string) {
	t.Helper()
	var re *RefusalError
	err := Check(pid)
	if !errors.As(err, &re) || len(re.Reasons) != 1 || re.Reasons[0].Code != code || re.Reasons[0].Detail != detail {
		t.Fatalf("Check(%d) = %v; want only %v: %s", pid, err, code, detail)
	}
	p, err := Freeze(pid)
	if !errors.As(err, &re) || !re.Has(code) {
		if p != nil {
			p.Resume()
		}
		t.Fatalf("Freeze(%d) = %v, want a refusal for %v", pid, err, code)
	}
	t.Logf("%v", err)
	time.Sleep(20 * time.Millisecond)
	if !running(pid) {
		t.Fatalf("process %d no longer running after the refusal", pid)
	}
}

// TestRefuseLocks: a process holding each kind of lock or lease is
// refused with the kind, mode and file; it runs on and keeps its lock. A
// checkpoint that leaves it running (RunsOn) accepts it.
func TestRefuseLocks(t *testing.T) {
	needTracing(t)
	bin := buildC(t, "locker")
	for _, c := range []struct{ kind, want string }{
		{"posix", "holds a write lock (POSIX) on "},
		{"posix-read", "holds a read lock (POSIX) on "},
		{"flock", "holds an exclusive lock (flock) on "},
		{"flock-shared", "holds a shared lock (flock) on "},
		{"ofd", "holds a write lock (OFD) on "},
		{"lease", "holds a read lease on "},
	} {
		t.Run(c.kind, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "db.sqlite")
			if err := os.WriteFile(file, []byte("data"), 0o644); err != nil {
				t.Fatal(err)
			}
			cmd, stdout := start(t, bin, c.kind, file)
			if l := waitLines(t, stdout, 1)[0]; l != "locked" {
				t.Fatalf("locker %s: %s", c.kind, l)
			}
			pid := cmd.Process.Pid
			refusedFor(t, pid, Locks, c.want+file)
			if !holdsLock(pid) {
				t.Errorf("process %d lost its lock", pid)
			}
			if err := CheckWith(pid, Options{RunsOn: true}); err != nil {
				t.Errorf("CheckWith RunsOn: %v", err)
			}
		})
	}
}

// TestRefuseCwdGone: a process whose working directory was removed, or
// was the /proc directory of a process that ended, is refused and runs
// on.
func TestRefuseCwdGone(t *testing.T) {
	needTracing(t)
	bin := buildC(t, "pauser")
	startIn := func(dir string) int {
		t.Helper()
		cmd := exec.Command(bin, filepath.Join(t.TempDir(), "out"))
		cmd.Dir = dir
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			cmd.Process.Kill()
			cmd.Wait()
		})
		time.Sleep(50 * time.Millisecond) // past its exec
		return cmd.Process.Pid
	}
	t.Run("removed", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "x")
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		pid := startIn(dir)
		if err := Check(pid); err != nil {
			t.Fatalf("Check before the removal: %v", err)
		}
		if err := os.Remove(dir); err != nil {
			t.Fatal(err)
		}
		refusedFor(t, pid, Unrestorable, "its working directory "+dir+" was deleted")
	})
	t.Run("replaced", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "y")
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		pid := startIn(dir)
		if err := os.Rename(dir, dir+".old"); err != nil {
			t.Fatal(err)
		}
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		// The link follows the rename: the process is in y.old, which
		// is still there and still its directory.
		if err := Check(pid); err != nil {
			t.Fatalf("Check after a rename: %v", err)
		}
	})
	t.Run("gone /proc/PID", func(t *testing.T) {
		other := exec.Command("sleep", "100")
		if err := other.Start(); err != nil {
			t.Fatal(err)
		}
		opid := other.Process.Pid
		pid := startIn("/proc/" + strconv.Itoa(opid))
		other.Process.Kill()
		other.Wait()
		refusedFor(t, pid, Unrestorable, "its working directory /proc/"+strconv.Itoa(opid)+" was deleted (process "+strconv.Itoa(opid)+" ended)")
	})
}

// TestRefuseFileReplaced: the path of a file the process has open now
// leads to another file (a file system mounted over its directory): a
// restore would open the other one. (A file renamed over shows as
// deleted: reason DeletedFile.)
func TestRefuseFileReplaced(t *testing.T) {
	needTracing(t)
	dir := filepath.Join(t.TempDir(), "d")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	cmd, _ := start(t, buildC(t, "pauser"), out)
	pid := cmd.Process.Pid
	time.Sleep(50 * time.Millisecond)
	if err := Check(pid); err != nil {
		t.Fatalf("Check: %v", err)
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=64k"); err != nil {
		t.Skipf("mount a tmpfs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	if err := os.WriteFile(out, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	var re *RefusalError
	err := Check(pid)
	want := "fd 3: " + out + " is no longer the file it has open: another file is at that path now"
	if !errors.As(err, &re) || len(re.Reasons) != 1 || re.Reasons[0].Code != Unrestorable || re.Reasons[0].Detail != want {
		t.Fatalf("Check = %v; want only %q", err, want)
	}
	t.Logf("%v", err)
}
