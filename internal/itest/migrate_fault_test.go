package itest

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ssi-cluster/ssi/internal/migrate"
)

// counterOutput is what testdata/counter.c prints for n.
func counterOutput(n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "%d\n", i)
	}
	return b.String() + "done\n"
}

// TestMigrateFaults: a migration whose stream is corrupted and one that is
// cut are abandoned, and sha256sum, which reads a slow stream through its
// deputy, runs on at its source and prints the right sum (the input it
// had not read is given back); one whose target dies while the process is
// frozen is abandoned too; then one that succeeds, after which its source
// dies: the process runs on at its target. Through all of it the
// counter's deputy prints the whole count. The
// faults come from the agents' test-only hook (migrate.FaultEnv), which
// acts on the first three migrations node 1 sends.
func TestMigrateFaults(t *testing.T) {
	t.Setenv(migrate.FaultEnv, "corrupt:+1,truncate:+2,stall:+1")
	c, ctx := startCluster(t, 3, "--allow-remote-root", "true")
	dir := shortTempX(t)
	bins := buildProgs(t, dir, "counter", "slowcat")
	stillOn1 := func(cpid int64, pid int, what string) {
		t.Helper()
		w, err := whereJSON(ctx, c, 3, cpid)
		if err != nil || w.Node != 1 || w.Pid != pid || w.State == "T" {
			t.Fatalf("after %s: %+v, %v; want it running on node 1 as pid %d", what, w, err, pid)
		}
	}

	// sha256sum reads a slow stream through its deputy: the input held
	// and taken from its pipe during each failed move is given back.
	data := filepath.Join(dir, "data")
	if err := os.WriteFile(data, bytes.Repeat([]byte("some input for sha256sum\n"), 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("%x  -\n", sha256.Sum256(bytes.Repeat([]byte("some input for sha256sum\n"), 1<<20)))
	sum := startDeputy(t, c, 3, bins["slowcat"]+" "+data+" 128 10 | ssi run --node 1 sha256sum")
	findRun(t, ctx, c, 3, "sha256sum")
	time.Sleep(300 * time.Millisecond)
	ps := findRun(t, ctx, c, 3, "sha256sum")
	// The target says why in its log; the source's message names it too,
	// unless the stream's end overtook it (then it says the send broke).
	for _, f := range []struct{ name, want string }{
		{"a corrupted stream", "fails its checksum"},
		// Cut at the second message after the freeze: pages written
		// since the last round if there are any, else after the image.
		{"a cut stream", "the stream ended"},
	} {
		_, err := migrateCLI(ctx, c, 3, ps.CPID, "2")
		if err == nil || !strings.Contains(err.Error(), f.want) && !strings.Contains(err.Error(), "to node 2: EOF") {
			t.Errorf("%s: %v; want an error with %q", f.name, err, f.want)
		}
		if b, _ := os.ReadFile(c.Nodes[1].Log); !strings.Contains(string(b), f.want) {
			t.Errorf("%s: node 2's log does not say %q", f.name, f.want)
		}
		stillOn1(ps.CPID, ps.Pid, f.name)
	}
	if code := sum.wait(t, time.Minute); code != 0 || sum.stdout.String() != want {
		t.Fatalf("sha256sum after two failed moves: exit %d, %q (stderr %q); want %q", code, sum.stdout.String(), sum.stderr.String(), want)
	}

	d := startDeputy(t, c, 3, "ssi run --node 1 "+bins["counter"]+" 1500")
	findRun(t, ctx, c, 3, bins["counter"]+" 1500")
	time.Sleep(300 * time.Millisecond)
	p := findRun(t, ctx, c, 3, bins["counter"]+" 1500")

	// The target dies while the process is frozen and being sent.
	errc := make(chan error, 1)
	go func() {
		_, err := migrateCLI(ctx, c, 3, p.CPID, "2")
		errc <- err
	}()
	time.Sleep(migrate.StallTime / 3)
	if err := c.KillNode(2); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err == nil {
		t.Error("a migration to a node killed meanwhile succeeded")
	} else {
		t.Logf("target killed: %v", err)
	}
	stillOn1(p.CPID, p.Pid, "the target's death")

	// A migration that succeeds; then its source dies.
	m, err := migrateCLI(ctx, c, 3, p.CPID, "3")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.KillNode(1); err != nil {
		t.Fatal(err)
	}
	if w, err := whereJSON(ctx, c, 3, p.CPID); err != nil || w.Node != 3 || w.Pid != m.NewPid {
		t.Errorf("after its source died: %+v, %v; want node 3 pid %d", w, err, m.NewPid)
	}
	if code := d.wait(t, time.Minute); code != 0 {
		t.Fatalf("deputy exited %d: %s", code, d.stderr.String())
	}
	if got, want := d.stdout.String(), counterOutput(1500); got != want {
		t.Errorf("the deputy printed %s\nwant %s", clipTail(got), clipTail(want))
	}
}
