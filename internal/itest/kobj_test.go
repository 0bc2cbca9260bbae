package itest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ssi-cluster/ssi/internal/api"
	"github.com/ssi-cluster/ssi/internal/harness"
)

// Programs that hold kernel objects the checkpoint engine carries (epoll
// instances, eventfds, /dev/urandom), run by `ssi run --node 2` from node
// 1 and moved to node 3 and back to node 2 while they run: they count on
// without a line lost or repeated and end, at SIGUSR1, as a run that was
// never moved ends.

// kobjProg is one such program: cmd is what `ssi run --node 2` runs (ps
// lists it with cmd as a prefix) and out returns what the run d has
// written so far (its file, or its deputy's stdout).
type kobjProg struct {
	cmd string
	out func(d *bgDeputy) string
}

// kobjEnd is how a run of a kobjProg ended.
type kobjEnd struct {
	code   int
	stdout string
	stderr string
	lines  int
}

// kobjCount checks that out is the lines 0, 1, 2... (a last line still
// being written aside) and returns how many are complete.
func kobjCount(out string) (int, error) {
	lines := strings.Split(out, "\n")
	lines = lines[:len(lines)-1] // "" after the last newline, or a line being written
	for i, l := range lines {
		if l != strconv.Itoa(i) {
			return i, fmt.Errorf("line %d is %q, want %d (a line lost or repeated): ... %s ...", i+1, l, i,
				strings.Join(lines[max(0, i-3):min(len(lines), i+4)], " "))
		}
	}
	return len(lines), nil
}

