package agent

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ssi-cluster/ssi/internal/api"
	"github.com/ssi-cluster/ssi/internal/state"
	"github.com/ssi-cluster/ssi/internal/transport"
	"github.com/ssi-cluster/ssi/internal/vproc"
)

// Finding and signalling a process by cluster pid. The origin node (the
// cluster pid's node part) answers for its processes: its own, and those
// its deputies run elsewhere, which it tracks. When the origin is down, a
// surrogate (the lowest-numbered up node) answers for it by asking every
// node for the processes run for that origin; when the origin returns it
// takes the tracking back (adoptLoop).

const rpcTimeout = 3 * time.Second

// upNode returns node num's record if it is up.
func (a *Agent) upNode(num int) (*state.NodeRec, error) {
	var rec *state.NodeRec
	a.store.FSM.Read(func(reg *state.Registry) {
		if n := reg.Nodes[num]; n != nil {
			cp := *n
			rec = &cp
		}
	})
	if rec == nil {
		return nil, status.Errorf(codes.NotFound, "no node %d in the cluster", num)
	}
	if rec.State != api.StateUp {
		return rec, status.Errorf(codes.Unavailable, "node %d is %s", num, rec.State)
	}
	return rec, nil
}

// surrogateFor is the node that answers for origin while it is down.
func (a *Agent) surrogateFor(origin int) (*state.NodeRec, error) {
	for _, n := range a.registry().Sorted() {
		if n.State == api.StateUp && n.Number != origin {
			return n, nil
		}
	}
	return nil, status.Error(codes.Unavailable, "no node is up to answer for the origin")
}

// peer returns a control-channel client of node n.
func (a *Agent) peer(n *state.NodeRec) (*transport.Client, error) {
	return a.pool.Client(n.RPCAddr(), transport.Control)
}

// originProcs answers for the process whose origin part is pid: the
// process it tracks if it runs elsewhere (or was started here for a
// deputy), else the local process.
func (a *Agent) originProcs(ctx context.Context, pid int) ([]api.Proc, error) {
	rec, ok := a.track.homeOf(pid)
	if !ok || rec.Pid == 0 {
		procs, err := a.localProcs(pid)
		if err == nil && len(procs) == 0 {
			// Not here, and not tracked: it may have moved away before
			// this agent restarted (adoptLoop takes it back, in time).
			procs = a.searchAll(ctx, pid)
		}
		return procs, err
	}
	procs, err := a.trackedProcs(ctx, rec)
	if err == nil && len(procs) == 0 && rec.Deputy {
		// Its deputy lives: it moved on, and the relay has yet to hear.
		procs = a.searchAll(ctx, pid)
	}
	if err == nil && len(procs) == 0 && !rec.Deputy {
		// Tracked without a deputy, and gone: forget it.
		a.track.dropStale(pid, rec.CPID)
		return a.localProcs(pid)
	}
	return procs, err
}

// searchAll asks every up node for the process of this origin whose
// origin part is pid (nil if none has it).
func (a *Agent) searchAll(ctx context.Context, pid int) []api.Proc {
	cpid, err := vproc.Make(a.Identity().Number, pid)
	if err != nil {
		return nil
	}
	p, err := a.surrogateFind(ctx, int64(cpid))
	if err != nil {
		return nil
	}
	return []api.Proc{p}
}

// trackedProcs asks where rec's process runs for it.
func (a *Agent) trackedProcs(ctx context.Context, rec homeRec) ([]api.Proc, error) {
	if rec.Node == a.Identity().Number {
		return a.runProcs(func(r runRec) bool { return r.CPID == rec.CPID })
	}
	n, err := a.upNode(rec.Node)
	if err != nil {
		return nil, err
	}
	return a.askProcs(ctx, n, &transport.ProcsRequest{CPID: rec.CPID})
}

