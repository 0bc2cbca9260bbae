package agent

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ssi-cluster/ssi/internal/api"
	"github.com/ssi-cluster/ssi/internal/checkpoint"
	"github.com/ssi-cluster/ssi/internal/migrate"
	"github.com/ssi-cluster/ssi/internal/transport"
	"github.com/ssi-cluster/ssi/internal/vproc"
)

// `ssi checkpoint`: a process's image, dumped where it runs, streamed to
// the caller, who writes the file itself (as itself) and says when it is
// safe; with kill the process is killed then, else it runs on as soon as
// it is dumped. `ssi restore` is in restore.go.

// ackTimeout bounds the wait for the caller to say the image is safe.
const ackTimeout = 10 * time.Minute

func (a *Agent) handleCheckpoint(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	q := r.URL.Query()
	cpid, err := vproc.Parse(q.Get("cpid"))
	switch {
	case !c.Unix:
		writeErr(w, http.StatusForbidden, "checkpoint: accepted only on the agent's Unix socket")
		return
	case err != nil:
		writeErr(w, http.StatusBadRequest, "checkpoint: %v", err)
		return
	case r.Header.Get("Upgrade") != api.UpgradeCheckpoint:
		writeErr(w, http.StatusBadRequest, "checkpoint: the request must upgrade to %s", api.UpgradeCheckpoint)
		return
	}
	req := migrate.DumpRequest{CPID: int64(cpid), UID: c.UID, Kill: q.Get("kill") == "1"}
	p, err := a.find(r.Context(), cpid)
	if err != nil {
		writeErr(w, httpCode(err), "checkpoint %d: %s", cpid, status.Convert(err).Message())
		return
	}
	if c.UID != 0 && p.UID != c.UID && a.cfg.HideOtherProcs {
		writeErr(w, http.StatusNotFound, "checkpoint %d: no process %d (node %d, pid %d)", cpid, cpid, cpid.Node(), cpid.Pid())
		return
	}
	nc, brw, ok := upgrade(w, "checkpoint", api.UpgradeCheckpoint)
	if !ok {
		return
	}
	defer nc.Close()
	// A caller that stops reading the image ends the stream (with kill,
	// the process then runs on) rather than holding it in the agent.
	conn := migrate.NewStreamConn(stallWriteConn{nc, writeStallTimeout}, brw.Reader)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if p.Node == a.Identity().Number {
		if err := a.dumpLocal(&req, conn, a.local(c.UID)); err != nil {
			conn.Send(migrate.Text(migrate.KFailed, "%s", status.Convert(err).Message()))
		}
		return
	}
	a.dumpRemote(ctx, p.Node, &req, conn)
}

