package state

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/ssi-cluster/ssi/internal/api"
)

// testToken returns a token record whose secret is seed.
func testToken(seed string, expires time.Time, uses int, voter bool) *TokenRec {
	h := sha256.Sum256([]byte(seed))
	x := hex.EncodeToString(h[:])
	return &TokenRec{ID: x[:12], Hash: x, Expires: expires, MaxUses: uses, Voter: voter}
}

func joinCmd(id, name, hash string, at time.Time) *Command {
	c := regCmd(id, name, "10.0.1.1")
	c.TokenHash, c.Time = hash, at
	return c
}

func withKey(c *Command, key string) *Command {
	c.Node.KeyHash = key
	return c
}

func TestTokens(t *testing.T) {
	later := t0.Add(time.Hour)
	type step struct {
		cmd     *Command
		wantErr error
	}
	member := testToken("m", time.Time{}, 0, false)
	once := testToken("once", time.Time{}, 1, false)
	short := testToken("short", t0.Add(time.Minute), 0, false)
	voter := testToken("v", time.Time{}, 0, true)
	gone := testToken("gone", time.Time{}, 0, false)
	unknown := testToken("never made", time.Time{}, 0, false)
	create := func(tr *TokenRec) step { return step{cmd: &Command{Op: OpTokenCreate, Time: t0, Token: tr}} }
	for _, tc := range []struct {
		name  string
		steps []step
		check func(t *testing.T, r *Registry)
	}{
		{name: "a member token admits a member", steps: []step{create(member), {cmd: joinCmd("id-a", "a", member.Hash, t0)}},
			check: func(t *testing.T, r *Registry) {
				if n := r.ByID("id-a"); n == nil || n.Voter {
					t.Errorf("node a: %+v, want a member that is not a voter", n)
				}
				if r.Tokens[member.ID].Uses != 1 {
					t.Errorf("uses = %d, want 1", r.Tokens[member.ID].Uses)
				}
			}},
		{name: "a voter token admits a voter", steps: []step{create(voter), {cmd: joinCmd("id-a", "a", voter.Hash, t0)}},
			check: func(t *testing.T, r *Registry) {
				if n := r.ByID("id-a"); n == nil || !n.Voter {
					t.Errorf("node a: %+v, want a voter", n)
				}
			}},
		{name: "used up", steps: []step{create(once), {cmd: joinCmd("id-a", "a", once.Hash, t0)},
			{cmd: joinCmd("id-b", "b", once.Hash, t0), wantErr: ErrTokenUsedUp}}},
		{name: "expired", steps: []step{create(short), {cmd: joinCmd("id-a", "a", short.Hash, later), wantErr: ErrTokenExpired}}},
		{name: "revoked", steps: []step{create(member), {cmd: &Command{Op: OpTokenRevoke, Time: t0, TokenID: member.ID}},
			{cmd: joinCmd("id-a", "a", member.Hash, t0), wantErr: ErrTokenRevoked}}},
		{name: "unknown", steps: []step{{cmd: joinCmd("id-a", "a", unknown.Hash, t0), wantErr: ErrTokenUnknown}}},
		{name: "a hash whose ID matches but the rest does not", steps: []step{create(member),
			{cmd: joinCmd("id-a", "a", member.Hash[:12]+unknown.Hash[12:], t0), wantErr: ErrTokenUnknown}}},
		{name: "a refused name does not use the token", steps: []step{create(once), {cmd: joinCmd("id-a", "a", once.Hash, t0)},
			{cmd: &Command{Op: OpTokenCreate, Time: t0, Token: member}},
			{cmd: joinCmd("id-b", "a", member.Hash, t0), wantErr: ErrDuplicateName}},
			check: func(t *testing.T, r *Registry) {
				if u := r.Tokens[member.ID].Uses; u != 0 {
					t.Errorf("a refused join used the token: %d uses", u)
				}
			}},
		{name: "duplicate token", steps: []step{create(member), {cmd: &Command{Op: OpTokenCreate, Time: t0, Token: member}, wantErr: ErrBadCommand}}},
		{name: "a new token arrives with uses", steps: []step{{cmd: &Command{Op: OpTokenCreate, Time: t0,
			Token: &TokenRec{ID: member.ID, Hash: member.Hash, Uses: 3}}, wantErr: ErrBadCommand}}},
		{name: "an ID that is not the hash's", steps: []step{{cmd: &Command{Op: OpTokenCreate, Time: t0,
			Token: &TokenRec{ID: "000000000000", Hash: member.Hash}}, wantErr: ErrBadCommand}}},
		{name: "removed node never registers again", steps: []step{create(member), create(gone),
			{cmd: joinCmd("id-a", "a", member.Hash, t0)},
			{cmd: &Command{Op: OpRemove, Time: t0, Number: 1}},
			{cmd: joinCmd("id-a", "a2", gone.Hash, t0), wantErr: ErrRemoved},
			{cmd: regCmd("id-a", "a3", "10.0.1.1"), wantErr: ErrRemoved}},
			check: func(t *testing.T, r *Registry) {
				if r.ByID("id-a") != nil || r.Nodes[1] != nil || !r.IsRemoved("id-a") {
					t.Errorf("node 1 not removed: %+v", r.Nodes)
				}
				if r.Tokens[gone.ID].Uses != 0 {
					t.Error("a refused re-registration used the token")
				}
				if !r.KeyStale() {
					t.Error("a removal does not ask for a new gossip key")
				}
				if last := r.Transitions[len(r.Transitions)-1]; last.Kind != api.KindRemove || last.Node != 1 {
					t.Errorf("last transition %+v, want remove of node 1", last)
				}
			}},
		{name: "a new gossip key after a removal", steps: []step{create(member), {cmd: joinCmd("id-a", "a", member.Hash, t0)},
			{cmd: &Command{Op: OpRemove, Time: t0, Number: 1}},
			{cmd: &Command{Op: OpGossipKey, Time: t0, GossipKey: "zz"}, wantErr: ErrBadCommand},
			{cmd: &Command{Op: OpGossipKey, Time: t0, GossipKey: member.Hash}}},
			check: func(t *testing.T, r *Registry) {
				if r.KeyStale() || r.GossipKey != member.Hash {
					t.Errorf("gossip key %q, stale %v", r.GossipKey, r.KeyStale())
				}
			}},
		{name: "a join under a registered ID with another key is refused", steps: []step{create(member),
			{cmd: withKey(joinCmd("id-a", "a", member.Hash, t0), "k1")},
			{cmd: withKey(joinCmd("id-a", "evil", member.Hash, t0), "k2"), wantErr: ErrDuplicateName}},
			check: func(t *testing.T, r *Registry) {
				if n := r.ByID("id-a"); n.Name != "a" || n.Addr != "10.0.1.1" {
					t.Errorf("node a was rewritten: %+v", n)
				}
				if u := r.Tokens[member.ID].Uses; u != 1 {
					t.Errorf("uses = %d, want 1", u)
				}
			}},
		{name: "a join under an ID registered without a key is refused", steps: []step{create(member),
			{cmd: regCmd("id-a", "a", "10.0.1.1")},
			{cmd: withKey(joinCmd("id-a", "a", member.Hash, t0), "k1"), wantErr: ErrDuplicateName}}},
		{name: "the holder of the key joins again (expired certificate)", steps: []step{create(member),
			{cmd: withKey(joinCmd("id-a", "a", member.Hash, t0), "k1")},
			{cmd: withKey(joinCmd("id-a", "a", member.Hash, t0), "k1")}},
			check: func(t *testing.T, r *Registry) {
				if n := r.ByID("id-a"); n == nil || n.Number != 1 || len(r.Nodes) != 1 {
					t.Errorf("the returning node got %+v (%d nodes), want number 1 again", n, len(r.Nodes))
				}
			}},
		{name: "remove an unknown node", steps: []step{{cmd: &Command{Op: OpRemove, Time: t0, Number: 7}, wantErr: ErrUnknownNode}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := NewRegistry()
			for i, s := range tc.steps {
				before := r.Clone()
				_, err := r.Apply(s.cmd)
				if !errors.Is(err, s.wantErr) || (err == nil) != (s.wantErr == nil) {
					t.Fatalf("step %d (%s): err %v, want %v", i, s.cmd.Op, err, s.wantErr)
				}
				if err != nil {
					if after := r.Clone(); !reflect.DeepEqual(before, after) {
						t.Fatalf("step %d: a refused command changed the registry", i)
					}
					// The error survives forwarding.
					if res := makeResult(nil, err); !errors.Is(res.Err(), s.wantErr) {
						t.Errorf("step %d: forwarded error %v is not %v", i, res.Err(), s.wantErr)
					}
				}
			}
			if tc.check != nil {
				tc.check(t, r)
			}
			checkIndex(t, r)
		})
	}
}

