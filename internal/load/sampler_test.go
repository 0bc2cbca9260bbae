package load

import (
	"math"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

var t0 = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

func TestSamplerFakeProcAll(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "proc")
	s := NewSampler(dir, ScopeAll, 0, 900)

	// First sample: 4 processes; running threads: 100, and 200's tids
	// 200 and 202, but 202 is the sampler itself.
	writeFakeProc(t, dir, []fakeProc{
		{pid: 1, ppid: 0, comm: "init", utime: 10, start: 1, threads: "S"},
		{pid: 100, ppid: 1, comm: "worker", utime: 100, start: 500, threads: "R"},
		{pid: 200, ppid: 100, comm: "multi (x) y", utime: 40, stime: 10, start: 600, threads: "RSRR"},
		{pid: 300, ppid: 1, comm: "short", utime: 15, stime: 5, start: 700, threads: "S"},
		{pid: 400, ppid: 1, comm: "reused", utime: 50, start: 800, threads: "D"},
	}, "200/task/202")
	v1, err := s.Sample(t0)
	if err != nil {
		t.Fatal(err)
	}
	if v1.RunQueue != 3 || v1.Procs != 5 || v1.CPUUse != 0 {
		t.Errorf("first sample: RunQueue %d, Procs %d, CPUUse %v; want 3, 5, 0", v1.RunQueue, v1.Procs, v1.CPUUse)
	}
	if v1.Load1 != 3 || v1.Load5 != 3 || v1.Load15 != 3 {
		t.Errorf("first sample loads %v %v %v, want seeded with 3", v1.Load1, v1.Load5, v1.Load15)
	}
	if v1.Speed != 900 || v1.Stamp != t0.UnixNano() || v1.Cores < 1 {
		t.Errorf("first sample Speed %d, Stamp %d, Cores %d", v1.Speed, v1.Stamp, v1.Cores)
	}
	if v1.MemTotal != 24684084<<10 || v1.MemFree != 24427624<<10 {
		t.Errorf("first sample memory %d/%d", v1.MemFree, v1.MemTotal)
	}

	// Two seconds later: 100 used 50 ticks, 200 used 30; 300 did 5 more
	// ticks, exited and was reaped by init, whose child times grew by all
	// of 300's 25; the old 400 exited without more work and was reaped by
	// init too (+50), and its pid reused by a new process with 7 ticks;
	// 500 is new with 8 ticks, 3 of them from a child it reaped.
	writeFakeProc(t, dir, []fakeProc{
		{pid: 1, ppid: 0, comm: "init", utime: 10, cutime: 70, cstime: 5, start: 1, threads: "S"},
		{pid: 100, ppid: 1, comm: "worker", utime: 130, stime: 20, start: 500, threads: "S"},
		{pid: 200, ppid: 100, comm: "multi (x) y", utime: 60, stime: 20, start: 600, threads: "SSSR"},
		{pid: 400, ppid: 1, comm: "reused", utime: 7, start: 900, threads: "R"},
		{pid: 500, ppid: 200, comm: "new", utime: 4, stime: 1, cutime: 3, start: 950, threads: "R"},
	}, "")
	v2, err := s.Sample(t0.Add(2 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if v2.RunQueue != 3 || v2.Procs != 5 {
		t.Errorf("second sample: RunQueue %d, Procs %d; want 3, 5", v2.RunQueue, v2.Procs)
	}
	const ticks = 50 + 30 + (25 - 20) + 7 + 8
	wantUse := ticks / s.hz / 2 / float64(v2.Cores)
	if math.Abs(v2.CPUUse-min(wantUse, 1)) > 1e-9 {
		t.Errorf("second sample CPUUse %v, want %v (%d ticks at %v Hz over 2 s on %d cores)",
			v2.CPUUse, wantUse, ticks, s.hz, v2.Cores)
	}
	e := math.Exp(-2.0 / 60)
	if want := 3*e + 3*(1-e); math.Abs(v2.Load1-want) > 1e-12 {
		t.Errorf("Load1 = %v, want %v", v2.Load1, want)
	}

	// RunQueue drops to 0; the averages decay by the real interval.
	writeFakeProc(t, dir, []fakeProc{{pid: 1, ppid: 0, utime: 10, cutime: 70 + 150 + 80 + 7 + 8, cstime: 5, start: 1, threads: "S"}}, "")
	v3, err := s.Sample(t0.Add(32 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range []struct {
		got, prev float64
		period    float64
	}{{v3.Load1, v2.Load1, 60}, {v3.Load5, v2.Load5, 300}, {v3.Load15, v2.Load15, 900}} {
		if want := c.prev * math.Exp(-30/c.period); math.Abs(c.got-want) > 1e-12 {
			t.Errorf("load %d = %v, want %v", i, c.got, want)
		}
	}
	if v3.CPUUse != 0 || v3.RunQueue != 0 || v3.Procs != 1 {
		t.Errorf("third sample %+v", v3)
	}

	// A clock that does not advance changes nothing.
	v4, err := s.Sample(t0.Add(31 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if v4.Load1 != v3.Load1 || v4.CPUUse != 0 {
		t.Errorf("sample with clock going back: %+v after %+v", v4, v3)
	}
}

func TestSamplerFakeProcDescendants(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "proc")
	// Agent 50 has children 60 (with child 61 and grandchild 63) and
	// zombie 62; 70 and its child 71 are somebody else's, as are 80,
	// whose parent vanished, and 90, in a ppid cycle.
	tree := func(agentCut, agentChild, u60, u71 uint64, with62 bool) []fakeProc {
		p := []fakeProc{
			{pid: 1, ppid: 0, start: 1, threads: "S"},
			{pid: 50, ppid: 1, utime: 999, cutime: agentCut, cstime: agentChild, start: 10, threads: "SRR"},
			{pid: 60, ppid: 50, utime: u60, start: 20, threads: "R"},
			{pid: 61, ppid: 60, utime: 5, start: 21, threads: "RS"},
			{pid: 63, ppid: 61, utime: 1, start: 22, threads: "S"},
			{pid: 70, ppid: 1, utime: 500, start: 30, threads: "R"},
			{pid: 71, ppid: 70, utime: u71, start: 31, threads: "R"},
			{pid: 80, ppid: 79, utime: 500, start: 40, threads: "R"},
			{pid: 90, ppid: 91, start: 50, threads: "R"},
			{pid: 91, ppid: 90, start: 50, threads: "R"},
		}
		if with62 {
			p = append(p, fakeProc{pid: 62, ppid: 50, utime: 12, stime: 3, start: 23, threads: "Z"})
		}
		return p
	}
	writeFakeProc(t, dir, tree(0, 0, 100, 100, true), "")
	s := NewSampler(dir, ScopeDescendants, 50, 1000)
	v1, err := s.Sample(t0)
	if err != nil {
		t.Fatal(err)
	}
	if v1.Procs != 4 || v1.RunQueue != 2 {
		t.Errorf("first sample: Procs %d, RunQueue %d; want 4, 2", v1.Procs, v1.RunQueue)
	}

	// One second on: 60 used 40 ticks, the agent reaped zombie 62 (15
	// ticks, all counted before), and a child that came and went within
	// the second (10 ticks); outsiders' work does not count.
	writeFakeProc(t, dir, tree(20, 5, 140, 900, false), "")
	v2, err := s.Sample(t0.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if v2.Procs != 3 || v2.RunQueue != 2 {
		t.Errorf("second sample: Procs %d, RunQueue %d; want 3, 2", v2.Procs, v2.RunQueue)
	}
	const ticks = 40 + (25 - 15)
	if want := min(1, ticks/s.hz/float64(v2.Cores)); math.Abs(v2.CPUUse-want) > 1e-9 {
		t.Errorf("second sample CPUUse %v, want %v", v2.CPUUse, want)
	}

	// Another second: 60 did 10 more ticks, exited and was reaped by the
	// agent; its child 61, reparented to init, no longer counts (nor
	// does 63 below it) even though it keeps working.
	p := tree(20+150, 5, 0, 900, false)
	p = slices.DeleteFunc(p, func(p fakeProc) bool { return p.pid == 60 })
	p[slices.IndexFunc(p, func(p fakeProc) bool { return p.pid == 61 })] = fakeProc{pid: 61, ppid: 1, utime: 300, start: 21, threads: "R"}
	writeFakeProc(t, dir, p, "")
	v3, err := s.Sample(t0.Add(2 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if v3.Procs != 0 || v3.RunQueue != 0 {
		t.Errorf("third sample: Procs %d, RunQueue %d; want 0, 0", v3.Procs, v3.RunQueue)
	}
	if want := min(1, 10/s.hz/float64(v3.Cores)); math.Abs(v3.CPUUse-want) > 1e-9 {
		t.Errorf("third sample CPUUse %v, want %v", v3.CPUUse, want)
	}
}

func TestDescendantsRootMissing(t *testing.T) {
	procs := []procStat{{pid: 1}, {pid: 5, ppid: 1}, {pid: 6, ppid: 5}}
	got, root := descendants(procs, 5)
	if root == nil || root.pid != 5 || len(got) != 1 || got[0].pid != 6 {
		t.Errorf("descendants of 5 = %v, root %v", got, root)
	}
	got, root = descendants(procs, 4)
	if root != nil || len(got) != 0 {
		t.Errorf("descendants of absent 4 = %v, root %v", got, root)
	}
}

func TestSamplerErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := NewSampler(filepath.Join(dir, "nope"), ScopeAll, 0, 1).Sample(t0); err == nil {
		t.Error("Sample of a missing proc directory succeeded")
	}
	if _, err := NewSampler(dir, ScopeAll, 0, 1).Sample(t0); err == nil {
		t.Error("Sample without meminfo succeeded")
	}
}

func TestIsPID(t *testing.T) {
	for name, want := range map[string]bool{"1": true, "4194304": true, "": false, "0": false, "01": false, "self": false, "1a": false} {
		if got := isPID(name); got != want {
			t.Errorf("isPID(%q) = %v", name, got)
		}
	}
}

func TestScopeString(t *testing.T) {
	if ScopeAll.String() != "all" || ScopeDescendants.String() != "descendants" || Scope(7).String() != "Scope(7)" {
		t.Error("Scope.String")
	}
}
