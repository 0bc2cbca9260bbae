package agent

import (
	"fmt"
	"sort"
	"time"

	"github.com/ssi-cluster/ssi/internal/api"
	"github.com/ssi-cluster/ssi/internal/membership"
	"github.com/ssi-cluster/ssi/internal/state"
)

// The reconciler is the CLMS master's policy, run on the raft leader: it
// compares what gossip sees with what is committed and plans the
// transitions and raft membership changes that bring them together, in the
// manner of Nomad's reconcileMember and Consul's autopilot. plan is pure:
// the loop in leader.go feeds it and carries its actions out.

// Server is a raft server as the planner sees it.
type Server struct {
	ID    string
	Voter bool
}

// view is the planner's input.
type view struct {
	Self        string
	Now         time.Time
	LeaderSince time.Time
	Nodes       []*state.NodeRec // committed registry
	Members     map[string]membership.Member
	Servers     map[string]Server // raft configuration
	Removed     map[string]bool   // IDs of nodes removed for good
	// Answers: down nodes out of raft that answered the master's Ping over
	// mutual TLS lately (heal.go). Gossip cannot tell they are back when
	// the gossip key changed while they were cut off.
	Answers map[string]bool
	// Lost: nodes whose presence stream to this master broke without a
	// word (presence.go), with the incarnation that held it.
	Lost         map[string]uint64
	MaxVoters    int
	ReplaceAfter time.Duration // a voter down this long is replaced
	Grace        time.Duration // a new leader waits this long before acting on nodes gossip never showed it
}

// action is one step the leader takes.
type action struct {
	// a transition to commit
	Number      int
	Kind        string
	Incarnation uint64
	Reason      string
	// Confirm: gossip alone says the node died. Any member can forge that
	// (every member holds the gossip key), so the master checks it over
	// mutual TLS before committing it (confirmDowns).
	Confirm bool
	// or a raft configuration change
	Raft string // "voter", "nonvoter", "remove"
	ID   string
	Addr string
}

func (a action) String() string {
	if a.Raft != "" {
		return fmt.Sprintf("raft %s %s", a.Raft, a.ID)
	}
	return fmt.Sprintf("%s node %d (%s)", a.Kind, a.Number, a.Reason)
}

func plan(v view) []action {
	var out []action
	for _, n := range v.Nodes {
		if t, ok := planNode(v, n); ok {
			out = append(out, t)
		}
	}
	return append(out, planRaft(v)...)
}

func planNode(v view, n *state.NodeRec) (action, bool) {
	m, seen := v.Members[n.ID]
	tr := func(kind, reason string, inc uint64) (action, bool) {
		return action{Number: n.Number, Kind: kind, Incarnation: inc, Reason: reason}, true
	}
	alive := seen && (m.Status == membership.Alive)
	switch n.State {
	case state.StateJoining:
		if alive {
			return tr(api.KindJoin, "joined", m.Meta.Incarnation)
		}
	case api.StateUp:
		switch {
		case alive && m.Meta.Incarnation > n.Incarnation:
			return tr(api.KindDown, fmt.Sprintf("restarted as incarnation %d", m.Meta.Incarnation), n.Incarnation)
		case seen && m.Status == membership.Dead:
			a, ok := tr(api.KindDown, "failure detected", n.Incarnation)
			a.Confirm = true
			return a, ok
		case seen && m.Status == membership.Left:
			return tr(api.KindLeave, "left", n.Incarnation)
		case lostAt(v.Lost, n):
			a, ok := tr(api.KindDown, "its connection to the master closed", n.Incarnation)
			a.Confirm = true
			return a, ok
		case !seen && n.ID != v.Self && v.Now.Sub(v.LeaderSince) > v.Grace:
			return tr(api.KindDown, "not seen by the master's gossip", n.Incarnation)
		}
	case api.StateDown, api.StateLeft:
		// Only a new incarnation returns: a node that was excluded must
		// notice, fence itself and come back as a new incarnation.
		if alive && m.Meta.Incarnation > n.Incarnation {
			return tr(api.KindReturn, fmt.Sprintf("incarnation %d", m.Meta.Incarnation), m.Meta.Incarnation)
		}
	}
	return action{}, false
}

// lostAt reports whether n's current incarnation lost its presence stream.
func lostAt(lost map[string]uint64, n *state.NodeRec) bool {
	inc, ok := lost[n.ID]
	return ok && inc == n.Incarnation
}

func planRaft(v view) []action {
	var out []action
	voters := 0
	for _, s := range v.Servers {
		if s.Voter {
			voters++
		}
	}
	byID := map[string]*state.NodeRec{}
	for _, n := range v.Nodes {
		byID[n.ID] = n
	}
	// Remove departed servers; replace voters that have been down too long.
	ids := make([]string, 0, len(v.Servers))
	for id := range v.Servers {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		if id == v.Self {
			continue
		}
		n := byID[id]
		switch {
		case v.Removed[id]:
			out = append(out, action{Raft: "remove", ID: id})
			if v.Servers[id].Voter {
				voters--
			}
		case n == nil:
			// Not in the registry (yet): leave it alone.
		case n.State == api.StateLeft:
			out = append(out, action{Raft: "remove", ID: id})
			if v.Servers[id].Voter {
				voters--
			}
		case n.State == api.StateDown && v.Servers[id].Voter && v.Now.Sub(n.Since) > v.ReplaceAfter:
			out = append(out, action{Raft: "remove", ID: id})
			voters--
		}
	}
	// Add nodes that raft does not know as non-voters; promote non-voters
	// while voters are missing. Lowest node numbers first, so the choice is
	// stable.
	for _, n := range v.Nodes {
		if n.ID == v.Self || v.Removed[n.ID] {
			continue
		}
		m, ok := v.Members[n.ID]
		alive := ok && m.Status == membership.Alive
		s, known := v.Servers[n.ID]
		switch {
		case n.State == api.StateLeft:
		case !known && n.State == api.StateDown && v.Answers[n.ID]:
			out = append(out, action{Raft: "nonvoter", ID: n.ID, Addr: n.RaftAddr()})
		case !alive:
		case !known:
			// A joining node runs raft already: it receives the log while
			// its join commits. A node that returns, up or still down
			// (cut off long enough to be removed from raft, it does not
			// know yet that it was excluded), learns its fate from the
			// log: it fences itself and comes back as a new incarnation.
			// Every node starts as a non-voter, so that it catches up
			// before it counts in a quorum.
			out = append(out, action{Raft: "nonvoter", ID: n.ID, Addr: n.RaftAddr()})
		case s.Voter || n.State != api.StateUp || !n.Voter:
			// A member (admitted with a member token) never votes: a
			// voter can become master, and the master holds the CA key.
		case voters < v.MaxVoters:
			// An up non-voter has applied the log up to its own return:
			// caught up enough to vote.
			out = append(out, action{Raft: "voter", ID: n.ID, Addr: n.RaftAddr()})
			voters++
		}
	}
	return out
}

// healTargets returns the down nodes that raft does not know and gossip does
// not see: the master asks them over mutual TLS whether they are back
// (view.Answers), in ID order.
func healTargets(v view) []*state.NodeRec {
	var out []*state.NodeRec
	for _, n := range v.Nodes {
		_, known := v.Servers[n.ID]
		m, seen := v.Members[n.ID]
		if n.State == api.StateDown && !known && n.ID != v.Self && !v.Removed[n.ID] && (!seen || m.Status != membership.Alive) {
			out = append(out, n)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}
