package authz

import (
	"strings"
	"testing"
)

func TestDecide(t *testing.T) {
	const self, other = 2, 3
	user, other2 := 1000, 1001
	every := []Action{Signal, Freeze, Continue, Checkpoint, MigrateOut, MigrateIn, Exec, Restore, Details}
	type row struct {
		name   string
		uid    int
		from   int
		owner  Owner
		home   bool
		allow  bool // allow_remote_root
		want   bool
		rule   string // a part of the refusal's rule
		action []Action
	}
	rows := []row{
		// Rule 1: a local root caller, always.
		{name: "local root, root's process", uid: 0, from: self, owner: OwnedBy(0), want: true},
		{name: "local root, a user's process", uid: 0, from: self, owner: OwnedBy(user), want: true},
		{name: "local root, setuid process", uid: 0, from: self, owner: Owner{user, 0, 0}, want: true},
		// Rule 2: from another node, root acting or root's process.
		{name: "remote root, off", uid: 0, from: other, owner: OwnedBy(user), rule: RuleRemoteRoot},
		{name: "remote root, root's process, off", uid: 0, from: other, owner: OwnedBy(0), rule: RuleRemoteRoot},
		{name: "remote root, on", uid: 0, from: other, owner: OwnedBy(user), allow: true, want: true},
		{name: "remote root, root's process, on", uid: 0, from: other, owner: OwnedBy(0), allow: true, want: true},
		{name: "remote user, real uid 0, off", uid: user, from: other, owner: Owner{0, user, user}, rule: RuleRemoteRoot},
		{name: "remote user, effective uid 0 (setuid), off", uid: user, from: other, owner: Owner{user, 0, 0}, rule: RuleRemoteRoot},
		{name: "remote user, saved uid 0, off", uid: user, from: other, owner: Owner{user, user, 0}, rule: RuleRemoteRoot},
		{name: "remote user, setuid process, on", uid: user, from: other, owner: Owner{user, 0, 0}, allow: true, want: true},
		// Rule 3: a user acts on its own processes only, as kill(2).
		{name: "local user, own", uid: user, from: self, owner: OwnedBy(user), want: true},
		{name: "remote user, own", uid: user, from: other, owner: OwnedBy(user), want: true},
		{name: "remote user, own, on", uid: user, from: other, owner: OwnedBy(user), allow: true, want: true},
		{name: "local user, another's", uid: user, from: self, owner: OwnedBy(other2), rule: "belongs to uid 1001, not to uid 1000"},
		{name: "remote user, another's", uid: user, from: other, owner: OwnedBy(other2), rule: "belongs to uid 1001"},
		{name: "remote user, another's, on", uid: user, from: other, owner: OwnedBy(other2), allow: true, rule: "belongs to uid 1001"},
		{name: "local user, root's", uid: user, from: self, owner: OwnedBy(0), rule: "belongs to uid 0, not to uid 1000"},
		{name: "local user, matches the saved uid", uid: user, from: self, owner: Owner{other2, other2, user}, want: true},
		{name: "local user, matches only the effective uid", uid: user, from: self, owner: Owner{other2, user, other2}, rule: "belongs to uid 1001"},
		// A process coming home from where its node sent it.
		{name: "root's process home, off", uid: 0, from: other, owner: OwnedBy(0), home: true, want: true, action: []Action{MigrateIn}},
		{name: "root's process home is no signal exemption", uid: 0, from: other, owner: OwnedBy(0), home: true, rule: RuleRemoteRoot,
			action: []Action{Signal, Freeze, Continue, Checkpoint, MigrateOut, Exec, Restore, Details}},
		// Malformed requests are refused.
		{name: "negative uid", uid: -1, from: self, owner: OwnedBy(user), rule: RuleBadRequest},
		{name: "no node", uid: 0, from: 0, owner: OwnedBy(user), rule: RuleBadRequest},
		{name: "negative owner", uid: 0, from: self, owner: Owner{0, -1, 0}, rule: RuleBadRequest},
	}
	for _, r := range rows {
		actions := r.action
		if actions == nil {
			actions = every
		}
		for _, a := range actions {
			req := Request{Action: a, UID: r.uid, From: r.from, Node: self, Process: 2<<22 | 1234, Owner: r.owner,
				Home: r.home, AllowRemoteRoot: r.allow}
			d := Decide(req)
			if d.Allowed != r.want {
				t.Errorf("%s, %s: allowed %v, want %v (%s)", r.name, a, d.Allowed, r.want, d.Message())
				continue
			}
			if r.want {
				if d.Message() != "" || d.Rule != "" {
					t.Errorf("%s, %s: allowed with a message %q", r.name, a, d.Message())
				}
				continue
			}
			if !strings.Contains(d.Rule, r.rule) {
				t.Errorf("%s, %s: rule %q, want %q", r.name, a, d.Rule, r.rule)
			}
			if !strings.HasPrefix(d.Message(), "node 2 refuses "+a.String()+" of process 8389842 for ") {
				t.Errorf("%s, %s: message %q", r.name, a, d.Message())
			}
		}
	}
}

