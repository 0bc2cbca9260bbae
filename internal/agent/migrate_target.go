package agent

import (
	"context"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ssi-cluster/ssi/internal/authz"
	"github.com/ssi-cluster/ssi/internal/checkpoint"
	"github.com/ssi-cluster/ssi/internal/migrate"
	"github.com/ssi-cluster/ssi/internal/migrate/commit"
	"github.com/ssi-cluster/ssi/internal/rexec"
	"github.com/ssi-cluster/ssi/internal/transport"
	"github.com/ssi-cluster/ssi/internal/vproc"
)

// The target side of a migration: accept or refuse, receive the image
// and the pending input, restore the process held, then let it run when
// the source commits (or kill it when it aborts).

// attachWait is how long a process restored here for a deputy waits for
// its home to re-attach before it is hung up.
const attachWait = 30 * time.Second

// Migrate receives a process from its source, the node that calls.
func (h *rpcHandler) Migrate(st transport.Stream) error {
	a := h.agent()
	conn := &msgConn{s: st}
	m, err := conn.Recv()
	if err != nil {
		return err
	}
	var b migrate.Begin
	if m.Kind != migrate.KBegin || m.Parse(&b) != nil {
		return status.Errorf(codes.InvalidArgument, "the first message is %s, not begin", m.Kind)
	}
	// The source is the caller, known from its certificate: a Begin
	// that names another node is refused.
	peer, _ := transport.PeerFrom(st.Context())
	src, err := a.callerNode(st.Context(), 0)
	if err != nil {
		return err
	}
	if src != b.Source {
		return status.Errorf(codes.PermissionDenied, "node %q may send only its own processes (it says it is node %d)", peer, b.Source)
	}
	if why := a.acceptMove(&b); why != "" {
		a.log.Warn("refused a migration", "cpid", showCPID(b.CPID), "from", b.Source, "why", why)
		return conn.Send(migrate.Text(migrate.KRefuse, "%s", why))
	}
	// The policy, on what the source says of the process's owner first
	// (the image's own credentials are checked once they come, in
	// receiveMove): a refusal is the stream's status, PermissionDenied.
	if err := a.decideMoveIn(&b, authz.OwnedBy(b.UID), nil); err != nil {
		return err
	}
	if err := conn.Send(migrate.Msg{Kind: migrate.KAccept}); err != nil {
		return err
	}
	if why := a.receiveMove(st.Context(), conn, &b); why != "" {
		// Said in Failed already; said again as the stream's status, for
		// a source whose sending broke before it read it.
		return status.Error(codes.Aborted, why)
	}
	return nil
}

// acceptMove says why this node does not take the process of b ("" if
// it does).
func (a *Agent) acceptMove(b *migrate.Begin) string {
	self := a.Identity().Number
	cpid := vproc.CPID(b.CPID)
	home := cpid.Node()
	switch {
	case a.fenceReason() != "":
		return fmt.Sprintf("node %d is not a member now (%s)", self, a.fenceReason())
	case home < 1 || cpid.Pid() < 1 || b.Pid < 1 || b.UID < 0:
		return fmt.Sprintf("%d is not a cluster pid", b.CPID)
	case b.Run != nil && (b.Run.Validate() != nil || b.Run.CPID != b.CPID || b.Run.Home != home || b.Run.Tty):
		return "the run's description is not valid"
	case a.mig.session(b.CPID) != nil:
		return fmt.Sprintf("process %d already runs on node %d", b.CPID, self)
	}
	return a.acceptBalanced(b.Balance, b.RSS)
}

// decideMoveIn applies the policy to the process of b, owned by owner,
// coming from b.Source (the caller, from its certificate) for b.UID. A
// process of this node's own (its cluster pid's node) that this node's
// records say is away on b.Source comes home, whoever owns it.
func (a *Agent) decideMoveIn(b *migrate.Begin, owner authz.Owner, gids []int) error {
	cpid := vproc.CPID(b.CPID)
	home := false
	if cpid.Node() == a.Identity().Number {
		r, ok := a.track.homeOf(cpid.Pid())
		home = ok && r.CPID == b.CPID && r.Node == b.Source
		home = home || a.mig.sentTo(b.CPID) == b.Source
	}
	return a.decideRun(authz.MigrateIn, actor{uid: b.UID, node: b.Source}, b.CPID, owner, home, gids)
}

