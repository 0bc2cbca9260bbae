package agent

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/ssi-cluster/ssi/internal/api"
	"github.com/ssi-cluster/ssi/internal/membership"
	"github.com/ssi-cluster/ssi/internal/state"
)

var (
	tLeader = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	tLong   = tLeader.Add(-time.Hour) // a state committed long ago
)

// rec is registry node num, ID "id<num>", at 10.0.0.<num>.
func rec(num int, st string, inc uint64, since time.Time) *state.NodeRec {
	return &state.NodeRec{Number: num, ID: fmt.Sprintf("id%d", num), Name: fmt.Sprintf("n%d", num),
		Addr: fmt.Sprintf("10.0.0.%d", num), GossipPort: 7946, RPCPort: 7947, RaftPort: 7948,
		State: st, Incarnation: inc, Since: since, Voter: true}
}

// member is rec for a node admitted with a member token: it never votes.
func member(num int, st string, inc uint64, since time.Time) *state.NodeRec {
	r := rec(num, st, inc, since)
	r.Voter = false
	return r
}

func mem(num int, st membership.Status, inc uint64) membership.Member {
	id := fmt.Sprintf("id%d", num)
	return membership.Member{ID: id, Addr: fmt.Sprintf("10.0.0.%d", num), Port: 7946, Status: st,
		Meta: membership.Meta{Name: fmt.Sprintf("n%d", num), Number: num, RPCPort: 7947, RaftPort: 7948, Incarnation: inc}}
}

func members(ms ...membership.Member) map[string]membership.Member {
	out := map[string]membership.Member{}
	for _, m := range ms {
		out[m.ID] = m
	}
	return out
}

func servers(voters []int, nonvoters []int) map[string]Server {
	out := map[string]Server{}
	for _, n := range voters {
		id := fmt.Sprintf("id%d", n)
		out[id] = Server{ID: id, Voter: true}
	}
	for _, n := range nonvoters {
		id := fmt.Sprintf("id%d", n)
		out[id] = Server{ID: id}
	}
	return out
}

// baseView is led by node 1 (self) for a minute, well past the grace.
func baseView() view {
	return view{Self: "id1", Now: tLeader.Add(time.Minute), LeaderSince: tLeader, MaxVoters: 3,
		ReplaceAfter: 30 * time.Second, Grace: 3 * time.Second}
}

