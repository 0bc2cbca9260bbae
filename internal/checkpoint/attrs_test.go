package checkpoint

import (
	"reflect"
	"strings"
	"testing"
)

const smapsText = `00400000-00401000 r-xp 00000000 fe:00 7 /bin/x
Size:                  4 kB
VmFlags: rd ex mr mw me dw
7f0000000000-7f0000001000 rw-p 00000000 00:00 0
Size:                  4 kB
Locked:                4 kB
VmFlags: rd wr mr mw me lo ac dd
7f0000001000-7f0000002000 r--s 00000000 fe:00 9 /data/m
VmFlags: rd sh mr mw me ms
7f0000002000-7f0000003000 rw-p 00000000 00:00 0
VmFlags: rd wr mr mw me ac wf hg sr sl
7f0000003000-7f0000004000 r--p 00000000 00:00 0                          [vvar]
VmFlags: rd mr pf io de dd
`

func TestParseSmaps(t *testing.T) {
	sf, err := parseSmaps(smapsText)
	if err != nil {
		t.Fatal(err)
	}
	wantAdv := []MapAdvice{
		{Start: 0x7f0000000000, End: 0x7f0000001000, Flags: AdvLocked | AdvDontDump},
		{Start: 0x7f0000002000, End: 0x7f0000003000, Flags: AdvWipeOnFork | AdvHugePage | AdvSequential},
		{Start: 0x7f0000003000, End: 0x7f0000004000, Flags: AdvDontDump},
	}
	if !reflect.DeepEqual(sf.Advice, wantAdv) {
		t.Errorf("advice\n got %+v\nwant %+v", sf.Advice, wantAdv)
	}
	if !reflect.DeepEqual(sf.Sealed, []uint64{0x7f0000002000}) {
		t.Errorf("sealed %#x", sf.Sealed)
	}
	if !sf.MayWrite[0x7f0000001000] || !sf.MayWrite[0x400000] || sf.MayWrite[0x7f0000003000] {
		t.Errorf("may write %v", sf.MayWrite)
	}
	if _, err := parseSmaps("VmFlags: rd\n"); err == nil {
		t.Error("VmFlags before a mapping accepted")
	}
	if _, err := parseSmaps("zz-yy rw-p\nVmFlags: rd\n"); err == nil {
		t.Error("a bad mapping line accepted")
	}
}

func TestAttrRefusals(t *testing.T) {
	status := func(uid string, prm, eff, bnd, amb, seccomp string) secView {
		filters := map[string]string{"0": "0", "1": "0", "2": "1", "2+": "2"}[seccomp]
		return parseSecStatus("Uid:\t" + uid + "\t" + uid + "\t" + uid + "\t" + uid + "\nCapInh:\t0000000000000000\nCapPrm:\t" + prm +
			"\nCapEff:\t" + eff + "\nCapBnd:\t" + bnd + "\nCapAmb:\t" + amb + "\nSeccomp:\t" + strings.TrimSuffix(seccomp, "+") +
			"\nSeccomp_filters:\t" + filters + "\n")
	}
	const full, none = "000001ffffffffff", "0000000000000000"
	self := status("0", full, full, full, none, "0")
	tests := []struct {
		name string
		v    secView
		want string // "" for no refusal, else a piece of the detail
	}{
		{"root with the agent's capabilities", status("0", full, full, full, none, "0"), ""},
		{"a user with none", status("1000", none, none, full, none, "0"), ""},
		{"root that dropped some", status("0", "00000000a80425fb", "00000000a80425fb", full, none, "0"), "capabilities (permitted 0xa80425fb"},
		{"a smaller bounding set", status("1000", none, none, "00000000a80425fb", none, "0"), "bounding 0xa80425fb"},
		{"a user with a file capability", status("1000", "0000000000002000", "0000000000002000", full, none, "0"), "a restore gives no capability"},
		{"ambient", status("1000", "0000000000002000", "0000000000002000", full, "0000000000002000", "0"), "ambient 0x2000"},
		{"seccomp filter", status("1000", none, none, full, none, "2"), "1 seccomp filters where a restore gives the agent's 0"},
		{"seccomp strict", status("1000", none, none, full, none, "1"), "strict"},
		{"sealed", secView{Sealed: []uint64{0x1000}}, "sealed"},
		{"no_new_privs of its own", func() secView { v := status("1000", none, none, full, none, "0"); v.NoNewPrivs = true; return v }(), ""},
	}
	// An agent under a unit's SystemCallFilter: its processes inherit its
	// filter, and so does a restore.
	filtered := status("0", full, full, full, none, "2")
	tests = append(tests, []struct {
		name string
		v    secView
		want string
	}{
		{"the agent's filter", status("1000", none, none, full, none, "2"), ""},
		{"a filter of its own besides", status("1000", none, none, full, none, "2+"), "2 seccomp filters where a restore gives the agent's 1"},
		{"none, under a filtered agent", status("1000", none, none, full, none, "0"), "0 seccomp filters where a restore gives the agent's 1"},
	}...)
	for i, tt := range tests {
		self := self
		if i >= len(tests)-3 {
			self = filtered
		}
		rs := attrRefusals(tt.v, self)
		switch {
		case tt.want == "" && len(rs) != 0:
			t.Errorf("%s: refused: %v", tt.name, rs)
		case tt.want != "" && (len(rs) != 1 || !strings.Contains(rs[0].Detail, tt.want) || rs[0].Code != Unsupported):
			t.Errorf("%s: %v, want one refusal with %q", tt.name, rs, tt.want)
		}
	}
}

// TestAttrRefusalsNoNewPrivs: under an agent with no_new_privs, a process
// without it is refused (a restore would give it); one with it moves.
func TestAttrRefusalsNoNewPrivs(t *testing.T) {
	self := secView{NoNewPrivs: true}
	if rs := attrRefusals(secView{}, self); len(rs) != 1 || !strings.Contains(rs[0].Detail, "no_new_privs") {
		t.Errorf("without: %v", rs)
	}
	if rs := attrRefusals(secView{NoNewPrivs: true}, self); len(rs) != 0 {
		t.Errorf("with: %v", rs)
	}
}