// imageGIDs are the gids an image's process is restored with (real,
// effective, saved, supplementary); nil for an image without
// credentials (its owner is root: imageOwner).
func imageGIDs(img *checkpoint.Image) []int {
	if img.Creds == nil {
		return nil
	}
	var out []int
	for _, g := range append(img.Creds.Gid[:], img.Creds.Groups...) {
		out = append(out, int(min(g, 1<<31-1)))
	}
	return out
}

// imageOwner are the uids an image's process is restored with: the
// image's, or (an image without credentials keeps those of the agent's
// stager) root's.
func imageOwner(img *checkpoint.Image) authz.Owner {
	if img.Creds == nil {
		return authz.OwnedBy(0)
	}
	var o authz.Owner
	for i, id := range img.Creds.Uid {
		o[i] = int(min(id, 1<<31-1))
	}
	return o
}

// stdioPipes are the new pipes of a run's process: its ends (files for
// the restore) and the agent's.
type stdioPipes struct {
	child            map[int]*os.File
	in               *os.File // the agent's writing end of stdin
	inR              int      // a copy of stdin's reading end
	outR, errR       *os.File
	closeChild, drop func()
}

func newStdioPipes(mask rexec.StdioMask) (*stdioPipes, error) {
	fs, err := rexec.StdioPipes()
	if err != nil {
		return nil, err
	}
	p := &stdioPipes{child: map[int]*os.File{0: fs[0][0], 1: fs[1][1], 2: fs[2][1]},
		in: fs[0][1], outR: fs[1][0], errR: fs[2][0]}
	if mask&rexec.StderrToStdout != 0 { // as it was started (rexec.startPlain)
		p.child[2] = fs[1][1]
		fs[2][1].Close()
	}
	p.closeChild = func() {
		for _, f := range p.child {
			f.Close()
		}
	}
	p.drop = func() {
		p.closeChild()
		p.in.Close()
		p.outR.Close()
		p.errR.Close()
		if p.inR >= 0 {
			unix.Close(p.inR)
		}
	}
	// Not Fd(): that would make the process's stdin blocking.
	rc, err := fs[0][0].SyscallConn()
	if err == nil {
		rc.Control(func(fd uintptr) { p.inR, err = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 3) })
	}
	if err != nil {
		p.inR = -1
		p.drop()
		return nil, err
	}
	return p, nil
}