func TestPlanNode(t *testing.T) {
	t.Parallel()
	none := action{}
	for _, tc := range []struct {
		name  string
		n     *state.NodeRec
		m     []membership.Member
		now   time.Time // zero: baseView's
		want  action
		wantN bool // whether an action is expected
	}{
		{"joining alive joins", rec(2, state.StateJoining, 0, tLong), []membership.Member{mem(2, membership.Alive, 4)}, time.Time{},
			action{Number: 2, Kind: api.KindJoin, Incarnation: 4, Reason: "joined"}, true},
		{"joining unseen waits", rec(2, state.StateJoining, 0, tLong), nil, time.Time{}, none, false},
		{"joining suspect waits", rec(2, state.StateJoining, 0, tLong), []membership.Member{mem(2, membership.Suspect, 1)}, time.Time{}, none, false},
		{"joining dead waits", rec(2, state.StateJoining, 0, tLong), []membership.Member{mem(2, membership.Dead, 1)}, time.Time{}, none, false},
		{"up dead goes down", rec(2, api.StateUp, 3, tLong), []membership.Member{mem(2, membership.Dead, 3)}, time.Time{},
			action{Number: 2, Kind: api.KindDown, Incarnation: 3, Reason: "failure detected", Confirm: true}, true},
		{"up suspect stays", rec(2, api.StateUp, 3, tLong), []membership.Member{mem(2, membership.Suspect, 3)}, time.Time{}, none, false},
		{"up left leaves", rec(2, api.StateUp, 3, tLong), []membership.Member{mem(2, membership.Left, 3)}, time.Time{},
			action{Number: 2, Kind: api.KindLeave, Incarnation: 3, Reason: "left"}, true},
		{"up alive same incarnation stays", rec(2, api.StateUp, 3, tLong), []membership.Member{mem(2, membership.Alive, 3)}, time.Time{}, none, false},
		{"up alive older incarnation stays", rec(2, api.StateUp, 3, tLong), []membership.Member{mem(2, membership.Alive, 2)}, time.Time{}, none, false},
		{"up alive restarted goes down", rec(2, api.StateUp, 3, tLong), []membership.Member{mem(2, membership.Alive, 4)}, time.Time{},
			action{Number: 2, Kind: api.KindDown, Incarnation: 3, Reason: "restarted as incarnation 4"}, true},
		{"up absent within grace stays", rec(2, api.StateUp, 3, tLong), nil, tLeader.Add(3 * time.Second), none, false},
		{"up absent after grace goes down", rec(2, api.StateUp, 3, tLong), nil, tLeader.Add(3*time.Second + time.Millisecond),
			action{Number: 2, Kind: api.KindDown, Incarnation: 3, Reason: "not seen by the master's gossip"}, true},
		{"self absent never goes down", rec(1, api.StateUp, 3, tLong), nil, time.Time{}, none, false},
		{"down alive same incarnation stays down", rec(2, api.StateDown, 3, tLong), []membership.Member{mem(2, membership.Alive, 3)}, time.Time{}, none, false},
		{"down alive older incarnation stays down", rec(2, api.StateDown, 3, tLong), []membership.Member{mem(2, membership.Alive, 1)}, time.Time{}, none, false},
		{"down alive new incarnation returns", rec(2, api.StateDown, 3, tLong), []membership.Member{mem(2, membership.Alive, 4)}, time.Time{},
			action{Number: 2, Kind: api.KindReturn, Incarnation: 4, Reason: "incarnation 4"}, true},
		{"down dead new incarnation stays", rec(2, api.StateDown, 3, tLong), []membership.Member{mem(2, membership.Dead, 4)}, time.Time{}, none, false},
		{"down suspect new incarnation stays", rec(2, api.StateDown, 3, tLong), []membership.Member{mem(2, membership.Suspect, 4)}, time.Time{}, none, false},
		{"down absent stays", rec(2, api.StateDown, 3, tLong), nil, time.Time{}, none, false},
		{"left alive same incarnation stays", rec(2, api.StateLeft, 3, tLong), []membership.Member{mem(2, membership.Alive, 3)}, time.Time{}, none, false},
		{"left alive new incarnation returns", rec(2, api.StateLeft, 3, tLong), []membership.Member{mem(2, membership.Alive, 9)}, time.Time{},
			action{Number: 2, Kind: api.KindReturn, Incarnation: 9, Reason: "incarnation 9"}, true},
		{"another node's member does not count", rec(2, api.StateUp, 3, tLong), []membership.Member{mem(3, membership.Dead, 3)}, time.Time{},
			action{Number: 2, Kind: api.KindDown, Incarnation: 3, Reason: "not seen by the master's gossip"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v := baseView()
			if !tc.now.IsZero() {
				v.Now = tc.now
			}
			v.Nodes = []*state.NodeRec{tc.n}
			v.Members = members(tc.m...)
			got, ok := planNode(v, tc.n)
			if ok != tc.wantN || got != tc.want {
				t.Fatalf("planNode = %+v, %v; want %+v, %v", got, ok, tc.want, tc.wantN)
			}
		})
	}
}

