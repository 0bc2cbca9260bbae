// Package authz is the policy a node applies to what is asked of it
// about one of its processes: signal it, freeze or continue it, dump it
// (ssi checkpoint), move it away, take it in from another node, run it,
// restore it, or show its details.
//
// The node that owns a process decides, with this one pure function,
// Decide: the acting user (its uid, as the kernel of its node saw it
// through SO_PEERCRED), the node it acts from (known from that node's
// certificate, never from what a request claims), the process's owner
// (real, effective and saved uids, as the kernel's kill permission check
// uses them) and this node's configuration (allow_remote_root) in; allow,
// or a refusal with its reason, out.
//
// The rules:
//
//  1. A local root caller on the owning node is always allowed.
//  2. From another node, root acting, or any action on a process of
//     which any uid is 0, needs allow_remote_root on the owning node. A
//     process of this node coming home from the node this node itself
//     sent it to (Request.Home) is this node's own again and is exempt
//     for a migration in.
//  3. A user who is not root may act only on processes it owns, as
//     kill(2) has it: the acting uid (the real or effective uid of the
//     sender) matches the real or saved uid of the target.
//  4. A process that another node has run or moved here for a user who
//     is not root gets only groups that this node's user database gives
//     that user: a node's word for a user's groups is not taken (a
//     group such as disk or shadow is as good as root).
//  5. Details (what ps shows) are open to all; details that carry a
//     process's environment or other secrets only to whom rules 1-3
//     allow (see PsOnly).
//
// A cluster member whose machine is compromised holds a member
// certificate and can claim any uid in a request: rule 2 is what keeps
// it from root's processes and from acting as root. It can still act
// as any user who is not root (as root on that machine it could become
// any of them anyway).
package authz

import (
	"fmt"
	"slices"
)

// Action is what is asked of a process.
type Action int

// The actions.
const (
	Signal     Action = iota + 1 // deliver a signal (kill)
	Freeze                       // SIGSTOP and the other stops (ssi freeze)
	Continue                     // SIGCONT (ssi continue)
	Checkpoint                   // dump its image (ssi checkpoint)
	MigrateOut                   // move it away from this node (ssi migrate, Move)
	MigrateIn                    // take it in from another node (Migrate)
	Exec                         // run it here (ssi run for another node's deputy)
	Restore                      // restore an image here (ssi restore)
	Details                      // its details beyond what ps shows (environment)
)

var names = map[Action]string{Signal: "signal", Freeze: "freeze", Continue: "continue",
	Checkpoint: "checkpoint", MigrateOut: "migration", MigrateIn: "migration in", Exec: "execution",
	Restore: "restore", Details: "details"}

func (a Action) String() string {
	if s, ok := names[a]; ok {
		return s
	}
	return fmt.Sprintf("action %d", int(a))
}

// Valid reports whether a is one of the actions.
func (a Action) Valid() bool { _, ok := names[a]; return ok }

// Signal numbers that make a signal a freeze or a continue (x86_64 and
// arm64 Linux; the policy package stays free of syscall imports).
const (
	sigCONT = 18
	sigSTOP = 19
	sigTSTP = 20
	sigTTIN = 21
	sigTTOU = 22
)

// SignalAction is the action a signal is: a freeze, a continue or a
// signal.
func SignalAction(sig int) Action {
	switch sig {
	case sigSTOP, sigTSTP, sigTTIN, sigTTOU:
		return Freeze
	case sigCONT:
		return Continue
	}
	return Signal
}

// Owner are a process's uids: real, effective, saved.
type Owner [3]int

// OwnedBy is the owner of a process whose three uids are uid.
func OwnedBy(uid int) Owner { return Owner{uid, uid, uid} }

// Root reports whether any of the uids is 0.
func (o Owner) Root() bool { return o[0] == 0 || o[1] == 0 || o[2] == 0 }

