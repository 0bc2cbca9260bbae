package harness

import (
	"strings"
	"testing"
)

func TestAddresses(t *testing.T) {
	for _, id := range []string{"0", "3fa0", "zzzzzzzz"} {
		lo, br := loopbackAddr(id, 7), bridgeAddr(id, 7)
		if !strings.HasPrefix(lo, "127.") || !strings.HasSuffix(lo, ".7") || lo != loopbackAddr(id, 7) {
			t.Errorf("loopbackAddr(%q, 7) = %s", id, lo)
		}
		if !strings.HasPrefix(br, "10.77.") || !strings.HasSuffix(br, ".7") {
			t.Errorf("bridgeAddr(%q, 7) = %s", id, br)
		}
	}
	if loopbackAddr("3fa0", 1) == loopbackAddr("3fa1", 1) {
		t.Error("two IDs share loopback addresses")
	}
}

func TestNames(t *testing.T) {
	if hubNetns("3fa0") != "ssi3fa0hub" || nodeNetns("3fa0", 2) != "ssi3fa0n2" {
		t.Errorf("names: %s %s", hubNetns("3fa0"), nodeNetns("3fa0", 2))
	}
	for name, want := range map[string]bool{"ssi3fa0n2": true, "ssi3fa0n12": true, "ssi3fa0n": false, "ssi3fa0hub": false, "ssi3fa0n1n2": false} {
		if got := isNodeNetnsOf(name, "3fa0"); got != want {
			t.Errorf("isNodeNetnsOf(%q, 3fa0) = %v", name, got)
		}
	}
	for id, want := range map[string]bool{"3fa0": true, "a": true, "abcdefghi": false, "A1": false, "": false, "a-b": false} {
		if validID(id) != want {
			t.Errorf("validID(%q) = %v", id, !want)
		}
	}
	for name, want := range map[string]string{"ssi3fa0hub": "3fa0", "ssixhub": "x", "xhub": "", "ssihub": "",
		"ssi3fa0n2": "", "ssiabcdefghihub": "", "ssiA1hub": "", "myssi3hub": ""} {
		if id, ok := hubID(name); id != want || ok != (want != "") {
			t.Errorf("hubID(%q) = %q, %v; want %q", name, id, ok, want)
		}
	}
}

func TestFaultRuleset(t *testing.T) {
	const reset = "table inet ssi_fault\ndelete table inet ssi_fault\n"
	for _, tc := range []struct {
		f    faultState
		want string
	}{
		{faultState{}, reset},
		{faultState{isolated: true, blocked: []string{"10.77.1.2"}}, reset + "table inet ssi_fault {\n" +
			"\tchain input { type filter hook input priority -10; iifname \"lo\" accept; drop; }\n" +
			"\tchain output { type filter hook output priority -10; oifname \"lo\" accept; drop; }\n}\n"},
		{faultState{blocked: []string{"10.77.1.2", "10.77.1.3"}}, reset + "table inet ssi_fault {\n" +
			"\tchain input { type filter hook input priority -10; ip saddr { 10.77.1.2, 10.77.1.3 } drop; }\n" +
			"\tchain output { type filter hook output priority -10; ip daddr { 10.77.1.2, 10.77.1.3 } drop; }\n}\n"},
	} {
		if got := faultRuleset(tc.f); got != tc.want {
			t.Errorf("faultRuleset(%+v) =\n%s\nwant\n%s", tc.f, got, tc.want)
		}
	}
}

func TestDevFilePath(t *testing.T) {
	env := func(kv ...string) func(string) string {
		return func(k string) string {
			for i := 0; i < len(kv); i += 2 {
				if kv[i] == k {
					return kv[i+1]
				}
			}
			return ""
		}
	}
	for _, tc := range []struct {
		env  func(string) string
		uid  int
		want string
	}{
		{env("SSI_DEV_FILE", "/x/dev.json", "XDG_RUNTIME_DIR", "/run/user/1000"), 0, "/x/dev.json"},
		{env("XDG_RUNTIME_DIR", "/run/user/0"), 0, "/run/ssi/dev.json"},
		{env("XDG_RUNTIME_DIR", "/run/user/1000"), 1000, "/run/user/1000/ssi-dev.json"},
		{env(), 1000, "/tmp/ssi-dev-1000.json"},
	} {
		if got := devFilePath(tc.env, tc.uid); got != tc.want {
			t.Errorf("devFilePath(uid %d) = %s, want %s", tc.uid, got, tc.want)
		}
	}
}

func TestDevInfoSocket(t *testing.T) {
	d := &DevInfo{Nodes: []DevNode{{Node: Node{Index: 1, Socket: "/a"}}, {Node: Node{Index: 2, Socket: "/b"}}}}
	if s, err := d.Socket(2); err != nil || s != "/b" {
		t.Errorf("Socket(2) = %q, %v", s, err)
	}
	if _, err := d.Socket(5); err == nil || err.Error() != "dev cluster has 2 nodes; no node 5" {
		t.Errorf("Socket(5) error = %v", err)
	}
}

func TestCPUQuota(t *testing.T) {
	for share, want := range map[float64]int{0.5: 50000, 1.5: 150000, 0.001: 1000} {
		if got := cpuQuota(share); got != want {
			t.Errorf("cpuQuota(%v) = %d, want %d", share, got, want)
		}
	}
}