// receiveMove stages the process from its layout, writes its memory as
// it comes while it still runs at the source, completes it from the
// image sent once it is frozen (and its pending input), and waits, the
// process held, for the source's decision.
func (a *Agent) receiveMove(ctx context.Context, conn migrate.Conn, b *migrate.Begin) (failed string) {
	cpid := showCPID(b.CPID)
	fail := func(format string, args ...any) {
		failed = fmt.Sprintf(format, args...)
		a.log.Warn("migration in failed", "cpid", cpid, "from", b.Source, "why", failed)
		conn.Send(migrate.Text(migrate.KFailed, "%s", failed))
	}
	lay, err := migrate.RecvLayout(conn)
	if err != nil {
		fail("no layout: %v", err)
		return
	}
	var pipes *stdioPipes
	opts := checkpoint.RestoreOptions{Hold: true, NewGroup: true}
	if b.Run != nil {
		if pipes, err = newStdioPipes(b.Run.Stdio); err != nil {
			fail("node %d: new pipes: %v", a.Identity().Number, err)
			return
		}
		opts.Files = pipes.child
	}
	drop := func() {
		if pipes != nil {
			pipes.drop()
		}
	}
	st, err := checkpoint.Stage(lay.Pid, lay.Mappings, a.shim, opts)
	if err != nil {
		drop()
		fail("node %d cannot stage it: %v", a.Identity().Number, err)
		return
	}
	if err := st.FillErr(); err != nil {
		a.log.Warn("migration: pages are written without a userfaultfd, more slowly", "err", err)
	}
	if err := conn.Send(migrate.Msg{Kind: migrate.KStaged}); err != nil {
		st.Abort()
		drop()
		return
	}
	var wst writeStats
	img, stdin, end, err := a.receiveImage(conn, st, &wst)
	if err != nil {
		st.Abort()
		drop()
		fail("%v", err)
		return
	}
	a.mig.step.At("target", "image")
	// The image's credentials are what the process gets: the policy
	// decides on them, not on what the source said (Begin.UID).
	if err := a.decideMoveIn(b, imageOwner(img), imageGIDs(img)); err != nil {
		st.Abort()
		drop()
		fail("%s", status.Convert(err).Message())
		return
	}
	// The restore opens the process's files as root: a process of a user
	// who is not root gets only what that user may open here, as for ssi
	// restore (its groups were checked above).
	if o := imageOwner(img); !o.Root() {
		if err := imageAllowed(img, Caller{UID: o[0], GID: int(img.Creds.Gid[0])}, rexec.Caller{Groups: imageGIDs(img)}); err != nil {
			st.Abort()
			drop()
			a.log.Warn("refused", "action", authz.MigrateIn.String(), "cpid", b.CPID, "uid", o[0], "from", b.Source, "why", err)
			fail("node %d refuses migration in of process %d for uid %d from node %d: %v", a.Identity().Number, b.CPID, o[0], b.Source, err)
			return
		}
	}
	t0 := time.Now()
	res, err := st.Finish(img, opts)
	if pipes != nil {
		pipes.closeChild()
	}
	if err != nil {
		drop()
		fail("node %d could not restore it: %v", a.Identity().Number, err)
		return
	}
	if b.Stopped {
		unix.Kill(res.Pid, unix.SIGSTOP) // it stops as it is let go
	}
	// The copy here is guarded (if this agent dies, it stays stopped) and
	// in the journal before the source hears of it.
	entry := &commit.Entry{ID: b.ID, Role: commit.RoleTarget, CPID: b.CPID, Pid: res.Pid,
		Source: b.Source, Target: a.Identity().Number, Stopped: b.Stopped}
	if err := a.guard(res, entry); err != nil {
		res.Kill()
		drop()
		a.journal().Remove(entry)
		fail("node %d cannot hold the restored copy: %v", a.Identity().Number, err)
		return
	}
	rs := migrate.Restored{Pid: res.Pid, PidKept: res.PidKept, RestoreMicros: time.Since(t0).Microseconds(),
		Written: wst.n, WriteMicros: wst.d.Microseconds()}
	if res.PidErr != nil {
		rs.PidErr = res.PidErr.Error()
	}
	if err := conn.Send(migrate.JSON(migrate.KRestored, rs)); err != nil {
		a.log.Warn("migration in: the source is gone before the decision", "cpid", cpid, "err", err)
	}
	// The copy here runs only on a commit: the source's word, or the
	// agreed state's (commit.Target).
	a.mig.step.At("target", "held")
	tgt := commit.Target{}
	tgt.Restored()
	var act commit.Action
	m, err := recvWithin(conn, decisionWait)
	switch {
	case err == nil && m.Kind == migrate.KCommit:
		act = tgt.Told(commit.Commit)
	case err == nil && m.Kind == migrate.KAbort:
		act = tgt.Told(commit.Abort)
	default:
		a.log.Warn("migration in: no decision from the source; asking", "cpid", cpid, "from", b.Source, "err", err, "kind", m.Kind)
		act = tgt.Lost()
	}
	if act = a.resolve(context.Background(), act, entry, nil, &tgt); act != commit.ReleaseCopy {
		res.Kill()
		drop()
		a.journal().Remove(entry)
		a.log.Warn("migration in abandoned by the source; restored copy killed", "cpid", cpid, "from", b.Source)
		return
	}
	a.mig.step.At("target", "commit")
	err = res.Release()
	a.journal().Remove(entry)
	if err != nil {
		drop()
		a.log.Error("migration in: the restored process could not be let go", "cpid", cpid, "err", err)
		return
	}
	a.adoptMoved(b, res.Pid, pipes, stdin, end)
	a.log.Info("migration in done", "cpid", cpid, "from", b.Source, "pid", res.Pid, "pid_kept", res.PidKept)
	conn.Send(migrate.Msg{Kind: migrate.KDone})
	return ""
}

// writeStats are the pages written into a staged process.
type writeStats struct {
	n int64
	d time.Duration
}