// kobjWait waits until the run d of p has written at least n lines, every
// one once and in order, and returns how many it has written; a broken
// count, or a run that ends meanwhile, fails the test at once.
func kobjWait(t *testing.T, ctx context.Context, c *harness.Cluster, p kobjProg, d *bgDeputy, n int) int {
	t.Helper()
	var got int
	var broken error
	err := c.WaitFor(ctx, fmt.Sprintf("the count to reach %d lines", n), func() (bool, error) {
		k, err := kobjCount(p.out(d))
		if err != nil {
			broken = err
			return true, nil
		}
		got = k
		select {
		case <-d.done:
			if k < n {
				broken = fmt.Errorf("the run ended (exit %d) after %d lines; stderr %q", d.cmd.ProcessState.ExitCode(), k, d.stderr.String())
				return true, nil
			}
		default:
		}
		return check(got >= n, "%d lines", got)
	})
	if err == nil {
		err = broken
	}
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// kobjFind waits until node 1 lists the run of p on node 2 (its cluster
// pid one of node 1, its home: a run listed before it is tracked shows a
// cluster pid of node 2), exactly one, and returns it.
func kobjFind(t *testing.T, ctx context.Context, c *harness.Cluster, p kobjProg, d *bgDeputy) api.Proc {
	t.Helper()
	var found api.Proc
	var ended error
	err := c.WaitFor(ctx, "ps to list "+p.cmd, func() (bool, error) {
		select {
		case <-d.done:
			ended = fmt.Errorf("the run ended (exit %d) before ps listed it; stdout %q, stderr %q",
				d.cmd.ProcessState.ExitCode(), clip(d.stdout.String()), d.stderr.String())
			return true, nil
		default:
		}
		procs, err := psJSON(ctx, c, 1)
		if err != nil {
			return false, err
		}
		n := 0
		for _, q := range procs {
			if strings.HasPrefix(q.Command, p.cmd) && q.Node == 2 && int(q.CPID>>22) == 1 {
				found = q
				n++
			}
		}
		return check(n == 1, "%d runs of %q from node 1 on node 2", n, p.cmd)
	})
	if err == nil {
		err = ended
	}
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// kobjStart starts p on node 2 from a deputy on node 1, its stdin
// /dev/null, and waits until it has written 20 lines.
func kobjStart(t *testing.T, ctx context.Context, c *harness.Cluster, p kobjProg) (*bgDeputy, api.Proc) {
	t.Helper()
	d := startDeputy(t, c, 1, "ssi run --node 2 "+p.cmd+" </dev/null")
	proc := kobjFind(t, ctx, c, p, d)
	cpid := strconv.FormatInt(proc.CPID, 10)
	t.Cleanup(func() { // a test that failed leaves no run behind
		kctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c.CLI(kctx, 1, "kill", "-KILL", cpid)
	})
	kobjWait(t, ctx, c, p, d, 20)
	return d, proc
}

// kobjStop sends the run SIGUSR1 with ssi kill and returns how it ended.
func kobjStop(t *testing.T, ctx context.Context, c *harness.Cluster, p kobjProg, d *bgDeputy, cpid int64) kobjEnd {
	t.Helper()
	if out, err := c.CLI(ctx, 1, "kill", "-s", "USR1", strconv.FormatInt(cpid, 10)); err != nil {
		t.Fatalf("ssi kill -s USR1: %v: %s", err, out)
	}
	e := kobjEnd{code: d.wait(t, time.Minute), stdout: d.stdout.String(), stderr: d.stderr.String()}
	out := p.out(d)
	if !strings.HasSuffix(out, "\n") {
		t.Errorf("the output does not end with a whole line: %s", clipTail(out))
	}
	var err error
	if e.lines, err = kobjCount(out); err != nil {
		t.Errorf("the output at the end: %v", err)
	}
	return e
}

// kobjMoves runs prog("plain") unmigrated, then prog("moved") moved from
// node 2 to node 3 and back to node 2 while it runs: its count goes on on
// each node, not a line lost or repeated, and at SIGUSR1 it ends as the
// unmigrated run ended (status 0, the same stderr; with stdoutIsCount
// false, the same stdout).
func kobjMoves(t *testing.T, ctx context.Context, c *harness.Cluster, prog func(run string) kobjProg, stdoutIsCount bool) {
	t.Helper()
	p := prog("plain")
	d0, p0 := kobjStart(t, ctx, c, p)
	plain := kobjStop(t, ctx, c, p, d0, p0.CPID)
	if plain.code != 0 {
		t.Fatalf("the unmigrated run exited %d, want 0; stderr %q", plain.code, plain.stderr)
	}
	t.Logf("unmigrated run: %d lines, exit 0", plain.lines)

	p = prog("moved")
	d, proc := kobjStart(t, ctx, c, p)
	cpid := strconv.FormatInt(proc.CPID, 10)
	// The first move, as a user types it: ssi migrate must not refuse it
	// (a descriptor the engine does not carry is named in the refusal).
	o := ssiAs(t, c, 1, "", "migrate", cpid, "3")
	if strings.Contains(o.stderr+o.stdout, "cannot move") || strings.Contains(o.stderr+o.stdout, "refuses") {
		t.Fatalf("ssi migrate %s 3 refuses to move it:\n%s%s", cpid, o.stderr, o.stdout)
	}
	if want := cpid + ": node 2 -> node 3, pid "; o.code != 0 || !strings.HasPrefix(o.stdout, want) {
		t.Fatalf("ssi migrate %s 3: %v; want exit 0 and %q...", cpid, o, want)
	}
	t.Logf("move 1: %s", strings.ReplaceAll(strings.TrimSpace(o.stdout), "\n  ", "; "))
	if w := waitWhere(t, ctx, c, 1, proc.CPID, 3); w.State == "T" {
		t.Errorf("on node 3 it is stopped: %+v", w)
	}
	n := kobjWait(t, ctx, c, p, d, 0)
	n = kobjWait(t, ctx, c, p, d, n+20) // it counts on, on node 3

	mg, err := migrateCLI(ctx, c, 1, proc.CPID, "2")
	if err != nil {
		t.Fatalf("move 2 (node 3 -> node 2): %v", err)
	}
	t.Logf("move 2: node %d -> %d, pid %d -> %d, frozen %.1f ms, %d bytes", mg.From, mg.To, mg.Pid, mg.NewPid, float64(mg.FreezeUS)/1000, mg.Bytes)
	if mg.CPID != proc.CPID || mg.From != 3 || mg.To != 2 {
		t.Errorf("move 2: %+v; want cluster pid %d from node 3 to node 2", mg, proc.CPID)
	}
	if w := waitWhere(t, ctx, c, 1, proc.CPID, 2); w.Pid != mg.NewPid || w.State == "T" {
		t.Errorf("after move 2 where says %+v; want pid %d, running", w, mg.NewPid)
	}
	kobjWait(t, ctx, c, p, d, n+20) // and on node 2 again

	moved := kobjStop(t, ctx, c, p, d, proc.CPID)
	if moved.code != 0 {
		t.Fatalf("the migrated run exited %d, want 0 (as unmigrated); stderr %q", moved.code, moved.stderr)
	}
	if moved.lines < n+20 {
		t.Errorf("the migrated run ends with %d lines, fewer than the %d it had written", moved.lines, n+20)
	}
	if moved.stderr != plain.stderr {
		t.Errorf("the migrated run's stderr %q, unmigrated %q", moved.stderr, plain.stderr)
	}
	if !stdoutIsCount && moved.stdout != plain.stdout {
		t.Errorf("the migrated run's stdout %q, unmigrated %q", clip(moved.stdout), clip(plain.stdout))
	}
	t.Logf("migrated run: %d lines, every one once and in order, exit 0", moved.lines)
}

// TestMigrateGoTimers: a Go program (CGO_ENABLED=0) whose runtime waits
// in an epoll instance woken by an eventfd, with a 20 ms Ticker,
// goroutines and os/signal, writing its count to a file, moves from node
// 2 to node 3 and back while it runs, and exits 0 at SIGUSR1.
func TestMigrateGoTimers(t *testing.T) {
	needRoot(t)
	dir := shortTempX(t) // every node sees it
	bin := filepath.Join(dir, "goticker")
	bctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	build := exec.CommandContext(bctx, "go", "build", "-o", bin, "./testdata/goticker")
	build.Dir = filepath.Join("..", "checkpoint")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build goticker: %v\n%s", err, b)
	}
	c, ctx := startCluster(t, 3, "--allow-remote-root", "true")
	kobjMoves(t, ctx, c, func(run string) kobjProg {
		file := filepath.Join(dir, run+".out")
		return kobjProg{cmd: bin + " " + file, out: func(*bgDeputy) string {
			b, _ := os.ReadFile(file)
			return string(b)
		}}
	}, false)
}

// evloopPy wakes from select.epoll every 20 ms (an eventfd it watches is
// empty), prints its count, appends it to a tempfile.TemporaryFile (a
// deleted file, read back whole at the end) and stores it in mmap(-1)
// memory (MAP_SHARED anonymous, checked at the end), reads 16 bytes of
// /dev/urandom, and checks
// eventfd counters: the one it watches (written, then epoll says it is
// ready, read back, empty again), one that counts the wakes across them,
// and one in semaphore mode holding 5. Any surprise: a message on stderr
// and exit 3. SIGUSR1 ends it with status 0 after the wake it is in.
const evloopPy = `import mmap, os, select, signal, sys, tempfile

def fail(msg):
    sys.stderr.write('surprise: %s\n' % msg)
    sys.stderr.flush()
    os._exit(3)

stop = False
def usr1(signum, frame):
    global stop
    stop = True
signal.signal(signal.SIGUSR1, usr1)

ep = select.epoll()
efd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
ep.register(efd, select.EPOLLIN)
acc = os.eventfd(0, os.EFD_NONBLOCK)
sem = os.eventfd(5, os.EFD_SEMAPHORE | os.EFD_NONBLOCK)
# Unbuffered: every wake reads the descriptor itself.
rnd = open('/dev/urandom', 'rb', buffering=0)
# A deleted file (O_TMPFILE): every wake appends its count; read back at the end.
tmp = tempfile.TemporaryFile(buffering=0)
# MAP_SHARED anonymous memory (python's mmap(-1) default): each wake writes a byte.
shm = mmap.mmap(-1, 65536)

def empty(fd, what, n):
    try:
        v = os.eventfd_read(fd)
    except BlockingIOError:
        return
    fail('wake %d: %s read %d, want EAGAIN' % (n, what, v))

n = 0
prev = b''
try:
    while not stop:
        ev = ep.poll(0.02)
        if ev:
            fail('wake %d: epoll returned %r, its eventfd empty' % (n, ev))
        b = rnd.read(16)
        if len(b) != 16 or b == prev:
            fail('wake %d: /dev/urandom gave %r after %r' % (n, b, prev))
        prev = b
        os.eventfd_write(efd, n + 1)
        ev = ep.poll(0)
        if ev != [(efd, select.EPOLLIN)]:
            fail('wake %d: epoll returned %r, want [(%d, EPOLLIN)]' % (n, ev, efd))
        v = os.eventfd_read(efd)
        if v != n + 1:
            fail('wake %d: the watched eventfd read %d, want %d' % (n, v, n + 1))
        empty(efd, 'the watched eventfd', n)
        ev = ep.poll(0)
        if ev:
            fail('wake %d: epoll returned %r after the read' % (n, ev))
        os.eventfd_write(acc, 1)
        v = os.eventfd_read(acc)
        if v != n + 1:
            fail('wake %d: the counting eventfd read %d, want %d' % (n, v, n + 1))
        os.eventfd_write(acc, v)
        for i in range(5):
            v = os.eventfd_read(sem)
            if v != 1:
                fail('wake %d: semaphore read %d gave %d, want 1' % (n, i, v))
        empty(sem, 'the semaphore eventfd, after 5 reads', n)
        os.eventfd_write(sem, 5)
        tmp.write(b'%d\n' % n)
        shm[n % 65536] = n % 251
        print(n, flush=True)
        n += 1
    tmp.seek(0)
    got = tmp.read()
    want = b''.join(b'%d\n' % i for i in range(n))
    if got != want:
        fail('the temporary file holds %d bytes, want %d' % (len(got), len(want)))
    for i in range(max(0, n - 65536), n):
        if shm[i % 65536] != i % 251:
            fail('the shared mapping holds %d at %d, want %d' % (shm[i % 65536], i % 65536, i % 251))
except Exception as e:
    fail('wake %d: %r' % (n, e))
sys.exit(0)
`

// TestMigratePythonEventLoop: a python3 event loop on select.epoll, an
// eventfd and /dev/urandom (evloopPy), printing its count through its
// deputy, moves from node 2 to node 3 and back while it runs: its own
// checks of the eventfd counters and epoll readiness pass on every node,
// and it exits 0 at SIGUSR1. (Not asyncio: its self-pipe, a socketpair,
// cannot move yet.)
func TestMigratePythonEventLoop(t *testing.T) {
	needRoot(t)
	py := kobjPython(t, "os.eventfd", "a python3 with os.eventfd (3.10 or later)")
	script := kobjScript(t, "evloop.py", evloopPy)
	c, ctx := startCluster(t, 3, "--allow-remote-root", "true")
	kobjMoves(t, ctx, c, func(run string) kobjProg {
		// The argument, ignored, tells the two runs apart in ps.
		return kobjProg{cmd: py + " " + script + " " + run, out: func(d *bgDeputy) string { return d.stdout.String() }}
	}, true)
}

// TestMigrateTailFollow: `tail -f` (coreutils, which waits on an inotify
// watch in poll) follows a file the test appends a line to every 20 ms,
// and moves from node 2 to node 3 and back while it runs: every line
// reaches its deputy once and in order, and it follows on, on each node.
func TestMigrateTailFollow(t *testing.T) {
	needRoot(t)
	tail, err := exec.LookPath("tail")
	if err != nil {
		t.Skip("needs tail")
	}
	dir := shortTempX(t) // every node sees it
	log := filepath.Join(dir, "follow.log")
	f, err := os.OpenFile(log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		defer f.Close()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			fmt.Fprintln(f, i)
		}
	}()
	t.Cleanup(func() { close(stop); <-done })
	c, ctx := startCluster(t, 3, "--allow-remote-root", "true")
	p := kobjProg{cmd: tail + " -n +1 -f " + log, out: func(d *bgDeputy) string { return d.stdout.String() }}
	d, proc := kobjStart(t, ctx, c, p)
	for _, to := range []int{3, 2} {
		mg, err := migrateCLI(ctx, c, 1, proc.CPID, strconv.Itoa(to))
		if err != nil {
			t.Fatalf("move to node %d: %v", to, err)
		}
		t.Logf("move: node %d -> %d, pid %d -> %d, frozen %.1f ms", mg.From, mg.To, mg.Pid, mg.NewPid, float64(mg.FreezeUS)/1000)
		if w := waitWhere(t, ctx, c, 1, proc.CPID, to); w.State == "T" {
			t.Errorf("on node %d it is stopped: %+v", to, w)
		}
		n := kobjWait(t, ctx, c, p, d, 0)
		kobjWait(t, ctx, c, p, d, n+20) // it follows on, on its new node
	}
}

