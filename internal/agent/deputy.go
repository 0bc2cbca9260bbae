package agent

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ssi-cluster/ssi/internal/api"
	"github.com/ssi-cluster/ssi/internal/rexec"
	"github.com/ssi-cluster/ssi/internal/state"
	"github.com/ssi-cluster/ssi/internal/transport"
	"github.com/ssi-cluster/ssi/internal/vproc"
)

// The home side of `ssi run`: a deputy (the ssi run process) connects to
// its agent's Unix socket and upgrades the request to a frame stream; the
// agent fills in who the caller is from the kernel, gives the process its
// cluster pid, and runs it here or relays the stream to the executing
// node over the Bulk channel.

// downGrace is how long a broken stream waits for its node to be
// declared down (detection takes 0.4-0.7 s) before it is reported as a
// broken connection instead.
const downGrace = 3 * time.Second

// UpgradeExec is the protocol named in the Upgrade header of POST /v1/run.
const UpgradeExec = "ssi-exec"

func (a *Agent) handleRun(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	switch {
	case !c.Unix:
		writeErr(w, http.StatusForbidden, "run: accepted only on the agent's Unix socket")
		return
	case c.PID <= 0:
		writeErr(w, http.StatusBadRequest, "run: the agent cannot see your process (another PID namespace); run ssi on the node itself")
		return
	case r.Header.Get("Upgrade") != UpgradeExec:
		writeErr(w, http.StatusBadRequest, "run: the request must upgrade to %s", UpgradeExec)
		return
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		writeErr(w, http.StatusInternalServerError, "run: connection cannot be taken over")
		return
	}
	conn, brw, err := hj.Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: " + UpgradeExec + "\r\nConnection: Upgrade\r\n\r\n")
	if brw.Flush() != nil {
		return
	}
	a.serveDeputy(rexec.NewStreamConn(conn, brw.Reader), c)
}

// serveDeputy serves one run request of a deputy until its process ends.
func (a *Agent) serveDeputy(fc *rexec.StreamConn, c Caller) {
	f, err := fc.Recv()
	if err != nil {
		return
	}
	if f.Type != rexec.TStart {
		refuseRun(fc, rexec.ExitCannotRun, fmt.Sprintf("the first frame is %s, not start", f.Type))
		return
	}
	spec, err := rexec.ParseSpec(f.Data)
	if err != nil {
		refuseRun(fc, rexec.ExitCannotRun, err.Error())
		return
	}
	origin, err := a.fillCaller(spec, c)
	if err != nil {
		refuseRun(fc, rexec.ExitCannotRun, err.Error())
		return
	}
	target, err := a.chooseNode(spec)
	if err != nil {
		refuseRun(fc, rexec.ExitCannotRun, err.Error())
		return
	}
	a.metrics.deputies.Inc()
	rec := &homeRec{CPID: spec.CPID, Node: target.Number, Deputy: true}
	a.track.setHome(origin, rec)
	defer a.track.dropHome(origin, rec)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The deputy's death (even by SIGKILL) hangs its process up.
	go watchExit(ctx, c.PID, cancel)

	hook := &startedHook{Conn: fc, started: func(s rexec.Started) {
		a.track.mu.Lock()
		rec.Pid = s.Pid
		a.track.mu.Unlock()
	}}
	if target.Number == a.Identity().Number {
		a.execute(ctx, spec, hook)
		return
	}
	a.relay(ctx, cancel, spec, target, hook)
}

// fillCaller sets spec's caller part from the kernel's view of the deputy
// and returns the origin part of its cluster pid (the deputy's pid, or
// the thread it named).
func (a *Agent) fillCaller(spec *rexec.Spec, c Caller) (int, error) {
	origin := c.PID
	if spec.Thread != 0 {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d/task/%d", c.PID, spec.Thread)); err != nil {
			return 0, fmt.Errorf("thread %d is not a thread of your process %d", spec.Thread, c.PID)
		}
		origin = spec.Thread
	}
	info, err := rexec.ReadCaller("/proc", c.PID)
	if err != nil {
		return 0, fmt.Errorf("reading your process's credentials: %v", err)
	}
	self := a.Identity().Number
	cpid, err := vproc.Make(self, origin)
	if err != nil {
		return 0, err
	}
	spec.UID, spec.GID, spec.Groups, spec.Umask, spec.Nice, spec.Rlimits =
		c.UID, c.GID, info.Groups, info.Umask, info.Nice, info.Rlimits
	spec.Home, spec.CPID = self, int64(cpid)
	if p, err := vproc.Make(self, info.PPid); err == nil && info.PPid > 0 {
		spec.PPid = int64(p)
	}
	if p, err := vproc.Make(self, info.PGid); err == nil && info.PGid > 0 {
		spec.PGid = int64(p)
	}
	return origin, nil
}

// chooseNode is the node named by spec, the best by load with --fast, or
// this one.
func (a *Agent) chooseNode(spec *rexec.Spec) (*state.NodeRec, error) {
	reg := a.registry()
	num := spec.Node
	if spec.Fast {
		if num = rexec.Best(a.candidates(reg)); num == 0 {
			return nil, errors.New("no node is up")
		}
	}
	if num == 0 {
		num = a.Identity().Number
	}
	n := reg.Nodes[num]
	if n == nil {
		return nil, fmt.Errorf("no node %d in the cluster", num)
	}
	if n.State != api.StateUp {
		return nil, fmt.Errorf("node %d is %s", num, n.State)
	}
	return n, nil
}