// runProcs lists the processes run here for deputies that match (one
// look at the run table for all of them: an origin taking its tracking
// back asks for all of its runs at once).
func (a *Agent) runProcs(match func(runRec) bool) ([]api.Proc, error) {
	num, err := a.numbered()
	if err != nil {
		return nil, err
	}
	runs, hidden := a.track.runsSnapshot(), a.track.hidden()
	var table []vproc.Proc
	for pid, r := range runs {
		if match(r) {
			// A zombie has ended (or, killed at a move's commit, waits
			// for its holder to collect it while it runs on elsewhere).
			if p, ok := vproc.Lookup("/proc", pid); ok && p.State != "Z" {
				table = append(table, p)
			}
		}
	}
	return a.describe(num, table, runs, hidden), nil
}

// surrogateFind asks every up node for the process run as cpid.
func (a *Agent) surrogateFind(ctx context.Context, cpid int64) (api.Proc, error) {
	self := a.Identity().Number
	var (
		mu    sync.Mutex
		found *api.Proc
		wg    sync.WaitGroup
	)
	for _, n := range a.registry().Sorted() {
		if n.State != api.StateUp {
			continue
		}
		wg.Add(1)
		go func(n *state.NodeRec) {
			defer wg.Done()
			var ps []api.Proc
			if n.Number == self {
				ps, _ = a.runProcs(func(r runRec) bool { return r.CPID == cpid })
			} else {
				ps, _ = a.askProcs(ctx, n, &transport.ProcsRequest{CPID: cpid})
			}
			mu.Lock()
			defer mu.Unlock()
			for i := range ps {
				if ps[i].CPID == cpid && found == nil {
					found = &ps[i]
				}
			}
		}(n)
	}
	wg.Wait()
	if found == nil {
		c := vproc.CPID(cpid)
		return api.Proc{}, status.Errorf(codes.NotFound, "no process %d (origin node %d, which is down, pid %d) runs on any node", cpid, c.Node(), c.Pid())
	}
	return *found, nil
}

// find locates a process by cluster pid: at its origin, or through the
// surrogate while the origin is down.
func (a *Agent) find(ctx context.Context, cpid vproc.CPID) (api.Proc, error) {
	self := a.Identity().Number
	origin := cpid.Node()
	var ps []api.Proc
	var err error
	switch n, uerr := a.upNode(origin); {
	case origin == self:
		ps, err = a.originProcs(ctx, cpid.Pid())
	case uerr == nil:
		ps, err = a.askProcs(ctx, n, &transport.ProcsRequest{Pid: cpid.Pid()})
	case status.Code(uerr) == codes.NotFound:
		return api.Proc{}, uerr
	default:
		sur, serr := a.surrogateFor(origin)
		if serr != nil {
			return api.Proc{}, serr
		}
		if sur.Number == self {
			return a.surrogateFind(ctx, int64(cpid))
		}
		ps, err = a.askProcs(ctx, sur, &transport.ProcsRequest{CPID: int64(cpid), Surrogate: true})
	}
	if err != nil {
		return api.Proc{}, err
	}
	for _, p := range ps {
		if p.CPID == int64(cpid) {
			return p, nil
		}
	}
	if origin == self {
		if err := a.endedErr(cpid); err != nil {
			return api.Proc{}, err
		}
	}
	return api.Proc{}, status.Errorf(codes.NotFound, "no process %d (node %d, pid %d)", cpid, origin, cpid.Pid())
}

// endedErr says how cpid, a run of this home that is no more, ended (a
// NotFound status), or nil if this home does not know it. Not with
// hide_other_procs: the note does not say whose run it was, and another
// user may not learn how one of yours ended.
func (a *Agent) endedErr(cpid vproc.CPID) error {
	if how := a.track.endedHow(int64(cpid)); how != "" && !a.cfg.HideOtherProcs {
		return status.Errorf(codes.NotFound, "process %d (run from node %d) %s", cpid, cpid.Node(), how)
	}
	return nil
}

func (a *Agent) askProcs(ctx context.Context, n *state.NodeRec, r *transport.ProcsRequest) ([]api.Proc, error) {
	c, err := a.peer(n)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, rpcTimeout)
	defer cancel()
	resp, err := c.Procs(ctx, r)
	if err != nil {
		return nil, err
	}
	return resp.Procs, nil
}