// manyMapsPy maps 30,000 pages apart (alternate protections keep the
// kernel from merging them), then prints its count every 20 ms.
const manyMapsPy = `import mmap, time
maps = [mmap.mmap(-1, 4096, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS,
                  prot=mmap.PROT_READ | (mmap.PROT_WRITE if i % 2 else 0)) for i in range(30000)]
n = 0
while True:
    print(n, flush=True)
    n += 1
    time.sleep(0.02)
`

// TestMigrateManyMappings: a process with 30,000 mappings, whose layout
// is several megabytes (it was refused: "layout message of 4714995 bytes
// exceeds 2097152"), moves from node 2 to node 3 while it runs and counts
// on.
func TestMigrateManyMappings(t *testing.T) {
	needRoot(t)
	py := "/usr/bin/python3"
	if !exists(py) {
		t.Skip("needs /usr/bin/python3")
	}
	dir := shortTempX(t)
	script := filepath.Join(dir, "manymaps.py")
	if err := os.WriteFile(script, []byte(manyMapsPy), 0o644); err != nil {
		t.Fatal(err)
	}
	c, ctx := startCluster(t, 3, "--allow-remote-root", "true")
	p := kobjProg{cmd: py + " " + script, out: func(d *bgDeputy) string { return d.stdout.String() }}
	d, proc := kobjStart(t, ctx, c, p)
	mg, err := migrateCLI(ctx, c, 1, proc.CPID, "3")
	if err != nil {
		t.Fatalf("move to node 3: %v", err)
	}
	t.Logf("move: node %d -> %d, frozen %.1f ms, %d bytes", mg.From, mg.To, float64(mg.FreezeUS)/1000, mg.Bytes)
	waitWhere(t, ctx, c, 1, proc.CPID, 3)
	n := kobjWait(t, ctx, c, p, d, 0)
	kobjWait(t, ctx, c, p, d, n+20)
}