// candidates are the up nodes with their gossiped load.
func (a *Agent) candidates(reg *state.Registry) []rexec.Candidate {
	var out []rexec.Candidate
	for _, n := range reg.Sorted() {
		if n.State != api.StateUp {
			continue
		}
		c := rexec.Candidate{Node: n.Number, Cores: 1, Speed: 1000}
		if v, _, ok := a.gossip.Load(n.ID); ok {
			c.RunQueue, c.Cores, c.Speed = float64(v.RunQueue), int(v.Cores), int(v.Speed)
			c.MemFree, c.MemTotal = v.MemFree, v.MemTotal
		}
		out = append(out, c)
	}
	return out
}

// handlePlace answers GET /v1/place?n=K: K node numbers spread by load
// (for `ssi run --np`).
func (a *Agent) handlePlace(w http.ResponseWriter, r *http.Request) {
	k, err := strconv.Atoi(r.URL.Query().Get("n"))
	if err != nil || k < 1 || k > 1<<16 {
		writeErr(w, http.StatusBadRequest, "place: n=%q is not a count from 1 to 65536", r.URL.Query().Get("n"))
		return
	}
	nodes := rexec.Spread(k, a.candidates(a.registry()))
	if nodes == nil {
		writeErr(w, http.StatusServiceUnavailable, "place: no node is up")
		return
	}
	writeJSON(w, http.StatusOK, nodes)
}

// relay carries frames between the deputy and the executing node until
// the process ends, the deputy goes or the node does.
func (a *Agent) relay(ctx context.Context, cancel context.CancelFunc, spec *rexec.Spec, target *state.NodeRec, fc rexec.Conn) {
	cpid := showCPID(spec.CPID)
	lost := func(msg string) {
		a.metrics.lost.Inc()
		a.log.Warn("run lost", "cpid", cpid, "node", target.Number, "why", msg)
		fc.Send(rexec.Frame{Type: rexec.TError, Data: []byte(msg)})
		fc.Send(rexec.JSON(rexec.TExit, rexec.Status{Code: rexec.ExitLost, Lost: true}))
	}
	cl, err := a.pool.Client(target.RPCAddr(), transport.Bulk)
	if err != nil {
		lost(fmt.Sprintf("cannot reach node %d: %v", target.Number, err))
		return
	}
	stream, err := cl.Exec(ctx)
	if err == nil {
		start := rexec.JSON(rexec.TStart, spec)
		err = stream.SendMsg(&start)
	}
	if err != nil {
		lost(fmt.Sprintf("cannot reach node %d: %v", target.Number, err))
		return
	}
	var down atomic.Pointer[string] // why the node is gone, once it is
	done := make(chan struct{})
	defer close(done)
	go func() {
		if why := a.waitNodeGone(ctx, target.Number, done); why != "" {
			down.Store(&why)
			cancel()
		}
	}()
	go func() {
		defer stream.CloseSend()
		for {
			f, err := fc.Recv()
			if err != nil {
				cancel() // the deputy is gone: its process is hung up
				return
			}
			if stream.SendMsg(&f) != nil {
				return
			}
		}
	}()
	for {
		var f rexec.Frame
		if err := stream.RecvMsg(&f); err != nil {
			if down.Load() == nil && ctx.Err() == nil {
				// A node that dies closes its connections at once
				// (or not at all): give the failure detector its
				// time before calling it a broken connection.
				wctx, wcancel := context.WithTimeout(ctx, downGrace)
				if why := a.waitNodeGone(wctx, target.Number, done); why != "" {
					down.Store(&why)
				}
				wcancel()
			}
			if why := down.Load(); why != nil {
				lost(fmt.Sprintf("node %d went down (%s); process %s lost", target.Number, *why, cpid))
			} else if ctx.Err() == nil {
				lost(fmt.Sprintf("lost the connection to node %d (%v); process %s was hung up", target.Number, err, cpid))
			}
			return
		}
		if fc.Send(f) != nil {
			cancel()
			return
		}
		if f.Type == rexec.TExit {
			return
		}
	}
}

// waitNodeGone returns why once node num is no longer up, or "" when done
// closes or ctx ends first.
func (a *Agent) waitNodeGone(ctx context.Context, num int, done <-chan struct{}) string {
	for {
		ch := a.store.FSM.Changed()
		var st string
		a.store.FSM.Read(func(reg *state.Registry) {
			if n := reg.Nodes[num]; n != nil {
				st = n.State
			}
		})
		if st != api.StateUp {
			return "it is " + st
		}
		select {
		case <-done:
			return ""
		case <-ctx.Done():
			return ""
		case <-ch:
		}
	}
}

// startedHook passes frames on and notes the Started one.
type startedHook struct {
	rexec.Conn
	started func(rexec.Started)
}

func (h *startedHook) Send(f rexec.Frame) error {
	if f.Type == rexec.TStarted {
		if s, err := rexec.ParseStarted(f.Data); err == nil {
			h.started(s)
		}
	}
	return h.Conn.Send(f)
}

// watchExit calls gone when process pid exits (or ctx ends first).
func watchExit(ctx context.Context, pid int, gone func()) {
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		gone() // already gone
		return
	}
	f := os.NewFile(uintptr(fd), "pidfd")
	stop := context.AfterFunc(ctx, func() { f.Close() })
	defer stop()
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return
	}
	waited := false
	err = rc.Read(func(uintptr) bool {
		if !waited {
			waited = true
			return false // wait until readable: the process exited
		}
		return true
	})
	if err == nil {
		gone()
	}
	f.Close()
}