func TestPlanNodeLostPresence(t *testing.T) {
	t.Parallel()
	down := action{Number: 2, Kind: api.KindDown, Incarnation: 3, Reason: "its connection to the master closed", Confirm: true}
	for _, tc := range []struct {
		name  string
		n     *state.NodeRec
		m     []membership.Member
		lost  map[string]uint64
		want  action
		wantN bool
	}{
		{"up alive lost its stream: confirm and go down", rec(2, api.StateUp, 3, tLong),
			[]membership.Member{mem(2, membership.Alive, 3)}, map[string]uint64{"id2": 3}, down, true},
		{"up suspect lost its stream: confirm and go down", rec(2, api.StateUp, 3, tLong),
			[]membership.Member{mem(2, membership.Suspect, 3)}, map[string]uint64{"id2": 3}, down, true},
		{"an older incarnation's stream says nothing", rec(2, api.StateUp, 3, tLong),
			[]membership.Member{mem(2, membership.Alive, 3)}, map[string]uint64{"id2": 2}, action{}, false},
		{"another node's stream says nothing", rec(2, api.StateUp, 3, tLong),
			[]membership.Member{mem(2, membership.Alive, 3)}, map[string]uint64{"id3": 3}, action{}, false},
		{"restarted as a new incarnation: down for that", rec(2, api.StateUp, 3, tLong),
			[]membership.Member{mem(2, membership.Alive, 4)}, map[string]uint64{"id2": 3},
			action{Number: 2, Kind: api.KindDown, Incarnation: 3, Reason: "restarted as incarnation 4"}, true},
		{"left says left", rec(2, api.StateUp, 3, tLong),
			[]membership.Member{mem(2, membership.Left, 3)}, map[string]uint64{"id2": 3},
			action{Number: 2, Kind: api.KindLeave, Incarnation: 3, Reason: "left"}, true},
		{"already down stays down", rec(2, api.StateDown, 3, tLong),
			[]membership.Member{mem(2, membership.Alive, 3)}, map[string]uint64{"id2": 3}, action{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v := baseView()
			v.Nodes = []*state.NodeRec{tc.n}
			v.Members = members(tc.m...)
			v.Lost = tc.lost
			got, ok := planNode(v, tc.n)
			if ok != tc.wantN || got != tc.want {
				t.Fatalf("planNode = %+v, %v; want %+v, %v", got, ok, tc.want, tc.wantN)
			}
		})
	}
}

func TestPresenceBookkeeping(t *testing.T) {
	t.Parallel()
	p := newPresence()
	ch := p.Changed()
	p.opened("a")
	p.opened("a") // a reconnection overlapping the old stream
	p.closed("a", 1, true)
	if len(p.Lost()) != 0 {
		t.Fatalf("one of two streams broke: lost %v, want none", p.Lost())
	}
	p.closed("a", 1, true)
	if got := p.Lost(); got["a"] != 1 {
		t.Fatalf("lost = %v, want a at incarnation 1", got)
	}
	select {
	case <-ch:
	default:
		t.Fatal("a lost stream did not wake the reconciler")
	}
	p.opened("a")
	if len(p.Lost()) != 0 {
		t.Fatalf("reconnected: lost %v, want none", p.Lost())
	}
	p.opened("b")
	p.closed("b", 2, false) // said it leaves
	if len(p.Lost()) != 0 {
		t.Fatalf("a node that said it leaves is lost: %v", p.Lost())
	}
	// The master this node saw die came back, and its new incarnation's
	// stream broke: the later incarnation counts.
	p.masterGone("m", 1)
	p.opened("m")
	p.closed("m", 2, true)
	if got := p.Lost(); got["m"] != 2 {
		t.Fatalf("lost = %v, want m at incarnation 2", got)
	}
	p.opened("c")
	p.closed("c", 5, true)
	p.forget()
	if got := p.Lost(); len(got) != 1 || got["m"] != 1 {
		t.Fatalf("after forget: %v, want only the dead master m at incarnation 1", got)
	}
}