// tickJS counts every 20 ms with setInterval and exits 0 at SIGUSR1.
const tickJS = `let n = 0;
setInterval(() => { console.log(n++); }, 20);
process.on('SIGUSR1', () => process.exit(0));
`

// TestMigrateNodeTimers: Node.js (libuv: epoll instances, eventfds and
// its internal pipes, both ends its own) counting with setInterval moves
// from node 2 to node 3 and back while it runs, and exits 0 at SIGUSR1
// (it was refused with 14 reasons).
func TestMigrateNodeTimers(t *testing.T) {
	needRoot(t)
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("needs node (Node.js)")
	}
	dir := shortTempX(t)
	script := filepath.Join(dir, "tick.js")
	if err := os.WriteFile(script, []byte(tickJS), 0o644); err != nil {
		t.Fatal(err)
	}
	c, ctx := startCluster(t, 3, "--allow-remote-root", "true")
	kobjMoves(t, ctx, c, func(run string) kobjProg {
		return kobjProg{cmd: node + " " + script + " " + run, out: func(d *bgDeputy) string { return d.stdout.String() }}
	}, true)
}

// asyncioPy counts every 20 ms in an asyncio loop (an epoll instance and
// a socketpair for its self-pipe), and ends at SIGUSR1 through
// loop.add_signal_handler (which the self-pipe carries) with status 0.
const asyncioPy = `import asyncio, signal, sys
async def main():
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGUSR1, stop.set)
    n = 0
    while not stop.is_set():
        print(n, flush=True)
        n += 1
        try:
            await asyncio.wait_for(stop.wait(), 0.02)
        except asyncio.TimeoutError:
            pass
asyncio.run(main())
sys.exit(0)
`

