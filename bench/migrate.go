package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ssi-cluster/ssi/internal/api"
	"github.com/ssi-cluster/ssi/internal/harness"
)

// `go run ./bench migrate`: live migration between two namespace nodes of
// processes of several sizes dirtying memory at several rates: freeze
// time (stopped on the source to running on the target), total time, and
// the rates of each part.

// dirtySource is the benchmark's process: it fills argv[1] MiB with a
// pattern (every page non-zero), writes argv[3] when done, then dirties
// argv[2] MB/s: every 10 ms one word in each of the next pages, in
// order, as many pages as the rate gives.
const dirtySource = `#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
int main(int argc, char **argv) {
	size_t pages = ((size_t)atol(argv[1]) << 20) / 4096;
	long per = atol(argv[2]) * (1 << 20) / 4096 / 100; /* pages per 10 ms */
	uint64_t *m = mmap(0, pages * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED) return 1;
	for (size_t i = 0; i < pages * 512; i++) m[i] = i * 0x9e3779b97f4a7c15ULL | 1;
	FILE *f = fopen(argv[3], "w");
	if (!f) return 2;
	fclose(f);
	struct timespec tick = {0, 10 * 1000 * 1000};
	for (size_t c = 0;; ) {
		for (long j = 0; j < per; j++, c++) m[(c % pages) * 512 + (c / pages) % 512]++;
		nanosleep(&tick, 0);
	}
}
`

func migrateBench(ctx context.Context, args []string) error {
	fs := newFlags("migrate")
	sizes := fs.String("sizes", "100,1024,4096", "resident sizes of the processes, MiB")
	rates := fs.String("rates", "0,10,100", "rates at which they dirty memory, MB/s")
	fs.Parse(args)
	if !harness.Root() {
		return errors.New("migrate needs root (namespace nodes, ptrace)")
	}
	dir, err := os.MkdirTemp("", "ssi-bench-migrate")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	prog, err := buildDirty(dir)
	if err != nil {
		return err
	}
	c, stop, err := startCluster(ctx, 2, "--allow-remote-root", "true")
	if err != nil {
		return err
	}
	defer stop()
	avail := memAvailable()
	fmt.Printf("two namespace nodes; %d MiB of memory available; each row one migration from node 1 to node 2\n\n", avail>>20)
	agents, err := agentPids(c)
	if err != nil {
		return err
	}
	fmt.Println("| size | dirtying | freeze | of which dump / send / restore / agree | total | CPU source / target | pre-copied (rounds) | sent frozen | read (round 0) | stream | target writes |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|---|")
	for _, sz := range strings.Split(*sizes, ",") {
		mib, err := strconv.Atoi(sz)
		if err != nil {
			return fmt.Errorf("-sizes: %q", sz)
		}
		// The process, the source's pre-copy and the target's copy.
		if need := uint64(mib) << 20 * 3; need > avail {
			fmt.Printf("| %d MiB | | not run: needs %d MiB (3 copies), %d MiB available |||||||\n", mib, need>>20, avail>>20)
			continue
		}
		for _, r := range strings.Split(*rates, ",") {
			rate, err := strconv.Atoi(r)
			if err != nil {
				return fmt.Errorf("-rates: %q", r)
			}
			m, wall, cpu, err := migrateOnce(ctx, c, prog, dir, mib, rate, agents)
			if ctx.Err() != nil {
				return ctx.Err() // interrupted: no more rows
			}
			if err != nil {
				fmt.Printf("| %d MiB | %d MB/s | failed: %v ||||||||\n", mib, rate, err)
				continue
			}
			fmt.Printf("| %d MiB | %d MB/s | %s | %s / %s / %s / %s | %s | %s | %s (%d) | %s | %s | %s | %s |\n", mib, rate,
				msUS(m.FreezeUS), msUS(m.DumpUS), msUS(m.SendUS), msUS(m.RestoreUS), msUS(m.DecideUS), msUS(wall.Microseconds()), cpu,
				mbytes(m.PreCopied), m.Rounds, mbytes(m.Bytes), rate1(int64(mib)<<20, m.CopyUS),
				rate1(m.PreCopied, m.StreamUS), rate1(m.Written, m.WriteUS))
		}
	}
	return nil
}

// migrateOnce runs the dirtying process on node 1 (ssi run -d), waits
// until it has filled its memory, moves it to node 2 and kills it. It
// returns what the migration reported, its wall time and the CPU time
// the two agents spent during it.
func migrateOnce(ctx context.Context, c *harness.Cluster, prog, dir string, mib, rate int, agents []int) (m api.Migration, wall time.Duration, cpu string, err error) {
	ready := filepath.Join(dir, fmt.Sprintf("ready-%d-%d", mib, rate))
	// The deputy runs inside node 1, where its agent sees it.
	out, err := c.Command(1, c.Binary, "--socket", c.Nodes[0].Socket, "run", "-d", "--node", "1",
		prog, strconv.Itoa(mib), strconv.Itoa(rate), ready).Output()
	if err != nil {
		return m, 0, "", fmt.Errorf("ssi run -d: %v", err)
	}
	cpid, err := strconv.ParseInt(strings.Fields(string(out))[0], 10, 64)
	if err != nil {
		return m, 0, "", fmt.Errorf("run -d printed %q", out)
	}
	cl, err := c.Client(1)
	if err != nil {
		return m, 0, "", err
	}
	defer cl.Signal(context.Background(), api.SignalRequest{CPID: cpid, Signal: 9})
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(50 * time.Millisecond) {
		if _, err := os.Stat(ready); err == nil {
			break
		}
		if time.Now().After(deadline) {
			return m, 0, "", errors.New("the process did not fill its memory in 2 minutes")
		}
	}
	time.Sleep(time.Second) // dirtying at its rate
	cpu0, cerr := cpuSeconds(agents)
	t0 := time.Now()
	m, err = cl.Migrate(ctx, cpid, "2")
	wall = time.Since(t0)
	if cpu1, err := cpuSeconds(agents); err == nil && cerr == nil {
		cpu = fmt.Sprintf("%.2f / %.2f s", cpu1[0]-cpu0[0], cpu1[1]-cpu0[1])
	}
	return m, wall, cpu, err
}

func buildDirty(dir string) (string, error) {
	src, bin := filepath.Join(dir, "dirty.c"), filepath.Join(dir, "dirty")
	if err := os.WriteFile(src, []byte(dirtySource), 0o644); err != nil {
		return "", err
	}
	if b, err := exec.Command("gcc", "-O2", "-static", "-o", bin, src).CombinedOutput(); err != nil {
		return "", fmt.Errorf("gcc: %v: %s", err, b)
	}
	return bin, nil
}

// memAvailable is MemAvailable of /proc/meminfo, in bytes.
func memAvailable() uint64 { return procKB("/proc/meminfo", "MemAvailable:") << 10 }

// procKB is the value of the line of a /proc file (meminfo, status) that
// starts with key, in kB; 0 when absent.
func procKB(path, key string) uint64 {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), key); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb
		}
	}
	return 0
}

func msUS(us int64) string { return fmt.Sprintf("%.1f ms", float64(us)/1000) }

func mbytes(b int64) string { return fmt.Sprintf("%.1f MB", float64(b)/1e6) }

// rate1 is b bytes in us microseconds, in GB/s.
func rate1(b, us int64) string {
	if us <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f GB/s", float64(b)/float64(us)/1e3)
}