func (a *Agent) handleWhere(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	if why := procsRefusal(c, a.cfg.HideOtherProcs); why != "" {
		writeErr(w, http.StatusForbidden, "where: %s", why)
		return
	}
	cpid, err := vproc.Parse(r.PathValue("cpid"))
	if err != nil {
		writeErr(w, http.StatusBadRequest, "%v", err)
		return
	}
	p, err := a.find(r.Context(), cpid)
	if err != nil {
		writeErr(w, httpCode(err), "%s", status.Convert(err).Message())
		return
	}
	if len(visibleProcs([]api.Proc{p}, c, a.cfg.HideOtherProcs)) == 0 {
		// As if it were not there, as hidepid=2 has it.
		writeErr(w, http.StatusNotFound, "no process %d (node %d, pid %d)", cpid, cpid.Node(), cpid.Pid())
		return
	}
	writeJSON(w, http.StatusOK, p)
}

// httpCode maps a gRPC status to an HTTP one.
func httpCode(err error) int {
	code := map[codes.Code]int{codes.NotFound: http.StatusNotFound, codes.PermissionDenied: http.StatusForbidden,
		codes.InvalidArgument: http.StatusBadRequest}[status.Code(err)]
	if code == 0 {
		code = http.StatusServiceUnavailable
	}
	return code
}

func (a *Agent) handleSignal(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	if !c.Unix {
		writeErr(w, http.StatusForbidden, "kill: signals are accepted only on the agent's Unix socket")
		return
	}
	var req api.SignalRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&req); err != nil {
		writeErr(w, http.StatusBadRequest, "kill: malformed request: %v", err)
		return
	}
	cpid := vproc.CPID(req.CPID)
	if cpid.Node() < 1 || cpid.Pid() < 1 {
		writeErr(w, http.StatusBadRequest, "kill: %d is not a cluster pid", req.CPID)
		return
	}
	if err := a.signal(r.Context(), cpid, req.Group, req.Signal, a.local(c.UID)); err != nil {
		err = a.hideOwner(c, cpid, err)
		writeErr(w, httpCode(err), "kill %d: %s", req.CPID, status.Convert(err).Message())
		return
	}
	writeJSON(w, http.StatusOK, struct{}{})
}

// signal delivers sig for act (a local caller) to cpid (or its group)
// through its origin, or through the surrogate while the origin is down.
// The node where the process runs decides (signalLocal).
func (a *Agent) signal(ctx context.Context, cpid vproc.CPID, group bool, sig int, act actor) error {
	self := a.Identity().Number
	origin := cpid.Node()
	if origin == self {
		return a.signalOrigin(ctx, cpid.Pid(), group, sig, act)
	}
	req := &transport.SignalRequest{Pid: cpid.Pid(), Group: group, Signal: sig, UID: act.uid, From: self}
	n, err := a.upNode(origin)
	if status.Code(err) == codes.NotFound {
		return err
	}
	if err != nil {
		if n, err = a.surrogateFor(origin); err != nil {
			return err
		}
		if n.Number == self {
			return a.signalSurrogate(ctx, int64(cpid), sig, act)
		}
		req = &transport.SignalRequest{CPID: int64(cpid), Surrogate: true, Signal: sig, UID: act.uid, From: self}
	}
	return a.callSignal(ctx, n, req)
}

func (a *Agent) callSignal(ctx context.Context, n *state.NodeRec, r *transport.SignalRequest) error {
	c, err := a.peer(n)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, rpcTimeout)
	defer cancel()
	_, err = c.Signal(ctx, r)
	return err
}

