package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ssi-cluster/ssi/internal/api"
	"github.com/ssi-cluster/ssi/internal/authz"
	"github.com/ssi-cluster/ssi/internal/migrate"
	"github.com/ssi-cluster/ssi/internal/rexec"
	"github.com/ssi-cluster/ssi/internal/transport"
	"github.com/ssi-cluster/ssi/internal/vproc"
)

// Live migration (`ssi migrate`), first part: the request, routed to the
// node where the process runs, which is the source (migrate_source.go)
// and streams it to the target (migrate_target.go); tracking once it has
// moved.

// moveTimeout bounds a whole migration asked of another node.
const moveTimeout = 10 * time.Minute

// migrations are this agent's sessions (processes run here for deputies,
// and processes restored here after a move) by cluster pid, and the
// test-only fault hook.
type migrations struct {
	mu       sync.Mutex
	sessions map[int64]*runSession
	// ended are sessions of moved processes that ended before their
	// homes re-attached, kept for them for attachWait (retire).
	ended map[int64]*runSession
	fault *migrate.Fault
	step  *migrate.StepHook // test-only (migrate.StepEnv)
	// Signals to moving processes (migrate_signal.go).
	held    map[int64][]heldSignal
	owners  map[int64]authz.Owner
	targets map[int64]int // where each moves
	gone    map[int64]movedTo
	// Decisions of migrations sent (migrate_outcome.go).
	outcomes map[uint64]outcome
}

func newMigrations() *migrations { return &migrations{sessions: map[int64]*runSession{}} }

func (m *migrations) add(cpid int64, s *runSession) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sessions[cpid] = s
	delete(m.gone, cpid) // it is here (again): signals are not sent on
}

// retire drops s, which has ended; with keep, s is kept as ended for
// attachWait (or its grace, if longer), for its home to re-attach to
// (takeEnded) and be told how the process ended.
func (m *migrations) retire(cpid int64, s *runSession, keep bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.sessions[cpid] == s {
		delete(m.sessions, cpid)
	}
	if !keep {
		return
	}
	if m.ended == nil {
		m.ended = map[int64]*runSession{}
	}
	m.ended[cpid] = s
	time.AfterFunc(max(attachWait, s.grace), func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		if m.ended[cpid] == s {
			delete(m.ended, cpid)
		}
	})
}

// takeEnded returns, and forgets, the ended session kept for cpid's
// home, if home is that node.
func (m *migrations) takeEnded(cpid int64, home int) *runSession {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.ended[cpid]
	if s == nil || s.rec.Home != home {
		return nil
	}
	delete(m.ended, cpid)
	return s
}

// all is every session running here.
func (m *migrations) all() []*runSession {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]*runSession, 0, len(m.sessions))
	for _, s := range m.sessions {
		out = append(out, s)
	}
	return out
}

func (m *migrations) session(cpid int64) *runSession {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.sessions[cpid]
}

// handleMigrate serves POST /v1/migrate: the caller's process moves to
// the node it names, "home" (the node part of its cluster pid) or
// "fast" (the best by load).
func (a *Agent) handleMigrate(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	if !c.Unix {
		writeErr(w, http.StatusForbidden, "migrate: accepted only on the agent's Unix socket")
		return
	}
	var req api.MigrateRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&req); err != nil {
		writeErr(w, http.StatusBadRequest, "migrate: malformed request: %v", err)
		return
	}
	cpid := vproc.CPID(req.CPID)
	if cpid.Node() < 1 || cpid.Pid() < 1 {
		writeErr(w, http.StatusBadRequest, "migrate: %d is not a cluster pid", req.CPID)
		return
	}
	m, err := a.migrateFor(r.Context(), cpid, req.To, c.UID)
	if err != nil {
		err = a.hideOwner(c, cpid, err)
		writeErr(w, migrateHTTPCode(err), "migrate %d: %s", req.CPID, status.Convert(err).Message())
		return
	}
	writeJSON(w, http.StatusOK, m)
}

// migrateHTTPCode maps a migration's gRPC status to an HTTP one: a
// refusal is a conflict.
func migrateHTTPCode(err error) int {
	switch status.Code(err) {
	case codes.FailedPrecondition, codes.AlreadyExists:
		return http.StatusConflict
	case codes.Aborted:
		return http.StatusServiceUnavailable
	}
	return httpCode(err)
}

// migrateFor finds cpid, resolves to and asks the node where it runs to
// move it for uid (a local caller); that node decides whether uid may.
func (a *Agent) migrateFor(ctx context.Context, cpid vproc.CPID, to string, uid int) (*api.Migration, error) {
	p, err := a.find(ctx, cpid)
	if err != nil {
		return nil, err
	}
	num, err := a.resolveTarget(to, cpid)
	if err != nil {
		return nil, err
	}
	if num == p.Node {
		best := ""
		if to == "fast" {
			best = ", the best by load"
		}
		return nil, status.Errorf(codes.AlreadyExists, "process %d already runs on node %d%s", cpid, num, best)
	}
	req := &transport.MoveRequest{CPID: int64(cpid), To: num, UID: uid, From: a.Identity().Number}
	var resp *transport.MoveResponse
	if p.Node == a.Identity().Number {
		resp, err = a.moveOut(ctx, req, a.local(uid))
	} else {
		n, uerr := a.upNode(p.Node)
		if uerr != nil {
			return nil, uerr
		}
		c, cerr := a.peer(n)
		if cerr != nil {
			return nil, cerr
		}
		cctx, cancel := context.WithTimeout(ctx, moveTimeout)
		defer cancel()
		resp, err = c.Move(cctx, req)
	}
	if err != nil {
		return nil, err
	}
	resp.CPID = int64(cpid)
	return resp, nil
}