// TestMigratePythonAsyncio: a python asyncio program moves from node 2
// to node 3 and back while it runs (its self-pipe, a socketpair, was
// refused), counts on, and exits 0 at SIGUSR1, which reaches its loop
// through that socketpair. (asyncio checks that the loop runs in the
// same pid: the harness's nodes keep it.)
func TestMigratePythonAsyncio(t *testing.T) {
	needRoot(t)
	py := "/usr/bin/python3"
	if !exists(py) {
		t.Skip("needs /usr/bin/python3")
	}
	dir := shortTempX(t)
	script := filepath.Join(dir, "aio.py")
	if err := os.WriteFile(script, []byte(asyncioPy), 0o644); err != nil {
		t.Fatal(err)
	}
	c, ctx := startCluster(t, 3, "--allow-remote-root", "true")
	kobjMoves(t, ctx, c, func(run string) kobjProg {
		return kobjProg{cmd: py + " " + script + " " + run, out: func(d *bgDeputy) string { return d.stdout.String() }}
	}, true)
}

// mpQueuePy counts through a multiprocessing.Queue and a
// multiprocessing.Lock (POSIX semaphores, sem_open and unlinked at once:
// gone shared memory; a pipe with both ends in the process; the queue's
// feeder thread), printing each number it gets back, until SIGUSR1.
const mpQueuePy = `import multiprocessing, os, signal, sys, time

stop = False
def usr1(signum, frame):
    global stop
    stop = True
signal.signal(signal.SIGUSR1, usr1)

q = multiprocessing.Queue()
lock = multiprocessing.Lock()
n = 0
while not stop:
    with lock:
        q.put(n)
        got = q.get(timeout=5)
    if got != n:
        sys.stderr.write('surprise: the queue gave %r, want %d\n' % (got, n))
        os._exit(3)
    if lock.acquire(block=False):
        lock.release()
    else:
        sys.stderr.write('surprise: the lock is held after its release\n')
        os._exit(3)
    print(n, flush=True)
    n += 1
    time.sleep(0.02)
q.close()
q.join_thread()
sys.exit(0)
`

