package agent

import (
	"context"
	"errors"
	"net/http"
	"os"
	"os/user"
	"sort"
	"strconv"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ssi-cluster/ssi/internal/api"
	"github.com/ssi-cluster/ssi/internal/authz"
	"github.com/ssi-cluster/ssi/internal/state"
	"github.com/ssi-cluster/ssi/internal/transport"
	"github.com/ssi-cluster/ssi/internal/vproc"
)

// The cluster-wide process space, first part: every node's table with
// cluster pids, `where`, and signals with ownership checked on the node
// where the process runs.

// localProcs is this node's process table as api.Procs, or only process
// pid when pid is not 0.
func (a *Agent) localProcs(pid int) ([]api.Proc, error) {
	num, err := a.numbered()
	if err != nil {
		return nil, err
	}
	var table []vproc.Proc
	if pid != 0 {
		if p, ok := vproc.Lookup("/proc", pid); ok {
			table = append(table, p)
		}
	} else {
		if table, err = a.procs.Table(); err != nil {
			return nil, err
		}
	}
	runs := a.track.runsSnapshot()
	if a.ownOnly && pid == 0 {
		roots := map[int]bool{os.Getpid(): true}
		for pid := range runs {
			roots[pid] = true
		}
		table = descendants(table, roots)
	}
	return a.describe(num, table, runs, a.track.hidden()), nil
}

// descendants keeps the processes of table that are one of roots or
// descend from one: an agent that shares its machine with others (ssi
// dev without root, load_scope = "agent") lists only its own processes
// (a process asked for by its pid is still found, as a native one).
func descendants(table []vproc.Proc, roots map[int]bool) []vproc.Proc {
	children := make(map[int][]int, len(table))
	for _, p := range table {
		children[p.PPid] = append(children[p.PPid], p.Pid)
	}
	keep := make(map[int]bool, len(roots))
	queue := make([]int, 0, len(roots))
	for pid := range roots {
		keep[pid] = true
		queue = append(queue, pid)
	}
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		for _, c := range children[pid] {
			if !keep[c] {
				keep[c] = true
				queue = append(queue, c)
			}
		}
	}
	out := table[:0:0]
	for _, p := range table {
		if keep[p.Pid] {
			out = append(out, p)
		}
	}
	return out
}

// numbered is this node's number, which cluster pids need: an error
// before it has one.
func (a *Agent) numbered() (int, error) {
	if num := a.Identity().Number; num != 0 {
		return num, nil
	}
	return 0, errors.New("this node has no number yet")
}

// describe gives the processes of table their cluster pids (runs: the
// processes run here for deputies; hidden: deputies and exec helpers,
// left out) as this node, num (not 0), sees them.
func (a *Agent) describe(num int, table []vproc.Proc, runs map[int]runRec, hidden map[int]bool) []api.Proc {
	out := make([]api.Proc, 0, len(table))
	for _, p := range table {
		if hidden[p.Pid] {
			continue // a deputy (its process stands for it) or an exec helper
		}
		cpid := cpidOf(runs, num, p.Pid)
		if cpid == 0 {
			continue
		}
		pp := api.Proc{CPID: cpid, Node: num, Pid: p.Pid, PPid: p.PPid, PGid: p.PGid,
			UID: p.UID, User: a.userName(p.UID), State: p.State, CPU: p.CPUPercent, RSS: p.RSS,
			Time: p.CPUTime, Threads: p.Threads, Command: p.Cmdline}
		if r, ok := runs[p.Pid]; ok {
			pp.PCPID = r.PPid
		} else if p.PPid > 0 {
			pp.PCPID = cpidOf(runs, num, p.PPid)
		}
		out = append(out, pp)
	}
	return out
}

// userName returns the login name of uid (the uid itself if it has none),
// remembered for the agent's life.
func (a *Agent) userName(uid int) string {
	if v, ok := a.userNames.Load(uid); ok {
		return v.(string)
	}
	name := strconv.Itoa(uid)
	if u, err := user.LookupId(name); err == nil {
		name = u.Username
	}
	a.userNames.Store(uid, name)
	return name
}