func TestPlanRaft(t *testing.T) {
	t.Parallel()
	past := tLeader.Add(time.Minute).Add(-31 * time.Second)   // down longer than ReplaceAfter
	recent := tLeader.Add(time.Minute).Add(-10 * time.Second) // down for less
	voter := func(n int) action {
		return action{Raft: "voter", ID: fmt.Sprintf("id%d", n), Addr: fmt.Sprintf("10.0.0.%d:7948", n)}
	}
	nonvoter := func(n int) action {
		return action{Raft: "nonvoter", ID: fmt.Sprintf("id%d", n), Addr: fmt.Sprintf("10.0.0.%d:7948", n)}
	}
	remove := func(n int) action { return action{Raft: "remove", ID: fmt.Sprintf("id%d", n)} }
	upAlive := func(ns ...int) ([]*state.NodeRec, []membership.Member) {
		var recs []*state.NodeRec
		var ms []membership.Member
		for _, n := range ns {
			recs = append(recs, rec(n, api.StateUp, 1, tLong))
			ms = append(ms, mem(n, membership.Alive, 1))
		}
		return recs, ms
	}
	for _, tc := range []struct {
		name    string
		nodes   []*state.NodeRec
		members []membership.Member
		servers map[string]Server
		removed map[string]bool
		answers map[string]bool
		max     int
		want    []action
	}{
		{
			name:    "up node unknown to raft is a non-voter first, even while voters are missing",
			nodes:   func() []*state.NodeRec { r, _ := upAlive(1, 2); return r }(),
			members: func() []membership.Member { _, m := upAlive(1, 2); return m }(),
			servers: servers([]int{1}, nil), max: 3,
			want: []action{nonvoter(2)},
		},
		{
			name:    "lowest numbers get the voter seats",
			nodes:   func() []*state.NodeRec { r, _ := upAlive(1, 2, 3, 4, 5); return r }(),
			members: func() []membership.Member { _, m := upAlive(1, 2, 3, 4, 5); return m }(),
			servers: servers([]int{1}, []int{2, 3, 4, 5}), max: 3,
			want: []action{voter(2), voter(3)},
		},
		{
			name:    "enough voters: non-voter",
			nodes:   func() []*state.NodeRec { r, _ := upAlive(1, 2, 3, 4); return r }(),
			members: func() []membership.Member { _, m := upAlive(1, 2, 3, 4); return m }(),
			servers: servers([]int{1, 2, 3}, nil), max: 3,
			want: []action{nonvoter(4)},
		},
		{
			name:    "known non-voter promoted while voters are missing",
			nodes:   func() []*state.NodeRec { r, _ := upAlive(1, 2); return r }(),
			members: func() []membership.Member { _, m := upAlive(1, 2); return m }(),
			servers: servers([]int{1}, []int{2}), max: 3,
			want: []action{voter(2)},
		},
		{
			name:    "known non-voter left alone when voters are complete",
			nodes:   func() []*state.NodeRec { r, _ := upAlive(1, 2, 3, 4); return r }(),
			members: func() []membership.Member { _, m := upAlive(1, 2, 3, 4); return m }(),
			servers: servers([]int{1, 2, 3}, []int{4}), max: 3,
			want: nil,
		},
		{
			name:    "up node not alive in gossip is not added",
			nodes:   []*state.NodeRec{rec(1, api.StateUp, 1, tLong), rec(2, api.StateUp, 1, tLong), rec(3, api.StateUp, 1, tLong)},
			members: []membership.Member{mem(1, membership.Alive, 1), mem(2, membership.Suspect, 1)},
			servers: servers([]int{1}, nil), max: 3,
			want: nil,
		},
		{
			name:    "a joining node receives the log as a non-voter",
			nodes:   []*state.NodeRec{rec(1, api.StateUp, 1, tLong), rec(2, state.StateJoining, 1, tLong)},
			members: []membership.Member{mem(1, membership.Alive, 1), mem(2, membership.Alive, 1)},
			servers: servers([]int{1}, nil), max: 3,
			want: []action{nonvoter(2)},
		},
		{
			// Cut off past ReplaceAfter and removed from raft, it cannot
			// learn that it was excluded until it receives the log again.
			name:    "a down node alive again, unknown to raft, receives the log as a non-voter",
			nodes:   []*state.NodeRec{rec(1, api.StateUp, 1, tLong), rec(2, api.StateUp, 1, tLong), rec(3, api.StateDown, 1, past)},
			members: []membership.Member{mem(1, membership.Alive, 1), mem(2, membership.Alive, 1), mem(3, membership.Alive, 1)},
			servers: servers([]int{1, 2}, nil), max: 3,
			want: []action{nonvoter(3)},
		},
		{
			name:    "a down node alive again, a non-voter, is not promoted before it returns",
			nodes:   []*state.NodeRec{rec(1, api.StateUp, 1, tLong), rec(2, api.StateUp, 1, tLong), rec(3, api.StateDown, 1, past)},
			members: []membership.Member{mem(1, membership.Alive, 1), mem(2, membership.Alive, 1), mem(3, membership.Alive, 1)},
			servers: servers([]int{1, 2}, []int{3}), max: 3,
			want: nil,
		},
		{
			name:    "a returned node, a non-voter, is promoted while voters are missing",
			nodes:   []*state.NodeRec{rec(1, api.StateUp, 1, tLong), rec(2, api.StateUp, 1, tLong), rec(3, api.StateUp, 2, tLong)},
			members: []membership.Member{mem(1, membership.Alive, 1), mem(2, membership.Alive, 1), mem(3, membership.Alive, 2)},
			servers: servers([]int{1, 2}, []int{3}), max: 3,
			want: []action{voter(3)},
		},
		{
			// The gossip key changed while it was away: gossip cannot
			// read it, but it answers the master over mutual TLS.
			name:    "a down node out of raft that answers over TLS receives the log as a non-voter",
			nodes:   []*state.NodeRec{rec(1, api.StateUp, 1, tLong), rec(2, api.StateUp, 1, tLong), rec(3, api.StateDown, 1, past)},
			members: []membership.Member{mem(1, membership.Alive, 1), mem(2, membership.Alive, 1), mem(3, membership.Dead, 1)},
			servers: servers([]int{1, 2}, nil), answers: map[string]bool{"id3": true}, max: 3,
			want: []action{nonvoter(3)},
		},
		{
			name:    "answering over TLS neither adds an up or left node nor promotes a known one",
			nodes:   []*state.NodeRec{rec(1, api.StateUp, 1, tLong), rec(2, api.StateUp, 1, tLong), rec(3, api.StateLeft, 1, past), rec(4, api.StateUp, 1, past)},
			members: []membership.Member{mem(1, membership.Alive, 1)},
			servers: servers([]int{1}, []int{2}), answers: map[string]bool{"id2": true, "id3": true, "id4": true}, max: 3,
			want: nil,
		},
		{
			name:    "a down node not alive in gossip, a left node, a removed node are not added",
			nodes:   []*state.NodeRec{rec(1, api.StateUp, 1, tLong), rec(2, api.StateDown, 1, past), rec(3, api.StateLeft, 1, past), rec(4, api.StateDown, 1, past)},
			members: []membership.Member{mem(1, membership.Alive, 1), mem(2, membership.Suspect, 1), mem(3, membership.Alive, 1), mem(4, membership.Alive, 1)},
			servers: servers([]int{1}, nil), removed: map[string]bool{"id4": true}, max: 3,
			want: nil,
		},
		{
			name:    "left voter removed and its seat given to a non-voter",
			nodes:   []*state.NodeRec{rec(1, api.StateUp, 1, tLong), rec(2, api.StateUp, 1, tLong), rec(3, api.StateLeft, 1, tLong), rec(4, api.StateUp, 1, tLong)},
			members: []membership.Member{mem(1, membership.Alive, 1), mem(2, membership.Alive, 1), mem(4, membership.Alive, 1)},
			servers: servers([]int{1, 2, 3}, []int{4}), max: 3,
			want: []action{remove(3), voter(4)},
		},
		{
			name:    "left non-voter removed without freeing a seat",
			nodes:   []*state.NodeRec{rec(1, api.StateUp, 1, tLong), rec(2, api.StateUp, 1, tLong), rec(3, api.StateUp, 1, tLong), rec(4, api.StateLeft, 1, tLong)},
			members: []membership.Member{mem(1, membership.Alive, 1), mem(2, membership.Alive, 1), mem(3, membership.Alive, 1)},
			servers: servers([]int{1, 2, 3}, []int{4}), max: 3,
			want: []action{remove(4)},
		},
		{
			name:    "down voter past ReplaceAfter removed and a non-voter promoted",
			nodes:   []*state.NodeRec{rec(1, api.StateUp, 1, tLong), rec(2, api.StateDown, 1, past), rec(3, api.StateUp, 1, tLong), rec(4, api.StateUp, 1, tLong)},
			members: []membership.Member{mem(1, membership.Alive, 1), mem(2, membership.Dead, 1), mem(3, membership.Alive, 1), mem(4, membership.Alive, 1)},
			servers: servers([]int{1, 2, 3}, []int{4}), max: 3,
			want: []action{remove(2), voter(4)},
		},
		{
			name:    "down voter within ReplaceAfter kept",
			nodes:   []*state.NodeRec{rec(1, api.StateUp, 1, tLong), rec(2, api.StateDown, 1, recent), rec(3, api.StateUp, 1, tLong), rec(4, api.StateUp, 1, tLong)},
			members: []membership.Member{mem(1, membership.Alive, 1), mem(2, membership.Dead, 1), mem(3, membership.Alive, 1), mem(4, membership.Alive, 1)},
			servers: servers([]int{1, 2, 3}, []int{4}), max: 3,
			want: nil,
		},
		{
			name:    "down non-voter past ReplaceAfter kept",
			nodes:   []*state.NodeRec{rec(1, api.StateUp, 1, tLong), rec(2, api.StateDown, 1, past)},
			members: []membership.Member{mem(1, membership.Alive, 1)},
			servers: servers([]int{1}, []int{2}), max: 3,
			want: nil,
		},
		{
			name:    "self is never removed",
			nodes:   []*state.NodeRec{rec(1, api.StateLeft, 1, past), rec(2, api.StateUp, 1, tLong)},
			members: []membership.Member{mem(1, membership.Alive, 1), mem(2, membership.Alive, 1)},
			servers: servers([]int{1, 2}, nil), max: 3,
			want: nil,
		},
		{
			name:    "self down past ReplaceAfter is never removed",
			nodes:   []*state.NodeRec{rec(1, api.StateDown, 1, past), rec(2, api.StateUp, 1, tLong)},
			members: []membership.Member{mem(1, membership.Alive, 1), mem(2, membership.Alive, 1)},
			servers: servers([]int{1, 2}, nil), max: 3,
			want: nil,
		},
		{
			name:    "server missing from the registry left alone",
			nodes:   []*state.NodeRec{rec(1, api.StateUp, 1, tLong)},
			members: []membership.Member{mem(1, membership.Alive, 1)},
			servers: servers([]int{1, 9}, []int{8}), max: 3,
			want: nil,
		},
		{
			name:    "members never vote, even with seats free",
			nodes:   []*state.NodeRec{rec(1, api.StateUp, 1, tLong), member(2, api.StateUp, 1, tLong), member(3, api.StateUp, 1, tLong), rec(4, api.StateUp, 1, tLong)},
			members: []membership.Member{mem(1, membership.Alive, 1), mem(2, membership.Alive, 1), mem(3, membership.Alive, 1), mem(4, membership.Alive, 1)},
			servers: servers([]int{1}, []int{3, 4}), max: 3,
			want: []action{nonvoter(2), voter(4)},
		},
		{
			name:    "a down voter is replaced by a voter-eligible node, not a member",
			nodes:   []*state.NodeRec{rec(1, api.StateUp, 1, tLong), rec(2, api.StateDown, 1, past), member(3, api.StateUp, 1, tLong), rec(4, api.StateUp, 1, tLong)},
			members: []membership.Member{mem(1, membership.Alive, 1), mem(3, membership.Alive, 1), mem(4, membership.Alive, 1)},
			servers: servers([]int{1, 2}, []int{3, 4}), max: 3,
			want: []action{remove(2), voter(4)},
		},
		{
			name:    "a removed node's server is removed, voter or not, and its seat given",
			nodes:   []*state.NodeRec{rec(1, api.StateUp, 1, tLong), rec(4, api.StateUp, 1, tLong)},
			members: []membership.Member{mem(1, membership.Alive, 1), mem(2, membership.Alive, 1), mem(3, membership.Alive, 1), mem(4, membership.Alive, 1)},
			servers: servers([]int{1, 2}, []int{3, 4}), max: 3,
			removed: map[string]bool{"id2": true, "id3": true},
			want:    []action{remove(2), remove(3), voter(4)},
		},
		{
			name:    "removals in ID order",
			nodes:   []*state.NodeRec{rec(1, api.StateUp, 1, tLong), rec(2, api.StateLeft, 1, tLong), rec(3, api.StateLeft, 1, tLong), rec(4, api.StateDown, 1, past)},
			members: []membership.Member{mem(1, membership.Alive, 1)},
			servers: servers([]int{1, 4, 3}, []int{2}), max: 5,
			want: []action{remove(2), remove(3), remove(4)},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v := baseView()
			v.Nodes, v.Members, v.Servers, v.MaxVoters = tc.nodes, members(tc.members...), tc.servers, tc.max
			v.Removed, v.Answers = tc.removed, tc.answers
			if got := planRaft(v); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("planRaft =\n%v\nwant\n%v", got, tc.want)
			}
		})
	}
}