// dumpRemote relays a dump from node num to the caller.
func (a *Agent) dumpRemote(ctx context.Context, num int, req *migrate.DumpRequest, caller migrate.Conn) {
	fail := func(err error) { caller.Send(migrate.Text(migrate.KFailed, "%s", status.Convert(err).Message())) }
	n, err := a.upNode(num)
	if err != nil {
		fail(err)
		return
	}
	cl, err := a.pool.Client(n.RPCAddr(), transport.Bulk)
	if err != nil {
		fail(err)
		return
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := cl.Dump(ctx)
	if err != nil {
		fail(err)
		return
	}
	node := &msgConn{s: stream}
	if err := node.Send(migrate.JSON(migrate.KDumpRequest, req)); err != nil {
		fail(err)
		return
	}
	go func() { // the caller's answer
		for {
			m, err := caller.Recv()
			if err != nil {
				cancel()
				return
			}
			if node.Send(m) != nil {
				return
			}
		}
	}()
	for {
		m, err := node.Recv()
		if err != nil {
			if st, ok := status.FromError(err); ok && st.Code() != codes.OK && ctx.Err() == nil {
				fail(err)
			}
			return
		}
		if caller.Send(m) != nil {
			return
		}
	}
}

// Dump serves a dump of one of this node's processes to the calling node
// (known from its certificate), for the user the request names.
func (h *rpcHandler) Dump(st transport.Stream) error {
	from, err := h.agent().callerNode(st.Context(), 0)
	if err != nil {
		return err
	}
	conn := &msgConn{s: st}
	m, err := conn.Recv()
	if err != nil {
		return err
	}
	var req migrate.DumpRequest
	if m.Kind != migrate.KDumpRequest || m.Parse(&req) != nil || req.UID < 0 {
		return status.Errorf(codes.InvalidArgument, "the first message is %s, not a dump request", m.Kind)
	}
	// A refusal is the stream's status (PermissionDenied), which the
	// calling node passes on to its caller.
	return h.agent().dumpLocal(&req, conn, actor{uid: req.UID, node: from})
}

// dumpLocal dumps a local process for act and sends its image on conn;
// then, with req.Kill, kills it once the caller says the image is safe
// (Commit). It returns why it may not (nothing sent); later failures
// are sent (Failed).
func (a *Agent) dumpLocal(req *migrate.DumpRequest, conn migrate.Conn, act actor) error {
	cpid := vproc.CPID(req.CPID)
	fail := func(err error) { conn.Send(migrate.Text(migrate.KFailed, "%s", status.Convert(err).Message())) }
	mv, err := a.dumpable(cpid, act, req.Kill)
	if err != nil {
		return err
	}
	if mv.sess != nil {
		mv.sess.p.HoldWait()
		defer mv.sess.p.ReleaseWait()
	}
	p, err := checkpoint.FreezeWith(mv.pid, mv.opts)
	if err != nil {
		fail(migrateError(cpid, err))
		return nil
	}
	img, err := p.Dump() // on error it runs on
	if err != nil {
		fail(migrateError(cpid, err))
		return nil
	}
	if !req.Kill {
		p.Resume()
	}
	n, err := sendFrozen(conn, img, &checkpoint.FinishStats{}, nil, migrate.End{}) // the image and End
	a.log.Info("checkpoint", "cpid", showCPID(req.CPID), "pid", mv.pid, "bytes", n, "kill", req.Kill, "err", err)
	if !req.Kill {
		return nil
	}
	var m migrate.Msg
	var rerr error
	if err == nil {
		m, rerr = recvWithin(conn, ackTimeout)
	}
	if err != nil || rerr != nil || m.Kind != migrate.KCommit {
		a.log.Warn("checkpoint not saved by the caller; the process runs on", "cpid", showCPID(req.CPID), "err", fmt.Sprint(err, rerr))
		p.Resume()
		return nil
	}
	p.Kill()
	conn.Send(migrate.Msg{Kind: migrate.KDone})
	return nil
}

// dumpable is movable for a dump: the process stays where it is, so a
// pinned one or one on a terminal may be dumped; one that runs on after
// it (no kill) keeps its file locks, which are then no refusal reason
// (the image does not carry them). With kill, what a restore could not
// bring back refuses it before it is frozen: it is never killed for an
// image that cannot be restored.
func (a *Agent) dumpable(cpid vproc.CPID, act actor, kill bool) (*moving, error) {
	return a.checkProcess(cpid, act, false, !kill)
}

// recvWithin is Recv that gives up after d. The Recv goes on until its
// stream ends, which the caller's return brings (a gRPC handler's end,
// a closed socket).
func recvWithin(c migrate.Conn, d time.Duration) (migrate.Msg, error) {
	type got struct {
		m   migrate.Msg
		err error
	}
	ch := make(chan got, 1)
	go func() {
		m, err := c.Recv()
		ch <- got{m, err}
	}()
	select {
	case g := <-ch:
		return g.m, g.err
	case <-time.After(d):
		return migrate.Msg{}, fmt.Errorf("no answer within %v", d)
	}
}