func (h *rpcHandler) Procs(ctx context.Context, r *transport.ProcsRequest) (*transport.ProcsResponse, error) {
	if r.Pid < 0 || r.Pid >= vproc.MaxPid || r.Home < 0 || r.CPID < 0 {
		return nil, status.Errorf(codes.InvalidArgument, "pid %d, cpid %d, home %d: out of range", r.Pid, r.CPID, r.Home)
	}
	a := h.agent()
	var procs []api.Proc
	var err error
	switch {
	case r.Surrogate:
		var p api.Proc
		if p, err = a.surrogateFind(ctx, r.CPID); err == nil {
			procs = []api.Proc{p}
		}
	case r.CPID != 0:
		procs, err = a.runProcs(func(rec runRec) bool { return rec.CPID == r.CPID })
	case r.Home != 0:
		procs, err = a.runProcs(func(rec runRec) bool { return rec.Home == r.Home })
	case r.Pid != 0:
		procs, err = a.originProcs(ctx, r.Pid)
		if c, cerr := vproc.Make(a.Identity().Number, r.Pid); err == nil && len(procs) == 0 && cerr == nil {
			err = a.endedErr(c) // a run of this home that ended: say how
		}
	default:
		procs, err = a.localProcs(0)
	}
	if err != nil {
		if _, ok := status.FromError(err); ok {
			return nil, err
		}
		return nil, status.Error(codes.Unavailable, err.Error())
	}
	return &transport.ProcsResponse{Procs: procs}, nil
}

// Signal delivers a signal for a user of another node. The calling
// node is the one its certificate names: a request that says it comes
// from another is refused (callerNode).
func (h *rpcHandler) Signal(ctx context.Context, r *transport.SignalRequest) (*transport.SignalResponse, error) {
	a := h.agent()
	if r.UID < 0 || r.From < 0 || r.CPID < 0 {
		return nil, status.Errorf(codes.InvalidArgument, "signal for uid %d from node %d to cpid %d: out of range", r.UID, r.From, r.CPID)
	}
	from, err := a.callerNode(ctx, r.From)
	if err != nil {
		return nil, err
	}
	act := actor{uid: r.UID, node: from}
	switch {
	case r.Surrogate:
		err = a.signalSurrogate(ctx, r.CPID, r.Signal, act)
	case r.CPID != 0:
		err = a.signalRun(r.CPID, r.Signal, act)
	default:
		err = a.signalOrigin(ctx, r.Pid, r.Group, r.Signal, act)
	}
	if err != nil {
		return nil, err
	}
	return &transport.SignalResponse{}, nil
}

// signalLocal delivers sig to a local process (or group) for act, whom
// the policy must allow on every process it reaches (decide). Errors are
// gRPC statuses that name the problem.
func (a *Agent) signalLocal(pid int, group bool, sig int, act actor) error {
	if sig < 0 || sig > 64 {
		return status.Errorf(codes.InvalidArgument, "signal %d is not a signal", sig)
	}
	if pid < 1 || pid >= vproc.MaxPid {
		return status.Errorf(codes.InvalidArgument, "pid %d is not a pid", pid)
	}
	num := a.Identity().Number
	targets := []int{pid}
	if group {
		table, err := a.procs.Table()
		if err != nil {
			return status.Error(codes.Internal, err.Error())
		}
		targets = targets[:0]
		for _, p := range table {
			if p.PGid == pid {
				targets = append(targets, p.Pid)
			}
		}
		if len(targets) == 0 {
			return status.Errorf(codes.NotFound, "no process group %d on node %d", pid, num)
		}
	}
	runs := a.track.runsSnapshot()
	for _, t := range targets {
		owner, err := vproc.UIDs("/proc", t)
		if err != nil {
			return status.Errorf(codes.NotFound, "no process %d on node %d", t, num)
		}
		if err := a.decide(authz.SignalAction(sig), act, cpidOf(runs, num, t), owner, false); err != nil {
			return err
		}
	}
	target := pid
	if group {
		target = -pid
	}
	if err := unix.Kill(target, syscall.Signal(sig)); err != nil {
		if errors.Is(err, unix.ESRCH) {
			return status.Errorf(codes.NotFound, "no process %d on node %d", pid, num)
		}
		return status.Errorf(codes.PermissionDenied, "kill %d on node %d: %v", target, num, err)
	}
	a.log.Info("signal delivered", "pid", target, "signal", sig, "uid", act.uid, "from", act.node)
	return nil
}

