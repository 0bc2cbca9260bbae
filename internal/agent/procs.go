package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os/user"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ssi-cluster/ssi/internal/api"
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
	num := a.Identity().Number
	if num == 0 {
		return nil, errors.New("this node has no number yet")
	}
	var table []vproc.Proc
	if pid != 0 {
		if p, ok := vproc.Lookup("/proc", pid); ok {
			table = append(table, p)
		}
	} else {
		var err error
		if table, err = vproc.Table("/proc"); err != nil {
			return nil, err
		}
	}
	out := make([]api.Proc, 0, len(table))
	for _, p := range table {
		cpid, err := vproc.Make(num, p.Pid)
		if err != nil {
			continue
		}
		out = append(out, api.Proc{CPID: int64(cpid), Node: num, Pid: p.Pid, PPid: p.PPid, PGid: p.PGid,
			UID: p.UID, User: a.userName(p.UID), State: p.State, CPU: p.CPUPercent, RSS: p.RSS,
			Time: p.CPUTime, Threads: p.Threads, Command: p.Cmdline})
	}
	return out, nil
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
	if r.Pid < 0 || r.Pid >= vproc.MaxPid {
		return nil, status.Errorf(codes.InvalidArgument, "pid %d is not a pid", r.Pid)
	}
	procs, err := h.agent().localProcs(r.Pid)
	if err != nil {
		return nil, status.Error(codes.Unavailable, err.Error())
	}
	return &transport.ProcsResponse{Procs: procs}, nil
}

func (h *rpcHandler) Signal(ctx context.Context, r *transport.SignalRequest) (*transport.SignalResponse, error) {
	from, _ := transport.PeerFrom(ctx)
	if err := h.agent().signalLocal(r.Pid, r.Group, r.Signal, r.UID, fmt.Sprintf("node %d (%s)", r.From, from)); err != nil {
		return nil, err
	}
	return &transport.SignalResponse{}, nil
}

// signalLocal delivers sig to a local process (or group) for uid, which
// must own every process it reaches unless it is root. Errors are gRPC
// statuses that name the problem.
func (a *Agent) signalLocal(pid int, group bool, sig, uid int, from string) error {
	if sig < 0 || sig > 64 {
		return status.Errorf(codes.InvalidArgument, "signal %d is not a signal", sig)
	}
	if pid < 1 || pid >= vproc.MaxPid {
		return status.Errorf(codes.InvalidArgument, "pid %d is not a pid", pid)
	}
	num := a.Identity().Number
	targets := []int{pid}
	if group {
		table, err := vproc.Table("/proc")
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
	for _, t := range targets {
		owner, err := vproc.Owner("/proc", t)
		if err != nil {
			return status.Errorf(codes.NotFound, "no process %d on node %d", t, num)
		}
		if uid != 0 && owner != uid {
			a.log.Warn("refused a signal", "pid", t, "signal", sig, "uid", uid, "owner", owner, "from", from)
			return status.Errorf(codes.PermissionDenied, "process %d on node %d belongs to uid %d, not to you (uid %d)", t, num, owner, uid)
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
	a.log.Info("signal delivered", "pid", target, "signal", sig, "uid", uid, "from", from)
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
		return a.localProcs(pid)
	}
	c, err := a.pool.Client(n.RPCAddr(), transport.Control)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	resp, err := c.Procs(ctx, pid)
	if err != nil {
		return nil, err
	}
	return resp.Procs, nil
}

func (a *Agent) handleProcs(w http.ResponseWriter, r *http.Request) {
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

func (a *Agent) handleWhere(w http.ResponseWriter, r *http.Request) {
	cpid, err := vproc.Parse(r.PathValue("cpid"))
	if err != nil {
		writeErr(w, http.StatusBadRequest, "%v", err)
		return
	}
	reply := a.clusterProcs(r.Context(), cpid.Node(), cpid.Pid())
	for _, p := range reply.Procs {
		if p.CPID == int64(cpid) {
			writeJSON(w, http.StatusOK, p)
			return
		}
	}
	if why, ok := reply.Unreachable[strconv.Itoa(cpid.Node())]; ok {
		writeErr(w, http.StatusServiceUnavailable, "node %d cannot be asked: %s", cpid.Node(), why)
		return
	}
	writeErr(w, http.StatusNotFound, "no process %d (node %d, pid %d)", cpid, cpid.Node(), cpid.Pid())
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
	self := a.Identity().Number
	var err error
	if cpid.Node() == self {
		err = a.signalLocal(cpid.Pid(), req.Group, req.Signal, c.UID, fmt.Sprintf("local uid %d", c.UID))
	} else {
		err = a.signalRemote(r.Context(), cpid, req.Group, req.Signal, c.UID)
	}
	if err != nil {
		code := map[codes.Code]int{codes.NotFound: http.StatusNotFound, codes.PermissionDenied: http.StatusForbidden,
			codes.InvalidArgument: http.StatusBadRequest}[status.Code(err)]
		if code == 0 {
			code = http.StatusServiceUnavailable
		}
		writeErr(w, code, "kill %d: %s", req.CPID, status.Convert(err).Message())
		return
	}
	writeJSON(w, http.StatusOK, struct{}{})
}

func (a *Agent) signalRemote(ctx context.Context, cpid vproc.CPID, group bool, sig, uid int) error {
	var rec *state.NodeRec
	a.store.FSM.Read(func(reg *state.Registry) {
		if n := reg.Nodes[cpid.Node()]; n != nil {
			cp := *n
			rec = &cp
		}
	})
	if rec == nil {
		return status.Errorf(codes.NotFound, "no node %d in the cluster", cpid.Node())
	}
	if rec.State != api.StateUp {
		return status.Errorf(codes.Unavailable, "node %d is %s", rec.Number, rec.State)
	}
	c, err := a.pool.Client(rec.RPCAddr(), transport.Control)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	_, err = c.Signal(ctx, &transport.SignalRequest{Pid: cpid.Pid(), Group: group, Signal: sig, UID: uid,
		From: a.Identity().Number})
	return err
}