func TestTokenStatusViews(t *testing.T) {
	now := t0
	for _, tc := range []struct {
		rec  TokenRec
		want string
	}{
		{TokenRec{}, "valid"},
		{TokenRec{Expires: now}, "expired"},
		{TokenRec{Expires: now.Add(time.Second)}, "valid"},
		{TokenRec{MaxUses: 2, Uses: 2}, "used up"},
		{TokenRec{Revoked: now, MaxUses: 1, Uses: 1}, "revoked"},
	} {
		if got := tc.rec.View(now).Status; got != tc.want {
			t.Errorf("%+v: status %q, want %q", tc.rec, got, tc.want)
		}
	}
}

func TestTokenTableFull(t *testing.T) {
	r := NewRegistry()
	for i := range MaxTokens {
		tr := testToken("t"+string(rune('A'+i%26))+hex.EncodeToString([]byte{byte(i), byte(i >> 8)}), t0.Add(time.Minute), 0, false)
		if _, err := r.Apply(&Command{Op: OpTokenCreate, Time: t0, Token: tr}); err != nil {
			t.Fatalf("token %d: %v", i, err)
		}
	}
	extra := testToken("extra", time.Time{}, 0, false)
	if _, err := r.Apply(&Command{Op: OpTokenCreate, Time: t0, Token: extra}); !errors.Is(err, ErrBadCommand) {
		t.Fatalf("a token past the limit with every token valid: %v, want a refusal", err)
	}
	// Once they have expired, the oldest dead one makes room.
	if _, err := r.Apply(&Command{Op: OpTokenCreate, Time: t0.Add(time.Hour), Token: extra}); err != nil {
		t.Fatalf("a token past the limit with dead ones: %v", err)
	}
	if len(r.Tokens) != MaxTokens {
		t.Errorf("%d tokens kept, want %d", len(r.Tokens), MaxTokens)
	}
}

