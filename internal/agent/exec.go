package agent

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ssi-cluster/ssi/internal/authz"
	"github.com/ssi-cluster/ssi/internal/hold"
	"github.com/ssi-cluster/ssi/internal/rexec"
	"github.com/ssi-cluster/ssi/internal/state"
	"github.com/ssi-cluster/ssi/internal/transport"
	"github.com/ssi-cluster/ssi/internal/vproc"
)

// The executing side of `ssi run`: a process started here for a deputy,
// its output streamed back, its stops and exit reported (session.go).

// outputGrace is how long output is still read after the process ended
// (a child it left behind may hold the pipe open).
const outputGrace = 2 * time.Second

// grpcConn is a rexec.Conn over a gRPC stream.
type grpcConn struct {
	s  msgStream
	mu sync.Mutex
}

func (c *grpcConn) Send(f rexec.Frame) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.s.SendMsg(&f)
}

func (c *grpcConn) Recv() (rexec.Frame, error) {
	var f rexec.Frame
	err := c.s.RecvMsg(&f)
	return f, err
}

// Exec runs a process here for a deputy whose home agent calls, or
// re-attaches that home to a process that moved here (Spec.Attach).
func (h *rpcHandler) Exec(s transport.Stream) error {
	a := h.agent()
	conn := &grpcConn{s: s}
	f, err := conn.Recv()
	if err != nil {
		return err
	}
	if f.Type != rexec.TStart {
		return status.Errorf(codes.InvalidArgument, "the first frame is %s, not start", f.Type)
	}
	spec, err := rexec.ParseSpec(f.Data)
	if err != nil {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	// The home is the caller, known from its certificate: a spec that
	// names another home, or a cluster pid of another node, is refused.
	peer, _ := transport.PeerFrom(s.Context())
	home, err := a.callerNode(s.Context(), 0)
	if err != nil {
		return err
	}
	if spec.Home != home || vproc.CPID(spec.CPID).Node() != home {
		return status.Errorf(codes.PermissionDenied, "node %q may run processes only with its own home and cluster pids", peer)
	}
	a.serveExec(s.Context(), spec, conn)
	return nil
}

// nodeNumber is the number of the node whose certificate names id, 0 if
// none.
func (a *Agent) nodeNumber(id string) int {
	num := 0
	a.store.FSM.Read(func(reg *state.Registry) {
		if n := reg.ByID(id); n != nil {
			num = n.Number
		}
	})
	return num
}

// serveExec runs spec here for its home, or re-attaches the home to the
// process it names (Spec.Attach), and serves the home's stream until the
// process ends or moves away.
func (a *Agent) serveExec(ctx context.Context, spec *rexec.Spec, conn rexec.Conn) {
	if spec.Attach != 0 {
		a.attach(ctx, spec, conn)
		return
	}
	a.execute(ctx, spec, conn)
}

// execute runs spec here and serves its deputy over conn until the
// process ends or moves away. ctx ending (the deputy or its node gone)
// hangs the process up, as a terminal hang-up would: SIGHUP, then its
// output is discarded.
func (a *Agent) execute(ctx context.Context, spec *rexec.Spec, conn rexec.Conn) {
	self := a.Identity().Number
	// spec.Home is the caller (checked by Exec) or this node.
	gids := append([]int{spec.GID}, spec.Groups...)
	if err := a.decideRun(authz.Exec, actor{uid: spec.UID, node: spec.Home}, spec.CPID, authz.OwnedBy(spec.UID), false, gids); err != nil {
		refuseRun(conn, rexec.ExitCannotRun, status.Convert(err).Message())
		return
	}
	if spec.Home != self && spec.UID != 0 {
		// Another node vouches for its user, not for privileges this
		// node does not give such a user: no raised priority, no limit
		// above this node's own.
		spec.Confine(hardLimit)
	}
	link, err := hold.Start(spec, a.holdDir(), a.holderBinary())
	var ee *rexec.ExecError
	if errors.As(err, &ee) {
		refuseRun(conn, ee.Code, ee.Msg) // what a shell would say
		return
	}
	if err != nil {
		a.log.Error("remote execution failed to start", "argv", spec.Argv, "err", err)
		refuseRun(conn, rexec.ExitCannotRun, fmt.Sprintf("node %d: %v", self, err))
		return
	}
	p, rec := link.Proc, heldRec(link)
	a.log.Info("remote execution", "cpid", showCPID(spec.CPID), "pid", p.Cmd, "home", spec.Home,
		"uid", spec.UID, "user", a.userName(spec.UID), "argv", spec.Argv, "dir", spec.Dir, "tty", spec.Tty)
	a.metrics.execs.Inc()
	s := a.newSession(spec, p, rec)
	s.held = link
	// The deputy's stream is attached before the process is waited for:
	// a process that ends at once (true) must not end with no one to
	// tell (its status was dropped and the deputy refused, exit 255).
	end := s.attachConn(ctx, conn, 0)
	s.start()
	<-end
}

// attach serves the home of a process that moved here, or whose stream
// to its home broke (spec.Received: what the home has of its stream).
func (a *Agent) attach(ctx context.Context, spec *rexec.Spec, conn rexec.Conn) {
	s := a.mig.session(spec.Attach)
	if s == nil || spec.ReceivedPid != 0 && s.pid() != spec.ReceivedPid {
		// It ended before its home came, or moved on (and maybe back
		// here) after the session the home counts in: that one's end
		// is kept.
		s = a.mig.takeEnded(spec.Attach, spec.Home)
	}
	// The same home, for the same user: a deputy that rejoins its home's
	// next agent is vouched for by its pid, which the owner of a process
	// whose deputy died might reuse.
	if s == nil || s.native() || s.rec.Home != spec.Home || s.spec.UID != spec.UID {
		refuseRun(conn, rexec.ExitLost, fmt.Sprintf("process %s does not run on node %d (it moved on or ended)",
			showCPID(spec.Attach), a.Identity().Number))
		return
	}
	a.log.Info("home re-attached to its process", "cpid", showCPID(spec.Attach), "pid", s.pid(), "home", spec.Home, "received", spec.Received)
	s.serve(ctx, conn, spec.Received)
}

// watchHome hangs up when ctx ends or the home node is no longer up.
func (a *Agent) watchHome(ctx context.Context, home int, done <-chan struct{}, hangup func(string)) {
	why := a.waitNodeGone(ctx, home, done)
	select {
	case <-done:
		return
	default:
	}
	if why != "" {
		hangup(fmt.Sprintf("home node %d %s", home, why))
	} else if ctx.Err() != nil {
		hangup("its deputy's stream ended")
	}
}

// logOutput writes a detached process's output to the agent's log, a
// record a line.
func (a *Agent) logOutput(spec *rexec.Spec, r io.Reader, t rexec.Type) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), 64<<10)
	for sc.Scan() {
		a.log.Info("output", "cpid", showCPID(spec.CPID), "stream", t.String(), "line", sc.Text())
	}
	io.Copy(io.Discard, r)
}

// refuseRun tells a deputy its process could not be run.
func refuseRun(conn rexec.Conn, code int, msg string) {
	conn.Send(rexec.Frame{Type: rexec.TError, Data: []byte(msg)})
	conn.Send(rexec.JSON(rexec.TExit, rexec.Status{Code: code}))
}

// hardLimit returns this node's (the agent's) hard limit of a resource.
func hardLimit(resource int) (uint64, bool) {
	var rl unix.Rlimit
	if err := unix.Getrlimit(resource, &rl); err != nil {
		return 0, false
	}
	return rl.Max, true
}