// receiveImage writes the pages that come into the staged process, then
// reads the image, the pending input and End.
func (a *Agent) receiveImage(conn migrate.Conn, st *checkpoint.Staged, ws *writeStats) (*checkpoint.Image, []byte, migrate.End, error) {
	var end migrate.End
	// Pages are written by a goroutine of their own, so that receiving
	// (decryption) and writing (page faults in the staged process) overlap.
	type pages struct {
		addr   uint64
		data   []byte
		msg    migrate.Msg   // whose buffer data lies in: released once written
		synced chan struct{} // a Sync: closed once what came before is written
	}
	work := make(chan pages, 16)
	werrc := make(chan error, 1)
	go func() {
		var werr error
		for p := range work {
			if p.synced != nil {
				close(p.synced)
				continue
			}
			if werr != nil {
				p.msg.Release()
				continue
			}
			t0 := time.Now()
			if err := st.Write(p.addr, p.data); err != nil {
				werr = fmt.Errorf("writing pages at %#x: %v", p.addr, err)
			}
			ws.d += time.Since(t0)
			ws.n += int64(len(p.data))
			p.msg.Release()
		}
		werrc <- werr
	}()
	var first migrate.Msg
	var rerr error
	for {
		m, err := conn.Recv()
		if err != nil {
			rerr = fmt.Errorf("the stream ended in the pre-copy: %v", err)
			break
		}
		if m.Kind == migrate.KSync {
			// The source freezes next: no backlog of pages to write
			// must be left for the freeze.
			synced := make(chan struct{})
			work <- pages{synced: synced}
			<-synced
			if err := conn.Send(migrate.Msg{Kind: migrate.KSynced}); err != nil {
				rerr = err
				break
			}
			continue
		}
		if m.Kind != migrate.KPages {
			first = m
			break
		}
		addr, data, err := migrate.ParsePages(m)
		if err != nil {
			rerr = err
			break
		}
		work <- pages{addr: addr, data: data, msg: m}
	}
	close(work)
	werr := <-werrc
	if rerr != nil {
		return nil, nil, end, rerr
	}
	if first.Kind != migrate.KImage && first.Kind != migrate.KZeros {
		return nil, nil, end, fmt.Errorf("%s in the pre-copy, not pages or the image", first.Kind)
	}
	r := migrate.NewImageReader(&migrate.PrefixConn{Conn: conn, First: &first})
	img, err := checkpoint.Decode(r)
	if err != nil {
		return nil, nil, end, fmt.Errorf("the image is damaged: %v", err)
	}
	var stdin []byte
	for {
		m, err := r.Next()
		if err != nil {
			return nil, nil, end, fmt.Errorf("the stream ended after the image: %v", err)
		}
		if m.Kind == migrate.KStdin {
			stdin = append(stdin, m.Data...)
			continue
		}
		if m.Kind != migrate.KEnd || m.Parse(&end) != nil {
			return nil, nil, end, fmt.Errorf("%s after the image, not end", m.Kind)
		}
		break
	}
	if end.ImageBytes != r.N || end.StdinBytes != int64(len(stdin)) {
		return nil, nil, end, fmt.Errorf("the stream was cut: %d image bytes and %d of input received, %d and %d sent", r.N, len(stdin), end.ImageBytes, end.StdinBytes)
	}
	return img, stdin, end, werr
}

// adoptMoved makes the restored process a session of this agent: a run
// that waits for its home to re-attach, or a native process whose origin
// is told where it is.
func (a *Agent) adoptMoved(b *migrate.Begin, pid int, pipes *stdioPipes, stdin []byte, end migrate.End) {
	cpid := vproc.CPID(b.CPID)
	if b.Run == nil {
		p, _ := rexec.Adopt(pid, nil, -1, nil, nil)
		a.newSession(nil, p, &runRec{CPID: b.CPID, Home: cpid.Node()}).start()
		go a.tellOrigin(cpid, a.Identity().Number, pid)
		return
	}
	spec := b.Run
	p, _ := rexec.Adopt(pid, pipes.in, pipes.inR, pipes.outR, pipes.errR)
	if len(stdin) > 0 {
		p.WriteStdin(stdin)
	}
	if end.StdinEOF {
		p.CloseStdin()
	}
	s := a.newSession(spec, p, &runRec{CPID: spec.CPID, PPid: spec.PPid, PGid: spec.PGid, Home: spec.Home})
	s.inBase, s.arrived = end.InputBase, time.Now()
	s.born = s.arrived.Add(-time.Duration(b.Age * float64(time.Second)))
	if b.Stopped {
		s.skipStops = 1
	}
	s.awaitHome = true
	s.start()
	go s.expectAttach(attachWait)
}
