package agent

import (
	"context"
	"os/user"
	"strconv"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ssi-cluster/ssi/internal/authz"
	"github.com/ssi-cluster/ssi/internal/transport"
)

// The node that owns a process decides what is done to it: every path
// that signals, freezes, dumps, moves, runs or restores a process here
// ends in decide (package authz holds the policy), with the acting
// user the request carries and the node it comes from, known from that
// node's certificate.

// actor is who acts: a user (uid, as its own node's kernel gave it) on
// a node (by number; this node's own for a local caller).
type actor struct {
	uid  int
	node int
}

// local is a caller of this node's local API.
func (a *Agent) local(uid int) actor { return actor{uid: uid, node: a.Identity().Number} }

// decide applies the policy to act doing what on process cpid (0: not
// a process yet) owned by owner; home: see authz.Request.Home. A
// refusal is a PermissionDenied status whose message says it all, and
// is logged.
func (a *Agent) decide(what authz.Action, act actor, cpid int64, owner authz.Owner, home bool) error {
	return a.decideRun(what, act, cpid, owner, home, nil)
}

// decideRun is decide for a process to run here (an execution, a
// migration in) with gids: they must be act's groups in this node's user
// database (authz rule 4).
func (a *Agent) decideRun(what authz.Action, act actor, cpid int64, owner authz.Owner, home bool, gids []int) error {
	var groups []int
	if len(gids) > 0 && act.uid != 0 && act.node != a.Identity().Number {
		groups = userGroups(act.uid)
	}
	d := authz.Decide(authz.Request{Action: what, UID: act.uid, From: act.node, Node: a.Identity().Number,
		Process: cpid, Owner: owner, Home: home, AllowRemoteRoot: a.cfg.AllowRemoteRoot, GIDs: gids, Groups: groups})
	if d.Allowed {
		return nil
	}
	msg := d.Message()
	a.log.Warn("refused", "action", what.String(), "cpid", cpid, "uid", act.uid, "from", act.node, "owner", owner[:], "why", msg)
	return status.Error(codes.PermissionDenied, msg)
}

// userGroups are the groups this node's user database gives uid: its
// primary group and the others; nil if uid has no account here.
func userGroups(uid int) []int {
	u, err := user.LookupId(strconv.Itoa(uid))
	if err != nil {
		return nil
	}
	out := []int{}
	ids, _ := u.GroupIds() // without them, the primary group only
	for _, s := range append([]string{u.Gid}, ids...) {
		if g, err := strconv.Atoi(s); err == nil {
			out = append(out, g)
		}
	}
	return out
}

// callerNode is the number of the node that calls an RPC, from its
// certificate (the only source of a caller's identity; what a request
// says about its sender is checked against it). claimed, when not 0, is
// the number the request says it comes from. A call with this node's
// own identity is refused: an agent never calls itself (it acts
// locally), and a certificate minted for this node's ID by another
// member (every member holds the CA key) must not pass for a local
// caller, whom the policy trusts more.
func (a *Agent) callerNode(ctx context.Context, claimed int) (int, error) {
	id, _ := transport.PeerFrom(ctx)
	num, self := a.nodeNumber(id), a.Identity().Number
	switch {
	case num == 0:
		return 0, status.Errorf(codes.PermissionDenied, "node %q is not in the registry of node %d", id, self)
	case num == self:
		return 0, status.Errorf(codes.PermissionDenied, "node %d refuses a call made with its own identity: it never calls itself", self)
	case claimed != 0 && claimed != num:
		return 0, status.Errorf(codes.PermissionDenied, "node %d refuses a request from node %d that says it comes from node %d", a.Identity().Number, num, claimed)
	}
	return num, nil
}
