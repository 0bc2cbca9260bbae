package checkpoint

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// TestRestoreAttributes migrates testdata/attrs.c twice (plainly, and
// pre-copied in two rounds, where the dump takes smaps as read after the
// last round) and checks that
// its attributes come back: as root with every attribute set (OOM score
// adjustment, personality, THP disabled, child subreaper, no_new_privs,
// not dumpable, a membarrier registration, madvise and mlock on its
// pages, a shared mapping of a file open for writing), and as nobody with
// none set (dumpable stays 1: a restore's setresuid used to reset it to
// fs.suid_dumpable). The program checks itself at SIGUSR1; the test
// compares smaps' VmFlags of its regions and its oom_score_adj from
// outside.
func TestRestoreAttributes(t *testing.T) {
	needTracing(t)
	stub := buildC(t, "stub")
	bin := buildC(t, "attrs")
	for _, tc := range []struct{ mode, how string }{{"set", "plain"}, {"keep", "plain"}, {"set", "pre-copied"}} {
		mode := tc.mode
		t.Run(mode+" "+tc.how, func(t *testing.T) {
			dir, err := os.MkdirTemp("", "attrs")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.RemoveAll(dir) })
			os.Chmod(dir, 0o777) // the program runs as nobody in "keep"
			exe, out, mapped := filepath.Join(dir, "attrs"), filepath.Join(dir, "out"), filepath.Join(dir, "mapped")
			if b, err := os.ReadFile(bin); err != nil || os.WriteFile(exe, b, 0o755) != nil {
				t.Fatal("copy the program", err)
			}
			if err := os.WriteFile(mapped, make([]byte, 4096), 0o666); err != nil {
				t.Fatal(err)
			}
			os.Chmod(mapped, 0o666)
			cmd := exec.Command(exe, out, mapped, mode)
			if mode == "keep" {
				cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
			lines := waitLines(t, out, 6)
			var region, shared uint64
			if _, err := fmt.Sscanf(lines[0], "regions %x %x", &region, &shared); err != nil {
				t.Fatalf("%q: %v", lines[0], err)
			}
			pid := cmd.Process.Pid
			flags := regionFlags(t, pid, region, shared)
			named := strings.Contains(readTrim(t, pid, "maps"), "[anon:ssi-name]") // CONFIG_ANON_VMA_NAME
			oom := readTrim(t, pid, "oom_score_adj")
			var res *Restored
			for round := range 2 {
				if tc.how == "plain" {
					_, res = migrateWith(t, pid, stub, migration{})
				} else {
					res = precopyMigrate(t, pid, stub)
				}
				pid = res.Pid
				if got := regionFlags(t, pid, region, shared); got != flags {
					t.Errorf("round %d: VmFlags of the regions\nbefore %s\nafter  %s", round, flags, got)
				}
				if maps := readTrim(t, pid, "maps"); named && !strings.Contains(maps, "[anon:ssi-name]") {
					t.Errorf("round %d: the named mapping lost its name:\n%s", round, maps)
				}
				if got := readTrim(t, pid, "oom_score_adj"); got != oom {
					t.Errorf("round %d: oom_score_adj %s, want %s", round, got, oom)
				}
			}
			checkCount(t, waitLines(t, out, len(readLines(out))+5)[1:])
			res.Process.Signal(syscall.SIGUSR1)
			st, err := res.Process.Wait()
			if err != nil || !st.Success() {
				t.Fatalf("the restored program ended with %v (%v): it found an attribute changed (its stderr is not kept across a restore; run testdata/attrs.c by hand)", st, err)
			}
		})
	}
}

func readTrim(t *testing.T, pid int, name string) string {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// regionFlags returns the VmFlags of the mappings of pid from region to 6
// pages after it, and of the mapping at shared, one "start: flags" per
// mapping (soft-dirty and userfaultfd flags left out: a restore's own).
func regionFlags(t *testing.T, pid int, region, shared uint64) string {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/smaps")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	var start uint64
	for line := range strings.Lines(string(b)) {
		if f, ok := strings.CutPrefix(line, "VmFlags:"); ok {
			if start >= region && start < region+6*4096 || start == shared {
				var keep []string
				for _, fl := range strings.Fields(f) {
					if fl != "sd" && fl != "uw" && fl != "um" {
						keep = append(keep, fl)
					}
				}
				out = append(out, fmt.Sprintf("%#x: %s", start, strings.Join(keep, " ")))
			}
			continue
		}
		if lo, _, ok := strings.Cut(strings.Fields(line + " x")[0], "-"); ok {
			if v, err := strconv.ParseUint(lo, 16, 64); err == nil {
				start = v
			}
		}
	}
	return strings.Join(out, "; ")
}

// precopyMigrate moves pid as a migration does: pre-copy in two rounds, a
// staged restore held, the source killed, the copy released.
func precopyMigrate(t *testing.T, pid int, stub string) *Restored {
	t.Helper()
	p, err := Freeze(pid)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := p.PreCopy()
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	fp, res, _ := stageFrom(t, pc, stub, RestoreOptions{AnyPid: true, Hold: true}, 2)
	if err := fp.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := res.Release(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reap(t, res.Process) })
	return res
}