// resolveTarget turns a node number, "home" or "fast" into a node that
// is up.
func (a *Agent) resolveTarget(to string, cpid vproc.CPID) (int, error) {
	var num int
	switch to {
	case "home":
		num = cpid.Node()
	case "fast":
		if num = rexec.Best(a.candidates(a.registry())); num == 0 {
			return 0, status.Error(codes.Unavailable, "no node is up")
		}
	default:
		n, err := strconv.Atoi(to)
		switch {
		case err != nil:
			return 0, status.Errorf(codes.InvalidArgument, "%q is not a node: give a node number (ssi nodes lists them), home or fast", to)
		case n < 1:
			return 0, status.Errorf(codes.InvalidArgument, "there is no node %d: nodes are numbered from 1 (ssi nodes lists them)", n)
		}
		num = n
	}
	if _, err := a.upNode(num); err != nil {
		return 0, err
	}
	return num, nil
}

// Move migrates one of this node's processes for a user of the cluster,
// on the calling node: the one its certificate names, which the request's
// From must be (callerNode).
func (h *rpcHandler) Move(ctx context.Context, r *transport.MoveRequest) (*transport.MoveResponse, error) {
	if vproc.CPID(r.CPID).Node() < 1 || r.To < 1 || r.UID < 0 || r.From < 0 {
		return nil, status.Errorf(codes.InvalidArgument, "move %d to node %d for uid %d: out of range", r.CPID, r.To, r.UID)
	}
	from, err := h.agent().callerNode(ctx, r.From)
	if err != nil {
		return nil, err
	}
	return h.agent().moveOut(ctx, r, actor{uid: r.UID, node: from})
}

// Moved notes where a process whose origin is this node runs now (Node
// 0: it ended).
func (h *rpcHandler) Moved(ctx context.Context, r *transport.MovedRequest) (*transport.MovedResponse, error) {
	a := h.agent()
	self := a.Identity().Number
	cpid := vproc.CPID(r.CPID)
	if cpid.Node() != self || cpid.Pid() < 1 || r.Node < 0 || r.Pid < 0 {
		return nil, status.Errorf(codes.InvalidArgument, "moved %d to node %d pid %d: not a process of node %d", r.CPID, r.Node, r.Pid, self)
	}
	from, err := a.callerNode(ctx, 0)
	if err != nil {
		return nil, err
	}
	// Only the node a process now runs on says so, and only of a process
	// this node knows left (it sent it there, or tracks it elsewhere);
	// only the node this node tracks it on says it ended there. The
	// caller is known from its certificate.
	rec, tracked := a.track.homeOf(cpid.Pid())
	tracked = tracked && rec.CPID == r.CPID
	switch {
	case r.Node == 0 && (!tracked || rec.Node == from):
	case r.Node == 0:
		return nil, status.Errorf(codes.PermissionDenied, "node %d refuses node %d's word that process %d ended: it runs on node %d", self, from, r.CPID, rec.Node)
	case r.Node != from:
		return nil, status.Errorf(codes.PermissionDenied, "node %d refuses node %d's word that process %d runs on node %d: only that node may say so", self, from, r.CPID, r.Node)
	case !tracked && a.mig.sentTo(r.CPID) != from:
		return nil, status.Errorf(codes.PermissionDenied, "node %d refuses node %d's word that process %d runs there: it did not leave node %d", self, from, r.CPID, self)
	}
	a.trackMoved(cpid, r.Node, r.Pid)
	return &transport.MovedResponse{}, nil
}

// trackMoved records, at the origin, that the process cpid (not run by
// a deputy) runs on node as pid; node 0: it ended. A deputy's process is
// followed by its relay instead.
func (a *Agent) trackMoved(cpid vproc.CPID, node, pid int) {
	t := a.track
	t.mu.Lock()
	defer t.mu.Unlock()
	r := t.home[cpid.Pid()]
	switch {
	case r != nil && r.Deputy:
	case node == 0:
		if r != nil && r.CPID == int64(cpid) {
			delete(t.home, cpid.Pid())
		}
	default:
		t.home[cpid.Pid()] = &homeRec{CPID: int64(cpid), Node: node, Pid: pid}
	}
}

// tellOrigin tells the origin of a process that is not a deputy's where
// it runs now (node 0: it ended), or notes it here if this is the origin.
func (a *Agent) tellOrigin(cpid vproc.CPID, node, pid int) {
	if cpid.Node() == a.Identity().Number {
		if node == a.Identity().Number && pid == cpid.Pid() {
			node = 0 // home again with its own pid: nothing to track
		}
		a.trackMoved(cpid, node, pid)
		return
	}
	n, err := a.upNode(cpid.Node())
	if err != nil {
		return // the surrogate finds it by asking every node
	}
	c, err := a.peer(n)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), rpcTimeout)
	defer cancel()
	if _, err := c.Moved(ctx, &transport.MovedRequest{CPID: int64(cpid), Node: node, Pid: pid}); err != nil {
		a.log.Warn("could not tell a process's origin where it runs", "cpid", showCPID(int64(cpid)), "node", node, "err", err)
	}
}

// nativeEnded is called when a process restored here (not a deputy's)
// ends: its origin stops tracking it.
func (a *Agent) nativeEnded(cpid int64) {
	go a.tellOrigin(vproc.CPID(cpid), 0, 0)
}

// refusal makes the gRPC status of a refusal to move. Reasons of several
// kinds come one kind a line, each line after a newline (see
// checkpoint.FormatReasons).
func refusal(cpid vproc.CPID, format string, args ...any) error {
	why := fmt.Sprintf(format, args...)
	if !strings.HasPrefix(why, "\n") {
		why = " " + why
	}
	return status.Errorf(codes.FailedPrecondition, "process %d cannot move:%s", cpid, why)
}
