package itest

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ssi-cluster/ssi/internal/harness"
)

// writeLocked reports whether someone holds a lock on file that a write
// lock over all of it would conflict with (fcntl F_GETLK).
func writeLocked(file string) (bool, error) {
	f, err := os.OpenFile(file, os.O_RDWR, 0)
	if err != nil {
		return false, err
	}
	defer f.Close()
	l := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0}
	if err := unix.FcntlFlock(f.Fd(), unix.F_GETLK, &l); err != nil {
		return false, err
	}
	return l.Type != unix.F_UNLCK, nil
}

// flocked reports whether someone holds an flock on file.
func flocked(file string) (bool, error) {
	f, err := os.Open(file)
	if err != nil {
		return false, err
	}
	defer f.Close()
	err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	if err == unix.EWOULDBLOCK {
		return true, nil
	}
	return false, err
}

// runsOn checks that cpid runs on node `node`, not stopped.
func runsOn(t *testing.T, ctx context.Context, c *harness.Cluster, cpid int64, node int) {
	t.Helper()
	if w, err := whereJSON(ctx, c, 1, cpid); err != nil || w.Node != node || w.State == "T" {
		t.Errorf("after the refusal: %+v, %v; want it running on node %d", w, err, node)
	}
}

// TestRefuseLocksAndGoneCwd: a process holding a file lock is refused by
// ssi migrate with the lock's kind, mode and file, before anything is
// frozen, and runs on with its lock (a native process with a POSIX lock;
// a run with an flock); ssi checkpoint --kill of a process whose working
// directory was deleted is refused and the process runs on; and sqlite3
// inside "begin exclusive" is refused and no row is lost.
func TestRefuseLocksAndGoneCwd(t *testing.T) {
	c, ctx := startCluster(t, 2)
	dir := shortTemp(t)
	os.Chmod(dir, 0o777)
	bins := buildProgs(t, dir, "locker", "counter")
	nobody := "65534:65534"

	t.Run("posix lock, native", func(t *testing.T) {
		file, out := filepath.Join(dir, "posix.db"), filepath.Join(dir, "posix.out")
		pid := startNative(t, c, 1, asNobody, bins["locker"]+" posix "+file+" >"+out+" </dev/null 2>/dev/null", nil)
		cpid := int64(1)<<22 | int64(pid)
		if err := c.WaitFor(ctx, "the lock", func() (bool, error) {
			b, _ := os.ReadFile(out)
			return check(string(b) == "locked\n", "locker printed %q", b)
		}); err != nil {
			t.Fatal(err)
		}
		o := ssiAs(t, c, 1, nobody, "migrate", strconv.FormatInt(cpid, 10), "2")
		want := "holds a write lock (POSIX) on " + file
		if o.code == 0 || !strings.Contains(o.stderr, "cannot move") || !strings.Contains(o.stderr, "lock: "+want) {
			t.Errorf("migrate: %v; want a refusal with %q", o, want)
		}
		t.Logf("%s", o.stderr)
		runsOn(t, ctx, c, cpid, 1)
		if held, err := writeLocked(file); !held {
			t.Errorf("the lock is free after the refusal (%v)", err)
		}
	})

	t.Run("several kinds, one line each", func(t *testing.T) {
		file := filepath.Join(dir, "several.db")
		os.WriteFile(file, nil, 0o666)
		os.Chmod(file, 0o666)
		// Its stdout is a pipe of the test's: a reason of another kind.
		pid := startNative(t, c, 1, asNobody, bins["locker"]+" flock "+file+" </dev/null 2>/dev/null", &bytes.Buffer{})
		cpid := int64(1)<<22 | int64(pid)
		if err := c.WaitFor(ctx, "the flock", func() (bool, error) {
			held, err := flocked(file)
			return check(held, "flocked %v, %v", held, err)
		}); err != nil {
			t.Fatal(err)
		}
		o := ssiAs(t, c, 1, nobody, "migrate", strconv.FormatInt(cpid, 10), "2")
		want := "cannot move:\n  pipe: fd 1: pipe:["
		want2 := "]\n  lock: holds an exclusive lock (flock) on " + file + "\n"
		if o.code == 0 || !strings.Contains(o.stderr, want) || !strings.Contains(o.stderr, want2) {
			t.Errorf("migrate: %v; want a refusal with %q and %q", o, want, want2)
		}
		t.Logf("%s", o.stderr)
		runsOn(t, ctx, c, cpid, 1)
	})

	t.Run("flock, ssi run", func(t *testing.T) {
		file := filepath.Join(dir, "flock.db")
		os.WriteFile(file, nil, 0o666)
		os.Chmod(file, 0o666) // past the umask: nobody opens it to write
		d := startDeputy(t, c, 2, asNobody+"ssi run --node 1 "+bins["locker"]+" flock "+file+" </dev/null")
		p := findRun(t, ctx, c, 2, bins["locker"]+" flock "+file)
		if err := c.WaitFor(ctx, "the lock", func() (bool, error) {
			return check(d.stdout.String() == "locked\n", "locker printed %q", d.stdout.String())
		}); err != nil {
			t.Fatal(err)
		}
		o := ssiAs(t, c, 2, nobody, "migrate", strconv.FormatInt(p.CPID, 10), "2")
		want := "lock: holds an exclusive lock (flock) on " + file
		if o.code == 0 || !strings.Contains(o.stderr, want) {
			t.Errorf("migrate: %v; want a refusal with %q", o, want)
		}
		runsOn(t, ctx, c, p.CPID, 1)
		if held, err := flocked(file); !held {
			t.Errorf("the flock is free after the refusal (%v)", err)
		}
		// A checkpoint that leaves it running takes it (the image does
		// not hold the lock); one that would kill it is refused.
		img := filepath.Join(dir, "flock.img")
		if o := ssiAs(t, c, 2, nobody, "checkpoint", "--kill", strconv.FormatInt(p.CPID, 10), img); o.code == 0 || !strings.Contains(o.stderr, want) {
			t.Errorf("checkpoint --kill: %v; want a refusal with %q", o, want)
		}
		if exists(img) {
			t.Errorf("checkpoint --kill refused, yet %s was written", img)
		}
		if o := ssiAs(t, c, 2, nobody, "checkpoint", strconv.FormatInt(p.CPID, 10), img); o.code != 0 || !strings.Contains(o.stdout, "it runs on") {
			t.Errorf("checkpoint: %v", o)
		}
		runsOn(t, ctx, c, p.CPID, 1)
		if held, err := flocked(file); !held {
			t.Errorf("the flock is free after the checkpoint (%v)", err)
		}
	})

	t.Run("checkpoint --kill, working directory deleted", func(t *testing.T) {
		wd, out, img := filepath.Join(dir, "wd"), filepath.Join(dir, "wd.out"), filepath.Join(dir, "wd.img")
		os.Mkdir(wd, 0o777)
		os.Chmod(wd, 0o777)
		pid := startNative(t, c, 1, asNobody, "sh -c 'cd "+wd+" && exec "+bins["counter"]+" 100000 >"+out+" </dev/null 2>/dev/null'", nil)
		cpid := int64(1)<<22 | int64(pid)
		countLines(t, ctx, c, out, 20)
		if err := os.Remove(wd); err != nil {
			t.Fatal(err)
		}
		o := ssiAs(t, c, 2, nobody, "checkpoint", "--kill", strconv.FormatInt(cpid, 10), img)
		want := "its working directory " + wd + " was deleted"
		if o.code == 0 || !strings.Contains(o.stderr, want) {
			t.Errorf("checkpoint --kill: %v; want a refusal with %q", o, want)
		}
		t.Logf("%s", o.stderr)
		if exists(img) {
			t.Errorf("checkpoint --kill refused, yet %s was written", img)
		}
		n := countLines(t, ctx, c, out, 0)
		countLines(t, ctx, c, out, n+20) // it counts on
		runsOn(t, ctx, c, cpid, 1)
		if o := ssiAs(t, c, 1, nobody, "migrate", strconv.FormatInt(cpid, 10), "2"); o.code == 0 || !strings.Contains(o.stderr, want) {
			t.Errorf("migrate: %v; want a refusal with %q", o, want)
		}
		ssiAs(t, c, 1, "", "kill", "-KILL", strconv.FormatInt(cpid, 10))
	})

	t.Run("sqlite3 begin exclusive", func(t *testing.T) {
		sqlite, err := exec.LookPath("sqlite3")
		if err != nil {
			t.Skip("needs sqlite3 (not installed)")
		}
		sdir := filepath.Join(dir, "sq")
		os.Mkdir(sdir, 0o777)
		os.Chmod(sdir, 0o777) // sqlite3, as nobody, makes its journal there
		db, fifo := filepath.Join(sdir, "t.db"), filepath.Join(sdir, "in")
		asUser := func(args ...string) *exec.Cmd {
			cmd := exec.Command("setpriv", append([]string{"--reuid", "65534", "--regid", "65534", "--clear-groups", sqlite}, args...)...)
			cmd.Dir = sdir
			return cmd
		}
		if b, err := asUser(db, "create table t(x)").CombinedOutput(); err != nil {
			t.Fatalf("create: %v %s", err, b)
		}
		if err := syscall.Mkfifo(fifo, 0o666); err != nil {
			t.Fatal(err)
		}
		os.Chmod(fifo, 0o666)
		d := startDeputy(t, c, 2, "cd "+sdir+" && "+asNobody+"ssi run --node 1 "+sqlite+" "+db+" <"+fifo)
		in, err := os.OpenFile(fifo, os.O_WRONLY, 0) // meets the shell's redirection
		if err != nil {
			t.Fatal(err)
		}
		defer in.Close()
		in.WriteString("begin exclusive;\ninsert into t values(1);\n")
		if err := c.WaitFor(ctx, "sqlite3's exclusive lock", func() (bool, error) {
			held, err := writeLocked(db)
			return check(held && err == nil, "locked %v, %v", held, err)
		}); err != nil {
			t.Fatal(err)
		}
		p := findRun(t, ctx, c, 2, sqlite+" "+db)
		o := ssiAs(t, c, 2, nobody, "migrate", strconv.FormatInt(p.CPID, 10), "2")
		want := "holds a write lock (POSIX) on " + db
		if o.code == 0 || !strings.Contains(o.stderr, want) {
			t.Errorf("migrate: %v; want a refusal with %q", o, want)
		}
		t.Logf("%s", o.stderr)
		runsOn(t, ctx, c, p.CPID, 1)
		// The lock is still held: a second writer finds the database locked.
		if b, err := asUser(db, "insert into t values(2)").CombinedOutput(); err == nil || !strings.Contains(string(b), "locked") {
			t.Errorf("a second writer during the first's transaction: %v %s; want \"database is locked\"", err, b)
		}
		in.WriteString("commit;\n.quit\n")
		in.Close()
		if code := d.wait(t, time.Minute); code != 0 {
			t.Errorf("sqlite3 exited %d: %s%s", code, d.stdout.String(), d.stderr.String())
		}
		if b, err := asUser("-cmd", ".timeout 10000", db, "insert into t values(2)").CombinedOutput(); err != nil {
			t.Fatalf("the second writer after the commit: %v %s", err, b)
		}
		b, err := asUser(db, "select x from t order by x").CombinedOutput()
		if err != nil || string(b) != "1\n2\n" {
			t.Errorf("rows: %q, %v; want 1 and 2", b, err)
		}
	})
}