// TestMigratePythonMultiprocessingQueue: python's multiprocessing.Queue
// and Lock (named POSIX semaphores unlinked once open, an in-process
// pipe, a feeder thread), counting through the queue under the lock,
// move from node 2 to node 3 and back while they run: every number comes
// back once and in order, and it exits 0 at SIGUSR1. Refused before:
// "shared memory: mapping ... /dev/shm/sem.... (deleted)".
func TestMigratePythonMultiprocessingQueue(t *testing.T) {
	needRoot(t)
	py := kobjPython(t, "import multiprocessing; multiprocessing.Lock()", "a python3 with working multiprocessing locks (/dev/shm)")
	script := kobjScript(t, "mpqueue.py", mpQueuePy)
	c, ctx := startCluster(t, 3, "--allow-remote-root", "true")
	kobjMoves(t, ctx, c, func(run string) kobjProg {
		return kobjProg{cmd: py + " " + script + " " + run, out: func(d *bgDeputy) string { return d.stdout.String() }}
	}, true)
}

// kobjPython is the python3 interpreter itself (not a wrapper such as
// pyenv's shim, which would run it as a child), /usr/bin/python3 as the
// other itests run it if there is one, once probe (python statements)
// runs in it; the test is skipped, saying it needs what, if not.
func kobjPython(t *testing.T, probe, what string) string {
	t.Helper()
	py := "/usr/bin/python3"
	if !exists(py) {
		var err error
		if py, err = exec.LookPath("python3"); err != nil {
			t.Skip("needs python3")
		}
	}
	b, err := exec.Command(py, "-c", "import os, sys\n"+probe+"\nprint(sys.executable)").CombinedOutput()
	if err != nil {
		t.Skipf("needs %s: %v: %s", what, err, b)
	}
	return strings.TrimSpace(string(b))
}

// kobjScript writes src as name in a directory every node sees.
func kobjScript(t *testing.T, name, src string) string {
	t.Helper()
	script := filepath.Join(shortTempX(t), name)
	if err := os.WriteFile(script, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return script
}