// signalOrigin delivers a signal addressed to origin part pid: to the
// process group of the process it tracks, where that runs, or locally.
func (a *Agent) signalOrigin(ctx context.Context, pid int, group bool, sig int, act actor) error {
	rec, ok := a.track.homeOf(pid)
	if !ok {
		if c, err := vproc.Make(a.Identity().Number, pid); err == nil && !group {
			if moving, err := a.moveSignal(int64(c), sig, act); moving {
				return err
			}
		}
		return a.signalLocal(pid, group, sig, act)
	}
	if rec.Pid == 0 {
		return status.Errorf(codes.Unavailable, "process %d is still starting", rec.CPID)
	}
	err := a.signalOn(ctx, rec.Node, rec.CPID, sig, act)
	if status.Code(err) == codes.NotFound && !rec.Deputy {
		// Tracked without a deputy, and gone: forget it.
		a.track.dropStale(pid, rec.CPID)
		return a.signalLocal(pid, group, sig, act)
	}
	return err
}

// signalRun signals the process group of the process run here as cpid.
// Without a tty that group is orphaned (its parent, the agent, is in
// another session), so the kernel would discard SIGTSTP, SIGTTIN and
// SIGTTOU: they become SIGSTOP. With a tty the exec helper leading the
// session stops with its command and is continued with it.
func (a *Agent) signalRun(cpid int64, sig int, act actor) error {
	if moving, err := a.moveSignal(cpid, sig, act); moving {
		return err // held during a move's freeze, or sent where it went
	}
	pid, rec, ok := a.track.runByCPID(cpid)
	if !ok {
		return status.Errorf(codes.NotFound, "process %d does not run on node %d", cpid, a.Identity().Number)
	}
	if rec.Helper == 0 && (sig == int(unix.SIGTSTP) || sig == int(unix.SIGTTIN) || sig == int(unix.SIGTTOU)) {
		sig = int(unix.SIGSTOP)
	}
	if err := a.signalLocal(pid, true, sig, act); err != nil {
		return err
	}
	if rec.Helper != 0 && (sig == int(unix.SIGCONT) || sig == int(unix.SIGKILL)) {
		unix.Kill(rec.Helper, unix.Signal(sig))
	}
	return nil
}

// signalSurrogate finds cpid on the nodes and signals it there.
func (a *Agent) signalSurrogate(ctx context.Context, cpid int64, sig int, act actor) error {
	p, err := a.surrogateFind(ctx, cpid)
	if err != nil {
		return err
	}
	return a.signalOn(ctx, p.Node, cpid, sig, act)
}

// signalOn signals cpid, run on node (this one or another), for act. A
// signal passed on to another node comes from this one there: that node
// decides with the acting user and this node's number.
func (a *Agent) signalOn(ctx context.Context, node int, cpid int64, sig int, act actor) error {
	if node == a.Identity().Number {
		return a.signalRun(cpid, sig, act)
	}
	n, err := a.upNode(node)
	if err != nil {
		return err
	}
	return a.callSignal(ctx, n, &transport.SignalRequest{CPID: cpid, Signal: sig, UID: act.uid, From: a.Identity().Number})
}

// adoptLoop takes tracking back after this agent (re)starts: once this
// node is up, it asks every node for the processes run there for its
// deputies of before, and tracks them again (without a deputy).
func (a *Agent) adoptLoop(ctx context.Context) {
	for {
		ch := a.store.FSM.Changed()
		if a.adopt(ctx) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-ch:
		case <-time.After(time.Second):
		}
	}
}

// adopt asks the other up nodes once; false if this node is not up yet or
// a node could not be asked.
func (a *Agent) adopt(ctx context.Context) bool {
	self := a.Identity().Number
	if _, err := a.upNode(self); self == 0 || err != nil {
		return false
	}
	ok := true
	for _, n := range a.registry().Sorted() {
		if n.State != api.StateUp || n.Number == self {
			continue
		}
		ps, err := a.askProcs(ctx, n, &transport.ProcsRequest{Home: self})
		if err != nil {
			ok = false
			continue
		}
		for _, p := range ps {
			c := vproc.CPID(p.CPID)
			if c.Node() != self {
				continue
			}
			if _, known := a.track.homeOf(c.Pid()); !known {
				a.track.setHome(c.Pid(), &homeRec{CPID: p.CPID, Node: p.Node, Pid: p.Pid})
				a.log.Info("tracking a process run elsewhere again", "cpid", showCPID(p.CPID), "node", p.Node, "pid", p.Pid)
			}
		}
	}
	return ok
}
