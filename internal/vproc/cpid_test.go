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
