package cli

import (
	"reflect"
	"strings"
	"testing"

	"github.com/ssi-cluster/ssi/internal/agent"
	"github.com/ssi-cluster/ssi/internal/api"
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

func TestForest(t *testing.T) {
	p := func(cpid, parent int64) api.Proc { return api.Proc{CPID: cpid, PCPID: parent} }
	tests := []struct {
		name  string
		in    []api.Proc
		order []int64
		depth []int
	}{
		{"flat", []api.Proc{p(3, 0), p(1, 0), p(2, 0)}, []int64{1, 2, 3}, []int{0, 0, 0}},
		{"across nodes", []api.Proc{p(8388620, 4194310), p(4194310, 4194305), p(4194305, 0), p(8388621, 8388620)},
			[]int64{4194305, 4194310, 8388620, 8388621}, []int{0, 1, 2, 3}},
		{"parent not listed", []api.Proc{p(5, 99), p(6, 5)}, []int64{5, 6}, []int{0, 1}},
		{"loop shown once", []api.Proc{p(1, 2), p(2, 1)}, []int64{1, 2}, []int{0, 1}},
		{"self parent", []api.Proc{p(1, 1)}, []int64{1}, []int{0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			order, depth := forest(tc.in)
			var got []int64
			for _, o := range order {
				got = append(got, o.CPID)
			}
			if !reflect.DeepEqual(got, tc.order) || !reflect.DeepEqual(depth, tc.depth) {
				t.Errorf("forest = %v %v, want %v %v", got, depth, tc.order, tc.depth)
			}
		})
	}
}

// TestKillHelp: kill's help lists -s, which parseKill takes.
func TestKillHelp(t *testing.T) {
	var out, errOut strings.Builder
	if code := run([]string{"kill", "--help"}, &out, &errOut); code != 0 {
		t.Fatalf("kill --help: exit %d: %s", code, errOut.String())
	}
	for _, want := range []string{"-s, --signal", "-s SIGNAL"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("kill --help does not show %q:\n%s", want, out.String())
		}
	}
}

// TestAgentHelpTypes: ssi agent --help says what each setting holds.
func TestAgentHelpTypes(t *testing.T) {
	var out, errOut strings.Builder
	if code := run([]string{"agent", "--help"}, &out, &errOut); code != 0 {
		t.Fatalf("agent --help: exit %d: %s", code, errOut.String())
	}
	for _, want := range []string{"--rpc-port int", "--probe-interval duration", "--allow-remote-root true|false", "--name string"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("agent --help does not show %q", want)
		}
	}
}

// TestVersion: ssi version names the Go and platform, and -o json holds
// the same.
func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"version", "-o", "json"}} {
		var out, errOut strings.Builder
		if code := run(args, &out, &errOut); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errOut.String())
		}
		if !strings.Contains(out.String(), agent.Version) || !strings.Contains(out.String(), "linux/") {
			t.Errorf("%v: %q", args, out.String())
		}
		if len(args) > 1 && !strings.Contains(out.String(), `"platform"`) {
			t.Errorf("%v: not JSON: %q", args, out.String())
		}
	}
}