func TestHealTargets(t *testing.T) {
	t.Parallel()
	v := baseView()
	v.Nodes = []*state.NodeRec{
		rec(1, api.StateDown, 1, tLong), // self
		rec(2, api.StateDown, 1, tLong), // out of raft, dead in gossip: asked
		rec(3, api.StateDown, 1, tLong), // out of raft, unseen: asked
		rec(4, api.StateDown, 1, tLong), // out of raft, alive in gossip: gossip says it
		rec(5, api.StateDown, 1, tLong), // a raft non-voter: the log reaches it
		rec(6, api.StateUp, 1, tLong),   // up
		rec(7, api.StateLeft, 1, tLong), // left
		rec(8, api.StateDown, 1, tLong), // removed for good
	}
	v.Members = members(mem(2, membership.Dead, 1), mem(4, membership.Alive, 1))
	v.Servers = servers([]int{6}, []int{5})
	v.Removed = map[string]bool{"id8": true}
	var got []int
	for _, n := range healTargets(v) {
		got = append(got, n.Number)
	}
	if want := []int{2, 3}; !reflect.DeepEqual(got, want) {
		t.Fatalf("healTargets = %v, want %v", got, want)
	}
}

func TestPlan(t *testing.T) {
	t.Parallel()
	// Node 1 (self, leader) up; 2 joining and now alive; 3 up but dead in
	// gossip; 4 down long ago, a voter; 5 up, a non-voter.
	v := baseView()
	v.Nodes = []*state.NodeRec{
		rec(1, api.StateUp, 1, tLong), rec(2, state.StateJoining, 0, tLong), rec(3, api.StateUp, 2, tLong),
		rec(4, api.StateDown, 1, tLong), rec(5, api.StateUp, 1, tLong),
	}
	v.Members = members(mem(1, membership.Alive, 1), mem(2, membership.Alive, 1), mem(3, membership.Dead, 2),
		mem(4, membership.Dead, 1), mem(5, membership.Alive, 1))
	v.Servers = servers([]int{1, 3, 4}, []int{5})
	want := []action{
		{Number: 2, Kind: api.KindJoin, Incarnation: 1, Reason: "joined"},
		{Number: 3, Kind: api.KindDown, Incarnation: 2, Reason: "failure detected", Confirm: true},
		{Raft: "remove", ID: "id4"},
		{Raft: "nonvoter", ID: "id2", Addr: "10.0.0.2:7948"},
		{Raft: "voter", ID: "id5", Addr: "10.0.0.5:7948"},
	}
	got := plan(v)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("plan =\n%v\nwant\n%v", got, want)
	}
	// plan is pure: the same view gives the same plan.
	if again := plan(v); !reflect.DeepEqual(again, got) {
		t.Fatalf("second plan differs:\n%v\n%v", again, got)
	}
	// Nothing to do in a settled cluster.
	v.Nodes = []*state.NodeRec{rec(1, api.StateUp, 1, tLong), rec(2, api.StateUp, 1, tLong), rec(3, api.StateUp, 1, tLong)}
	v.Members = members(mem(1, membership.Alive, 1), mem(2, membership.Alive, 1), mem(3, membership.Alive, 1))
	v.Servers = servers([]int{1, 2, 3}, nil)
	if got := plan(v); len(got) != 0 {
		t.Fatalf("settled cluster: plan = %v", got)
	}
}

func TestActionString(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		a    action
		want string
	}{
		{action{Raft: "voter", ID: "id2", Addr: "x"}, "raft voter id2"},
		{action{Number: 3, Kind: api.KindDown, Reason: "failure detected"}, "down node 3 (failure detected)"},
	} {
		if got := tc.a.String(); got != tc.want {
			t.Errorf("String() = %q, want %q", got, tc.want)
		}
	}
}
