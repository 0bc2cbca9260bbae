package itest

import (
	"context"
	"encoding/json"
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

// The correctness suite of live migration: programs run by `ssi run`,
// moved back and forth between nodes while they run, must leave exactly
// what an unmigrated run leaves (through their deputy).

// buildProgs compiles testdata/NAME.c, or the checkpoint engine's
// testdata/NAME.c when there is none here, for each name (statically,
// with AVX2 allowed) into dir and returns their paths by name.
func buildProgs(t *testing.T, dir string, names ...string) map[string]string {
	t.Helper()
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("needs gcc to build the test programs")
	}
	out := map[string]string{}
	for _, n := range names {
		bin := filepath.Join(dir, n)
		src := filepath.Join("testdata", n+".c")
		args := []string{"-O2", "-static", "-pthread", "-o", bin}
		if _, err := os.Stat(src); err != nil {
			// The engine's own test programs, napping 5 ms between steps
			// (2 ms there) so that a move lands in the middle of the run.
			src = filepath.Join("..", "checkpoint", "testdata", n+".c")
			args = append(args, "-DNAP_MS=5")
		}
		args = append(args, src, "-lrt")
		if n == "avx" {
			args = append(args, "-mavx2", "-ffixed-xmm7")
		}
		if b, err := exec.Command("gcc", args...).CombinedOutput(); err != nil {
			t.Fatalf("gcc %s: %v\n%s", n, err, b)
		}
		out[n] = bin
	}
	return out
}

// migrateCLI runs `ssi migrate CPID TO` from node `from` and returns the
// migration it reports.
func migrateCLI(ctx context.Context, c *harness.Cluster, from int, cpid int64, to string) (api.Migration, error) {
	var m api.Migration
	out, err := c.CLI(ctx, from, "migrate", "-o", "json", strconv.FormatInt(cpid, 10), to)
	if err != nil {
		return m, err
	}
	return m, json.Unmarshal(out, &m)
}

