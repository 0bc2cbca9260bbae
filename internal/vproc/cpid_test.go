package vproc

import (
	"strings"
	"testing"
)

func TestCPID(t *testing.T) {
	for _, tc := range []struct {
		in        string
		node, pid int
		err       string
	}{
		{"1:1", 1, 1, ""},
		{"3:4194303", 3, 4194303, ""},
		{"12582913", 3, 1, ""}, // 3<<22 | 1
		{"0:5", 0, 0, "no cluster pid"},
		{"2:0", 0, 0, "no cluster pid"},
		{"2:4194304", 0, 0, "no cluster pid"},
		{"5", 0, 0, "not a cluster pid"},
		{"x", 0, 0, "not a cluster pid"},
		{"1:x", 0, 0, "not a cluster pid"},
	} {
		c, err := Parse(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("Parse(%q) = %v, %v; want error %q", tc.in, c, err, tc.err)
			}
			continue
		}
		if err != nil || c.Node() != tc.node || c.Pid() != tc.pid {
			t.Errorf("Parse(%q) = %d (node %d pid %d), %v; want node %d pid %d", tc.in, c, c.Node(), c.Pid(), err, tc.node, tc.pid)
		}
	}
}

func TestParseStat(t *testing.T) {
	line := "4242 (my (odd) prog) S 1 4242 4242 0 -1 4194304 100 0 0 0 250 50 0 0 20 0 3 0 1000 1000000 512 18446744073709551615"
	s, err := parseStat([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if s.pid != 4242 || s.comm != "my (odd) prog" || s.state != "S" || s.ppid != 1 || s.pgid != 4242 ||
		s.utime != 250 || s.stime != 50 || s.threads != 3 || s.start != 1000 || s.rssPages != 512 {
		t.Errorf("parseStat = %+v", s)
	}
	for _, bad := range []string{"", "12 comm S", "x (c) S 1 2 3", "1 (c) S 1"} {
		if _, err := parseStat([]byte(bad)); err == nil {
			t.Errorf("parseStat(%q) succeeded", bad)
		}
	}
}

func TestTableSeesSelf(t *testing.T) {
	procs, err := Table("/proc")
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, p := range procs {
		found = found || p.Comm == "vproc.test"
	}
	if !found {
		t.Errorf("the test process is not in the table of %d processes", len(procs))
	}
}

func FuzzParseStat(f *testing.F) {
	f.Add([]byte("1 (init) S 0 1 1 0 -1 4194560 1 0 0 0 1 2 0 0 20 0 1 0 5 1000 100 1"))
	f.Add([]byte("2 (a) b) R 1 2 2 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 0 0 0"))
	f.Fuzz(func(t *testing.T, b []byte) { parseStat(b) })
}

func FuzzParseIDs(f *testing.F) {
	f.Add([]byte("Name:\tx\nUid:\t1000\t1000\t1000\t1000\nGid:\t100\t100\t100\t100\n"))
	f.Fuzz(func(t *testing.T, b []byte) { parseIDs(b) })
}

// BenchmarkTable reads this machine's whole process table.
func BenchmarkTable(b *testing.B) {
	n := 0
	for b.Loop() {
		procs, err := Table("/proc")
		if err != nil {
			b.Fatal(err)
		}
		n = len(procs)
	}
	b.ReportMetric(float64(n), "procs")
}