func TestGroups(t *testing.T) {
	base := Request{UID: 1000, From: 3, Node: 2, Owner: OwnedBy(1000)}
	for _, tc := range []struct {
		name         string
		action       Action
		from         int
		uid          int
		gids, groups []int
		allow        bool // allow_remote_root
		want         string
	}{
		{"its own groups", Exec, 3, 1000, []int{1000, 27}, []int{1000, 27, 100}, false, ""},
		{"no gids said", MigrateIn, 3, 1000, nil, nil, false, ""},
		{"group root", Exec, 3, 1000, []int{1000, 0}, []int{1000}, false, "gid 0 is not one of uid 1000's groups on node 2"},
		{"group disk, allow_remote_root on", Exec, 3, 1000, []int{6}, []int{1000}, true, "gid 6 is not one of uid 1000's groups on node 2"},
		{"migration in with shadow", MigrateIn, 3, 1000, []int{1000, 1000, 42}, []int{1000}, false, "gid 42 is not"},
		{"no account", Exec, 3, 1000, []int{1000}, nil, false, "uid 1000 has no account on node 2"},
		{"local: the kernel's groups", Exec, 2, 1000, []int{0, 6}, []int{1000}, false, ""},
		{"signals carry no groups", Signal, 3, 1000, []int{0}, []int{1000}, false, ""},
		{"root, allowed", Exec, 3, 0, []int{0, 6}, []int{0}, true, ""},
	} {
		r := base
		r.Action, r.From, r.UID, r.GIDs, r.Groups, r.AllowRemoteRoot = tc.action, tc.from, tc.uid, tc.gids, tc.groups, tc.allow
		if tc.uid == 0 {
			r.Owner = OwnedBy(0)
		}
		d := Decide(r)
		if d.Allowed != (tc.want == "") || !strings.Contains(d.Rule, tc.want) {
			t.Errorf("%s: allowed %v, rule %q; want %q", tc.name, d.Allowed, d.Rule, tc.want)
		}
	}
}

func TestMessage(t *testing.T) {
	d := Decide(Request{Action: Checkpoint, UID: 0, From: 4, Node: 3, Process: 3<<22 | 1234, Owner: OwnedBy(0)})
	if want := "node 3 refuses checkpoint of process 12584146 for root from node 4: allow_remote_root is off"; d.Message() != want {
		t.Errorf("message %q\nwant    %q", d.Message(), want)
	}
	d = Decide(Request{Action: Signal, UID: 1000, From: 3, Node: 3, Process: 3<<22 | 7, Owner: OwnedBy(1001)})
	if want := "node 3 refuses signal of process 12582919 for uid 1000 on this node: the process belongs to uid 1001, not to uid 1000"; d.Message() != want {
		t.Errorf("message %q\nwant    %q", d.Message(), want)
	}
	d = Decide(Request{Action: Exec, UID: 0, From: 1, Node: 2, Owner: OwnedBy(0)})
	if want := "node 2 refuses execution for root from node 1: allow_remote_root is off"; d.Message() != want {
		t.Errorf("message %q\nwant    %q", d.Message(), want)
	}
}

func TestSignalAction(t *testing.T) {
	for sig, want := range map[int]Action{9: Signal, 15: Signal, 1: Signal, 0: Signal, 19: Freeze, 20: Freeze,
		21: Freeze, 22: Freeze, 18: Continue} {
		if got := SignalAction(sig); got != want {
			t.Errorf("signal %d: %s, want %s", sig, got, want)
		}
	}
}

func TestPsOnly(t *testing.T) {
	if !PsOnly(Request{UID: 1000, From: 3, Node: 2, Owner: OwnedBy(0), AllowRemoteRoot: true}) {
		t.Error("a user sees the details of root's process")
	}
	if !PsOnly(Request{UID: 0, From: 3, Node: 2, Owner: OwnedBy(1000)}) {
		t.Error("root from another node sees details with allow_remote_root off")
	}
	if PsOnly(Request{UID: 1000, From: 3, Node: 2, Owner: OwnedBy(1000)}) {
		t.Error("a user does not see its own process's details")
	}
}

func TestActionNames(t *testing.T) {
	if Action(0).Valid() || Action(99).Valid() || Action(99).String() != "action 99" {
		t.Error("invalid actions are valid")
	}
}