// waitWhere waits until where (from node `from`) says cpid runs on node.
func waitWhere(t *testing.T, ctx context.Context, c *harness.Cluster, from int, cpid int64, node int) api.Proc {
	t.Helper()
	var p api.Proc
	err := c.WaitFor(ctx, fmt.Sprintf("process %d on node %d", cpid, node), func() (bool, error) {
		var err error
		if p, err = whereJSON(ctx, c, from, cpid); err != nil {
			return false, err
		}
		return check(p.Node == node, "it is on node %d", p.Node)
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// migrating is one program of the suite: a shell script for node 2 around
// `ssi run --node 1 CMD` (CMD as ps shows it).
type migrating struct {
	name   string
	script string
	cmd    string
}

// runMigrated runs m once unmigrated and once moved between node 1 and
// node 2 (moves times, starting after `first`), and compares what the
// deputy's shell printed.
func runMigrated(t *testing.T, ctx context.Context, c *harness.Cluster, m migrating, moves int, first time.Duration) {
	t.Helper()
	plain := startDeputy(t, c, 2, m.script)
	if code := plain.wait(t, 2*time.Minute); code != 0 {
		t.Fatalf("unmigrated run exited %d: %s", code, plain.stderr.String())
	}
	d := startDeputy(t, c, 2, m.script)
	findRun(t, ctx, c, 2, m.cmd)
	time.Sleep(first)
	p := findRun(t, ctx, c, 2, m.cmd) // with its cluster pid, once registered
	to := []string{"2", "1"}
	for i := 0; i < moves; i++ {
		mg, err := migrateCLI(ctx, c, 1+i%2, p.CPID, to[i%2])
		if err != nil {
			t.Fatalf("move %d: %v", i+1, err)
		}
		t.Logf("%s: move %d: node %d -> %d, pid %d -> %d, frozen %.1f ms, %d bytes", m.name, i+1, mg.From, mg.To,
			mg.Pid, mg.NewPid, float64(mg.FreezeUS)/1000, mg.Bytes)
		if mg.CPID != p.CPID {
			t.Errorf("move %d: cluster pid %d, want %d", i+1, mg.CPID, p.CPID)
		}
		if w, err := whereJSON(ctx, c, 2, p.CPID); err != nil || w.Node != mg.To || w.Pid != mg.NewPid {
			t.Errorf("after move %d where says %+v, %v; want node %d pid %d", i+1, w, err, mg.To, mg.NewPid)
		}
		time.Sleep(150 * time.Millisecond)
	}
	if code := d.wait(t, 2*time.Minute); code != 0 {
		t.Fatalf("migrated run exited %d: %s", code, d.stderr.String())
	}
	if got, want := d.stdout.String(), plain.stdout.String(); got != want {
		t.Errorf("%s: migrated output differs from the unmigrated one\n got: %s\nwant: %s", m.name, clipTail(got), clipTail(want))
	}
	if d.stderr.String() != plain.stderr.String() {
		t.Errorf("%s: stderr %q, unmigrated %q", m.name, d.stderr.String(), plain.stderr.String())
	}
}

// shortTempX is a temporary directory that every user may read and
// search (test programs run as other users too).
func shortTempX(t *testing.T) string {
	dir := shortTemp(t)
	os.Chmod(dir, 0o755)
	return dir
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func clipTail(s string) string {
	lines := strings.Split(s, "\n")
	if len(lines) > 6 {
		return fmt.Sprintf("(%d lines) ...%s", len(lines), strings.Join(lines[len(lines)-6:], "\n"))
	}
	return s
}

// TestMigrateSuite moves C programs (a counter in nanosleep, AVX
// registers and math, signal handlers and a timer, writers through
// O_APPEND and by seeking, a MAP_SHARED file, threads with a mutex and
// condition variables, a large heap) and real programs (python3,
// sha256sum and gzip -c reading a slow stream on their stdin) between two
// nodes while they run: each must print through its deputy what an
// unmigrated run prints.
func TestMigrateSuite(t *testing.T) {
	c, ctx := startCluster(t, 2, "--allow-remote-root", "true")
	dir := shortTemp(t)
	os.Chmod(dir, 0o755)
	bins := buildProgs(t, dir, "counter", "avx", "signals", "threads", "heap", "appender", "seeker", "mapshared", "slowcat")
	big := filepath.Join(dir, "big")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 48; i++ { // 48 MiB, not too regular for gzip
		line := fmt.Sprintf("%08x line %d of chunk %d\n", i*2654435761, i, i%7)
		fmt.Fprintf(f, "%s", strings.Repeat(line, 1<<20/len(line)))
	}
	f.Close()
	run := func(cmd string) string { return "ssi run --node 1 " + cmd }
	progs := []migrating{
		{"counter", run(bins["counter"] + " 300"), bins["counter"] + " 300"},
		{"avx", run(bins["avx"] + " 300"), bins["avx"] + " 300"},
		{"signals and timer", run(bins["signals"] + " 300"), bins["signals"] + " 300"},
		{"threads", run(bins["threads"] + " 2000 8"), bins["threads"] + " 2000 8"},
		{"heap", run(bins["heap"] + " 200 64"), bins["heap"] + " 200 64"},
		{"appender", run(bins["appender"]+" "+filepath.Join(dir, "app.out")) + " && cat " + filepath.Join(dir, "app.out"), bins["appender"] + " " + filepath.Join(dir, "app.out")},
		{"seeker", run(bins["seeker"]+" "+filepath.Join(dir, "seek.out")) + " && sha256sum <" + filepath.Join(dir, "seek.out"), bins["seeker"] + " " + filepath.Join(dir, "seek.out")},
		{"mapshared", run(bins["mapshared"] + " " + filepath.Join(dir, "map.out")), bins["mapshared"] + " " + filepath.Join(dir, "map.out")},
	}
	if py := "/usr/bin/python3"; exists(py) {
		code := "import time\nprimes=[]\nfor n in range(2, 30000):\n  if all(n % p for p in primes if p*p <= n): primes.append(n)\n  if n % 100 == 0: print(n, len(primes), sum(primes), flush=True); time.sleep(0.01)\nprint('done', len(primes), sum(primes))"
		progs = append(progs, migrating{"python3", run(py + ` -c "` + code + `"`), py + " -c " + code})
	}
	if sum, err := exec.LookPath("sha256sum"); err == nil {
		progs = append(progs, migrating{"sha256sum", bins["slowcat"] + " " + big + " 256 20 | " + run(sum), sum})
	}
	if gz, err := exec.LookPath("gzip"); err == nil {
		progs = append(progs, migrating{"gzip -c", bins["slowcat"] + " " + big + " 256 20 | " + run(gz+" -c") + " | sha256sum", gz + " -c"})
	}
	for _, m := range progs {
		t.Run(m.name, func(t *testing.T) { runMigrated(t, ctx, c, m, 3, 300*time.Millisecond) })
	}
}