// clusterProcs asks every up node (or only node `only`) for its table, or
// for process pid, in parallel.
func (a *Agent) clusterProcs(ctx context.Context, only, pid int) api.ProcsReply {
	reply := api.ProcsReply{Procs: []api.Proc{}, Unreachable: map[string]string{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	self := a.Identity().Number
	for _, n := range a.registry().Sorted() {
		if n.State != api.StateUp || (only != 0 && n.Number != only) {
			continue
		}
		wg.Add(1)
		go func(n *state.NodeRec) {
			defer wg.Done()
			procs, err := a.procsOf(ctx, n, self, pid)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				reply.Unreachable[strconv.Itoa(n.Number)] = status.Convert(err).Message()
				return
			}
			reply.Procs = append(reply.Procs, procs...)
		}(n)
	}
	wg.Wait()
	sort.Slice(reply.Procs, func(i, j int) bool { return reply.Procs[i].CPID < reply.Procs[j].CPID })
	return reply
}

func (a *Agent) procsOf(ctx context.Context, n *state.NodeRec, self, pid int) ([]api.Proc, error) {
	if n.Number == self {
		if pid != 0 {
			return a.originProcs(ctx, pid)
		}
		return a.localProcs(0)
	}
	return a.askProcs(ctx, n, &transport.ProcsRequest{Pid: pid})
}

// Who sees which processes: everyone sees every process as ps shows it
// (user, state, usage, command line; never an environment, which no
// route returns). With hide_other_procs, as /proc with hidepid=2: a user
// other than root sees only his own on the socket, and the HTTP listener,
// which cannot tell who asks, shows none (refused, saying so).

// procsRefusal is why c may not list processes at all ("" if he may).
func procsRefusal(c Caller, hide bool) string {
	if hide && !c.Unix {
		return "processes are shown only on the agent's Unix socket (hide_other_procs is on)"
	}
	return ""
}

// visibleProcs is what c may see of procs.
func visibleProcs(procs []api.Proc, c Caller, hide bool) []api.Proc {
	if !hide || (c.Unix && c.UID == 0) {
		return procs
	}
	kept := make([]api.Proc, 0, len(procs))
	for _, p := range procs {
		if c.Unix && p.UID == c.UID {
			kept = append(kept, p)
		}
	}
	return kept
}

// hideOwner turns a refusal for another's process into "no process" when
// processes are hidden from c (as kill(2) under hidepid=2 says ESRCH):
// the refusal would tell that it exists, and whose it is.
func (a *Agent) hideOwner(c Caller, cpid vproc.CPID, err error) error {
	if a.cfg.HideOtherProcs && c.UID != 0 && status.Code(err) == codes.PermissionDenied {
		return status.Errorf(codes.NotFound, "no process %d (node %d, pid %d)", cpid, cpid.Node(), cpid.Pid())
	}
	return err
}

func (a *Agent) handleProcs(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	if why := procsRefusal(c, a.cfg.HideOtherProcs); why != "" {
		writeErr(w, http.StatusForbidden, "ps: %s", why)
		return
	}
	only := 0
	if s := r.URL.Query().Get("node"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			writeErr(w, http.StatusBadRequest, "node: %q is not a node number", s)
			return
		}
		only = n
	}
	reply := a.clusterProcs(r.Context(), only, 0)
	reply.Procs = visibleProcs(reply.Procs, c, a.cfg.HideOtherProcs)
	if u := r.URL.Query().Get("user"); u != "" {
		kept := reply.Procs[:0]
		for _, p := range reply.Procs {
			if p.User == u || strconv.Itoa(p.UID) == u {
				kept = append(kept, p)
			}
		}
		reply.Procs = kept
	}
	writeJSON(w, http.StatusOK, reply)
}