func TestMayForward(t *testing.T) {
	member := &NodeRec{Number: 4, ID: "id-4"}
	voter := &NodeRec{Number: 2, ID: "id-2", Voter: true}
	for _, tc := range []struct {
		name   string
		c      *Command
		caller *NodeRec
		ok     bool
	}{
		{"own leave", trCmd(4, api.KindLeave, 1), member, true},
		{"another's leave", trCmd(2, api.KindLeave, 1), member, false},
		{"another's down", trCmd(2, api.KindDown, 1), member, false},
		{"own down", trCmd(4, api.KindDown, 1), member, false},
		{"own return", trCmd(4, api.KindReturn, 1), member, false},
		{"register", regCmd("id-9", "n9", "10.0.0.9"), voter, false},
		{"init", &Command{Op: OpInit, Cluster: "x"}, voter, false},
		{"gossip key", &Command{Op: OpGossipKey, GossipKey: "00"}, voter, false},
		{"token by a member", &Command{Op: OpTokenCreate}, member, false},
		{"token by a voter", &Command{Op: OpTokenCreate}, voter, true},
		{"revoke by a member", &Command{Op: OpTokenRevoke}, member, false},
		{"remove by a member", &Command{Op: OpRemove, Number: 2}, member, false},
		{"remove by a voter", &Command{Op: OpRemove, Number: 4}, voter, true},
		{"an unregistered caller", trCmd(4, api.KindLeave, 1), nil, false},
		{"an unknown op", &Command{Op: "Transition"}, voter, false},
	} {
		if err := MayForward(tc.c, tc.caller); (err == nil) != tc.ok {
			t.Errorf("%s: MayForward = %v, want ok %v", tc.name, err, tc.ok)
		}
	}
}