// Request is one decision to make.
type Request struct {
	Action Action
	// UID is the acting user: its uid as its own node's kernel gave it
	// (SO_PEERCRED: the effective uid); for a migration in or an
	// execution, the user the process runs as.
	UID int
	// From is the node the request comes from, by number, known from
	// its certificate (this node's own number for a local caller).
	From int
	// Node is this node (the owning node), by number.
	Node int
	// Process names the process in messages (a cluster pid; 0: none).
	Process int64
	// Owner are the process's uids.
	Owner Owner
	// Home: for a migration in, this node's own records say the
	// process is its own, away on node From (it comes home).
	Home bool
	// AllowRemoteRoot is this node's allow_remote_root.
	AllowRemoteRoot bool
	// GIDs, for an execution or a migration in, are the gids the
	// process is to run with (real, effective, saved and supplementary);
	// Groups are those this node's user database gives UID (its primary
	// group and the others; nil: no account here). Rule 4.
	GIDs, Groups []int
}

// Remote reports whether the request comes from another node.
func (r *Request) Remote() bool { return r.From != r.Node }

// Decision is Decide's answer: Allowed, or the Rule that refuses.
type Decision struct {
	Allowed bool
	Rule    string // the rule that refuses, as the message ends
	req     Request
}

// Refusal reasons (Decision.Rule).
const (
	RuleRemoteRoot = "allow_remote_root is off"
	RuleNotOwner   = "the process belongs to uid %d, not to uid %d"
	RuleBadRequest = "the request is not valid"
	RuleGroup      = "gid %d is not one of uid %d's groups on node %d"
	RuleNoAccount  = "uid %d has no account on node %d"
)

// Decide applies the policy to r.
func Decide(r Request) Decision {
	d := Decision{req: r}
	switch {
	case !r.Action.Valid() || r.UID < 0 || r.From < 1 || r.Node < 1 || r.Owner[0] < 0 || r.Owner[1] < 0 || r.Owner[2] < 0:
		d.Rule = RuleBadRequest
	case !r.Remote() && r.UID == 0: // rule 1
		d.Allowed = true
	case r.Remote() && !r.AllowRemoteRoot && r.UID == 0 && !(r.Action == MigrateIn && r.Home): // rule 2
		d.Rule = RuleRemoteRoot
	case r.Remote() && !r.AllowRemoteRoot && r.Owner.Root() && !(r.Action == MigrateIn && r.Home):
		d.Rule = RuleRemoteRoot
	case r.UID == 0: // root, allowed here
		d.Allowed = true
	case r.Remote() && (r.Action == Exec || r.Action == MigrateIn) && len(r.GIDs) > 0 && r.Groups == nil: // rule 4
		d.Rule = fmt.Sprintf(RuleNoAccount, r.UID, r.Node)
	case r.Remote() && (r.Action == Exec || r.Action == MigrateIn) && foreignGID(r.GIDs, r.Groups) >= 0:
		d.Rule = fmt.Sprintf(RuleGroup, foreignGID(r.GIDs, r.Groups), r.UID, r.Node)
	case r.UID == r.Owner[0] || r.UID == r.Owner[2]: // rule 3, as kill(2)
		d.Allowed = true
	default:
		d.Rule = fmt.Sprintf(RuleNotOwner, r.Owner[0], r.UID)
	}
	return d
}

// foreignGID is the first of gids not in groups, -1 if none.
func foreignGID(gids, groups []int) int {
	for _, g := range gids {
		if !slices.Contains(groups, g) {
			return g
		}
	}
	return -1
}

// Message is the refusal's text: which node refuses what, of which
// process, for whom, from where, and by which rule. "" when allowed.
func (d Decision) Message() string {
	if d.Allowed {
		return ""
	}
	r := d.req
	what := r.Action.String()
	if r.Process != 0 {
		what += fmt.Sprintf(" of process %d", r.Process)
	}
	from := "on this node"
	if r.Remote() {
		from = fmt.Sprintf("from node %d", r.From)
	}
	return fmt.Sprintf("node %d refuses %s for %s %s: %s", r.Node, what, User(r.UID), from, d.Rule)
}

// User names uid in messages: root, or "uid N".
func User(uid int) string {
	if uid == 0 {
		return "root"
	}
	return fmt.Sprintf("uid %d", uid)
}

// PsOnly says how much of a process's details the caller of r gets:
// only what ps shows (true), or also what carries its environment and
// other secrets (false).
func PsOnly(r Request) bool {
	r.Action = Details
	return !Decide(r).Allowed
}
