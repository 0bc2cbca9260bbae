package cli

import (
	"strings"
	"testing"
)

func TestParseKill(t *testing.T) {
	for _, tc := range []struct {
		args   []string
		signal int
		cpids  []int64
		groups []bool
		socket string
		err    string
	}{
		{args: []string{"4194305"}, signal: 15, cpids: []int64{4194305}, groups: []bool{false}},
		{args: []string{"-9", "1:1", "2:5"}, signal: 9, cpids: []int64{1<<22 | 1, 2<<22 | 5}, groups: []bool{false, false}},
		{args: []string{"-HUP", "--", "-2:100"}, signal: 1, cpids: []int64{2<<22 | 100}, groups: []bool{true}},
		{args: []string{"-s", "SIGUSR1", "1:7"}, signal: 10, cpids: []int64{1<<22 | 7}, groups: []bool{false}},
		{args: []string{"--socket", "/x.sock", "-KILL", "1:7"}, signal: 9, cpids: []int64{1<<22 | 7}, groups: []bool{false}, socket: "/x.sock"},
		{args: []string{"--socket=/y.sock", "1:7"}, signal: 15, cpids: []int64{1<<22 | 7}, groups: []bool{false}, socket: "/y.sock"},
		{args: []string{"-FOO", "1:1"}, err: "not a signal name"},
		{args: []string{"-99", "1:1"}, err: "not a signal number"},
		{args: []string{"-9"}, err: "name at least one"},
		{args: []string{"0:5"}, err: "no cluster pid"},
		{args: []string{"-s"}, err: "needs a value"},
	} {
		g := &globals{}
		k, err := parseKill(tc.args, g)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("parseKill(%q) = %+v, %v; want error %q", tc.args, k, err, tc.err)
			}
			continue
		}
		if err != nil || k.signal != tc.signal || len(k.targets) != len(tc.cpids) || g.socket != tc.socket {
			t.Errorf("parseKill(%q) = %+v (socket %q), %v", tc.args, k, g.socket, err)
			continue
		}
		for i, tg := range k.targets {
			if tg.CPID != tc.cpids[i] || tg.Group != tc.groups[i] || tg.Signal != tc.signal {
				t.Errorf("parseKill(%q) target %d = %+v", tc.args, i, tg)
			}
		}
	}
}
