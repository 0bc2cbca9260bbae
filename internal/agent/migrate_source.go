package agent

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ssi-cluster/ssi/internal/authz"
	"github.com/ssi-cluster/ssi/internal/checkpoint"
	"github.com/ssi-cluster/ssi/internal/migrate"
	"github.com/ssi-cluster/ssi/internal/migrate/commit"
	"github.com/ssi-cluster/ssi/internal/procstat"
	"github.com/ssi-cluster/ssi/internal/rexec"
	"github.com/ssi-cluster/ssi/internal/transport"
	"github.com/ssi-cluster/ssi/internal/vproc"
)

// The source side of a migration: checks, pre-copy while the process
// runs, the deputy's input held, the freeze, the image streamed to the
// target, then commit (the copy here is killed) or abort (it runs on).

const (
	holdTimeout  = 5 * time.Second  // for the home to hold a deputy's input
	answerTimout = 2 * time.Minute  // for the target to restore
	doneTimeout  = 10 * time.Second // for the target to say the process runs
	maxRounds    = 8                // pre-copy rounds after the first
	// smallDirty ends the pre-copy: what is left is sent frozen.
	smallDirty = 4 << 20
)

// targetRefuses is the error of a move whose target refused it at the
// start (acceptMove: the target's state or admission, not the process);
// isTargetRefusal tells such an error apart.
func targetRefuses(to int, why []byte) error {
	return status.Errorf(codes.FailedPrecondition, "node %d refuses it: %s", to, why)
}

func isTargetRefusal(err error, to int) bool {
	return status.Code(err) == codes.FailedPrecondition && strings.HasPrefix(status.Convert(err).Message(), fmt.Sprintf("node %d refuses it: ", to))
}

// moving is one process about to move: what was found about it here.
type moving struct {
	cpid    vproc.CPID
	pid     int
	sess    *runSession // nil: a process this agent did not start
	uid     int         // its real uid
	owner   authz.Owner // its uids
	stopped bool
	opts    checkpoint.Options
}

// moveOut migrates the local process cpid to node req.To for act.
func (a *Agent) moveOut(ctx context.Context, req *transport.MoveRequest, act actor) (*transport.MoveResponse, error) {
	t0 := time.Now()
	self := a.Identity().Number
	mv, err := a.movable(vproc.CPID(req.CPID), act)
	if err != nil {
		return nil, err
	}
	if req.To == self {
		return nil, status.Errorf(codes.AlreadyExists, "process %d already runs on node %d", mv.cpid, self)
	}
	target, err := a.upNode(req.To)
	if err != nil {
		return nil, err
	}
	cl, err := a.pool.Client(target.RPCAddr(), transport.Bulk)
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "cannot reach node %d: %v", req.To, err)
	}
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	stream, err := cl.Migrate(sctx)
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "cannot reach node %d: %v", req.To, err)
	}
	watched := make(chan struct{})
	defer close(watched)
	go func() { // a target that dies ends the stream at once
		if a.waitNodeGone(sctx, req.To, watched) != "" {
			cancel()
		}
	}()
	conn := migrate.WithFault(&msgConn{s: stream}, a.mig.fault.Next(), func() { stream.CloseSend() })
	begin := migrate.Begin{ID: rand.Uint64() | 1, CPID: int64(mv.cpid), Source: self, Pid: mv.pid, UID: mv.uid, Stopped: mv.stopped}
	if mv.sess != nil && !mv.sess.native() {
		begin.Run = mv.sess.spec
	}
	if req.Reason != "" {
		begin.Balance, begin.RSS = req.Reason, residentBytes(mv.pid)
	}
	if mv.sess != nil {
		vp, _ := vproc.Lookup("/proc", mv.pid)
		begin.Age = mv.sess.lifetime(time.Now(), max(0, vproc.Uptime("/proc")-vp.Start))
	}
	if err := conn.Send(migrate.JSON(migrate.KBegin, begin)); err != nil {
		return nil, status.Errorf(codes.Unavailable, "node %d: %v", req.To, err)
	}
	m, err := recvTimeout(conn, answerTimout, cancel)
	switch {
	case status.Code(err) == codes.PermissionDenied:
		return nil, err // the target's policy refuses it: its message says it all
	case err != nil:
		return nil, status.Errorf(codes.Unavailable, "node %d did not answer: %v", req.To, err)
	case m.Kind == migrate.KRefuse:
		return nil, targetRefuses(req.To, m.Data)
	case m.Kind != migrate.KAccept:
		return nil, status.Errorf(codes.Aborted, "node %d answered %s", req.To, m.Kind)
	}
	a.log.Info("migration starts", "cpid", showCPID(int64(mv.cpid)), "pid", mv.pid, "to", req.To, "id", begin.ID)
	resp, err := a.transfer(mv, conn, cancel, req.To, begin.ID)
	// The pre-copy held a copy of the process's memory: give it back now,
	// not at the next collection (which could wait for twice as much).
	defer debug.FreeOSMemory()
	if err != nil {
		a.log.Warn("migration abandoned; the process runs on here", "cpid", showCPID(int64(mv.cpid)), "to", req.To, "err", err)
		return nil, err
	}
	resp.From, resp.To, resp.Pid = self, req.To, mv.pid
	resp.TotalUS = time.Since(t0).Microseconds()
	a.log.Info("migration done", "cpid", showCPID(int64(mv.cpid)), "to", req.To, "new_pid", resp.NewPid,
		"freeze_ms", float64(resp.FreezeUS)/1000, "total_ms", float64(resp.TotalUS)/1000)
	return resp, nil
}

// movable finds the local process cpid and refuses, with the reasons,
// what cannot move: what the policy does not allow act (another user's;
// root's, or for root, from another node without allow_remote_root),
// pinned, on a terminal, with children, or what the checkpoint engine
// refuses.
func (a *Agent) movable(cpid vproc.CPID, act actor) (*moving, error) {
	return a.checkProcess(cpid, act, true, false)
}

// checkProcess is movable; a process that stays (move false: a dump) may
// be pinned or on a terminal, and one that runs on after the dump (runsOn:
// a checkpoint without kill) may hold file locks.
func (a *Agent) checkProcess(cpid vproc.CPID, act actor, move, runsOn bool) (*moving, error) {
	self := a.Identity().Number
	mv := &moving{cpid: cpid}
	pid, rec, isRun := a.track.runByCPID(int64(cpid))
	switch {
	case isRun:
		mv.pid = pid
		mv.sess = a.mig.session(int64(cpid))
		if mv.sess == nil {
			return nil, status.Errorf(codes.Unavailable, "process %d is still starting or ending", cpid)
		}
	case cpid.Node() == self:
		if r, ok := a.track.homeOf(cpid.Pid()); ok && r.Node != self {
			return nil, status.Errorf(codes.NotFound, "process %d runs on node %d, not here", cpid, r.Node)
		}
		mv.pid = cpid.Pid()
	default:
		return nil, status.Errorf(codes.NotFound, "process %d does not run on node %d", cpid, self)
	}
	owner, err := vproc.UIDs("/proc", mv.pid)
	if err != nil {
		return nil, status.Errorf(codes.NotFound, "no process %d on node %d", cpid, self)
	}
	mv.uid, mv.owner = owner[0], owner
	what := authz.Checkpoint
	if move {
		what = authz.MigrateOut
	}
	if err := a.decide(what, act, int64(cpid), owner, false); err != nil {
		return nil, err
	}
	if mv.pid == os.Getpid() || a.track.hidden()[mv.pid] {
		return nil, refusal(cpid, "it is part of ssi (the agent, a deputy or an exec helper)")
	}
	// Every reason is said at once, ours and the engine's, one line each
	// (a process with children is not refused for that alone).
	var why []string
	if move && isRun && rec.NoMigrate {
		why = append(why, fmt.Sprintf("it was started with --no-migrate: it is pinned to node %d", self))
	}
	if move && isRun && rec.Helper != 0 {
		why = append(why, "it runs on a terminal (ssi run from a terminal gives it a pty under the exec helper, its parent and session leader, which cannot move with it); run it with stdin or stdout redirected to move it")
	}
	if move {
		if w := a.parentWaits(mv.pid); w != "" {
			why = append(why, w)
		}
	}
	if kids := children(mv.pid); len(kids) > 0 {
		why = append(why, fmt.Sprintf("it has child processes (pid %s): a process moves alone, not with its children", strings.Join(kids, ", ")))
	}
	if mv.sess != nil && !mv.sess.native() {
		mv.opts.External = []int{0, 1, 2}
	}
	mv.opts.RunsOn = runsOn
	err = checkpoint.CheckWith(mv.pid, mv.opts)
	var re *checkpoint.RefusalError
	switch {
	case err != nil && !errors.As(err, &re) && len(why) == 0:
		return nil, migrateError(cpid, err)
	case re != nil:
		why = append(why, strings.Split(strings.TrimPrefix(checkpoint.FormatReasons(re.Reasons), "\n  "), "\n  ")...)
	}
	switch len(why) {
	case 0:
	case 1:
		return nil, refusal(cpid, "%s", why[0])
	default:
		return nil, refusal(cpid, "%s", "\n  "+strings.Join(why, "\n  "))
	}
	mv.stopped = procstat.ReadState(mv.pid) == 'T'
	return mv, nil
}

// children lists the child processes of pid (of every thread).
func children(pid int) []string {
	dir := "/proc/" + strconv.Itoa(pid) + "/task/"
	tasks, _ := os.ReadDir(dir)
	var out []string
	for _, t := range tasks {
		b, _ := os.ReadFile(dir + t.Name() + "/children")
		out = append(out, strings.Fields(string(b))...)
	}
	return out
}

// transfer pre-copies, freezes and sends the process, then commits or
// aborts. On error the process runs on here as before.
func (a *Agent) transfer(mv *moving, conn migrate.Conn, cancel func(), to int, id uint64) (*transport.MoveResponse, error) {
	resp := &transport.MoveResponse{}
	s := mv.sess
	run := s != nil && !s.native()
	if s != nil {
		s.p.HoldWait() // our tracer's stops are not the session's to collect
		defer s.p.ReleaseWait()
	}
	p, err := checkpoint.FreezeWith(mv.pid, mv.opts)
	if err != nil {
		return nil, migrateError(mv.cpid, err)
	}
	t0 := time.Now()
	ps := &preStream{conn: conn, cancel: cancel, to: to, pid: mv.pid, resp: resp}
	pc, err := p.PreCopyStream(ps.layout, ps.segment)
	resp.CopyUS = time.Since(t0).Microseconds()
	if err != nil {
		if pc != nil {
			pc.Close()
		}
		conn.Send(migrate.Text(migrate.KAbort, "%v", err))
		return nil, migrateError(mv.cpid, err)
	}
	defer pc.Close()
	err = ps.rounds(pc)
	resp.StreamUS = time.Since(t0).Microseconds()
	if err != nil {
		if why := targetReason(conn, cancel); why != "" {
			err = status.Errorf(codes.Aborted, "node %d could not take process %d: %s", to, mv.cpid, why)
		}
		conn.Send(migrate.Text(migrate.KAbort, "%v", err))
		return nil, err
	}
	if run {
		if err := s.holdInput(holdTimeout); err != nil {
			s.resumeInput()
			conn.Send(migrate.Text(migrate.KAbort, "%v", err))
			return nil, status.Errorf(codes.Aborted, "process %d: %v", mv.cpid, err)
		}
	}
	tf := time.Now()
	migrate.Frozen(conn)
	a.mig.holdSignals(int64(mv.cpid), mv.owner, to)
	fp, img, fst, err := pc.Finish()
	if err != nil {
		a.deliverHeld(mv.cpid, mv.pid, 0, a.mig.releaseSignals(int64(mv.cpid), 0))
		if run {
			s.resumeInput()
		}
		conn.Send(migrate.Text(migrate.KAbort, "%v", err))
		return nil, migrateError(mv.cpid, err)
	}
	resp.DumpUS = time.Since(tf).Microseconds()
	entry := &commit.Entry{ID: id, Role: commit.RoleSource, CPID: int64(mv.cpid), Pid: mv.pid,
		Source: a.Identity().Number, Target: to, Stopped: mv.stopped}
	var pending []byte
	var eof bool
	abort := func(why error) (*transport.MoveResponse, error) {
		a.mig.decide(id, to, false)
		conn.Send(migrate.Text(migrate.KAbort, "%v", why))
		cancel()
		fp.Resume()
		a.journal().Remove(entry) // after the resume: a crash between the two resumes it again, harmlessly
		a.deliverHeld(mv.cpid, mv.pid, 0, a.mig.releaseSignals(int64(mv.cpid), 0))
		if run {
			s.p.Undrain(pending)
			s.resumeInput()
		}
		return nil, why
	}
	// From here the target may come to hold a copy: this one is guarded
	// (if this agent dies, it stays stopped) and in the journal (so that
	// the agent that starts next resolves it).
	if err := a.guard(fp, entry); err != nil {
		return abort(status.Errorf(codes.Aborted, "process %d: %v", mv.cpid, err))
	}
	a.mig.step.At("source", "frozen")
	if run {
		if pending, eof, err = s.p.DrainStdin(); err != nil {
			return abort(status.Errorf(codes.Aborted, "process %d: its input: %v", mv.cpid, err))
		}
	}
	// The freeze is bounded: nothing sent or received for frozenBound
	// abandons the transfer (the source alone decides until the target
	// has restored the process).
	watch := watchStalls(conn, cancel)
	stalled := func(err error) error {
		if watch.stop() {
			return fmt.Errorf("nothing moved for %v while the process was frozen (%v)", frozenBound, err)
		}
		return err
	}
	ts := time.Now()
	end := migrate.End{StdinEOF: eof}
	if run {
		end.InputBase = s.inputBase()
	}
	if resp.Bytes, err = sendFrozen(watch, img, fst, pending, end); err != nil {
		if why := targetReason(conn, cancel); why != "" {
			return abort(status.Errorf(codes.Aborted, "node %d could not restore process %d: %s", to, mv.cpid, why))
		}
		return abort(status.Errorf(codes.Aborted, "sending process %d to node %d: %v", mv.cpid, to, stalled(err)))
	}
	a.mig.step.At("source", "sent")
	m, err := recvTimeout(watch, answerTimout, cancel)
	resp.SendUS = time.Since(ts).Microseconds()
	var rs migrate.Restored
	switch {
	case err != nil:
		return abort(status.Errorf(codes.Aborted, "node %d did not restore process %d: %v", to, mv.cpid, stalled(err)))
	case m.Kind == migrate.KFailed:
		watch.stop()
		return abort(status.Errorf(codes.Aborted, "node %d could not restore process %d: %s", to, mv.cpid, m.Data))
	case m.Kind != migrate.KRestored || m.Parse(&rs) != nil || rs.Pid < 1:
		watch.stop()
		return abort(status.Errorf(codes.Aborted, "node %d answered %s, not restored", to, m.Kind))
	}
	watch.stop()
	a.mig.step.At("source", "restored")
	// The target holds a copy: the outcome is the agreed state's now.
	src := commit.Source{}
	td := time.Now()
	act := a.resolve(context.Background(), src.Restored(), entry, &src, nil)
	resp.DecideUS = time.Since(td).Microseconds()
	if act != commit.KillCopy {
		return abort(status.Errorf(codes.Aborted, "node %d restored process %d but gave up waiting for the commit: the cluster recorded an abort", to, mv.cpid))
	}
	a.mig.step.At("source", "decided")
	resp.NewPid, resp.PidKept, resp.RestoreUS = rs.Pid, rs.PidKept, rs.RestoreMicros
	resp.Written, resp.WriteUS = rs.Written, rs.WriteMicros
	resp.SendUS -= rs.RestoreMicros
	// The point of no return: the copy here dies, the target's goes on.
	if s != nil {
		s.setMoved(&rexec.Moved{Node: to, Pid: rs.Pid})
		s.p.StopStdin()
	}
	// SIGKILL to a process stopped under ptrace: it never runs again. Its
	// end (freeing its memory) is awaited after the commit.
	a.mig.decide(id, to, true)
	unix.Kill(mv.pid, unix.SIGKILL)
	a.mig.step.At("source", "committed")
	if err := conn.Send(migrate.Msg{Kind: migrate.KCommit}); err != nil {
		a.log.Warn("migration: the commit did not reach the target, which will ask", "cpid", showCPID(int64(mv.cpid)), "err", err)
	} else if m, err := recvTimeout(conn, doneTimeout, cancel); err != nil || m.Kind != migrate.KDone {
		a.log.Warn("migration: the target did not confirm", "cpid", showCPID(int64(mv.cpid)), "err", err)
	}
	resp.FreezeUS = time.Since(tf).Microseconds()
	go a.deliverHeld(mv.cpid, mv.pid, to, a.mig.releaseSignals(int64(mv.cpid), to))
	fp.Kill()
	a.journal().Remove(entry)
	return resp, nil
}

// preStream sends a pre-copy to the target while the process runs: the
// layout for the target to stage (then its answer), round 0 as the
// engine reads it (zero pages of anonymous memory left out; the engine
// keeps no copy, and gRPC encrypts and sends on its own goroutine while
// the next part is read), then what each round finds written, until
// little is.
type preStream struct {
	conn   migrate.Conn
	cancel func()
	to     int
	pid    int
	resp   *transport.MoveResponse
	lay    []checkpoint.Mapping
}

func (ps *preStream) layout(lay []checkpoint.Mapping) error {
	ps.lay = lay
	if err := migrate.SendLayout(ps.conn, migrate.Layout{Mappings: lay, Pid: ps.pid}); err != nil {
		return status.Errorf(codes.Aborted, "node %d: %v", ps.to, err)
	}
	m, err := recvTimeout(ps.conn, answerTimout, ps.cancel)
	switch {
	case err != nil:
		return status.Errorf(codes.Aborted, "node %d did not answer: %v", ps.to, err)
	case m.Kind == migrate.KFailed:
		return status.Errorf(codes.Aborted, "node %d could not prepare the process: %s", ps.to, m.Data)
	case m.Kind != migrate.KStaged:
		return status.Errorf(codes.Aborted, "node %d answered %s, not staged", ps.to, m.Kind)
	}
	return nil
}

// filePrivate reports whether addr is in a private file mapping, whose
// zero pages are not zero at the target until written.
func (ps *preStream) filePrivate(addr uint64) bool {
	i := sort.Search(len(ps.lay), func(i int) bool { return ps.lay[i].End > addr })
	return i < len(ps.lay) && ps.lay[i].Start <= addr && ps.lay[i].Kind == checkpoint.KindFilePrivate
}

// segment sends a part of round 0; data is the engine's again once it
// returns (SendPages has encoded it).
func (ps *preStream) segment(start uint64, data []byte) error {
	n, err := migrate.SendPages(ps.conn, start, data, !ps.filePrivate(start))
	ps.resp.PreCopied += n
	if err != nil {
		return status.Errorf(codes.Aborted, "pre-copy to node %d: %v", ps.to, err)
	}
	return nil
}

// rounds sends what each round finds written, until little is.
func (ps *preStream) rounds(pc *checkpoint.PreCopier) error {
	for i := 0; i < maxRounds; i++ {
		n, err := pc.Round()
		if err != nil {
			return status.Errorf(codes.Aborted, "pre-copy: %v", err)
		}
		for _, r := range pc.Updated() {
			b, err := pc.Data(r)
			if err == nil {
				var k int64
				k, err = migrate.SendPages(ps.conn, r.Start, b, false)
				ps.resp.PreCopied += k
			}
			if err != nil {
				return status.Errorf(codes.Aborted, "pre-copy to node %d: %v", ps.to, err)
			}
		}
		ps.resp.Rounds = pc.Rounds
		if n < smallDirty {
			break
		}
	}
	// Wait until the target has written it all: what it still had to
	// write would lengthen the freeze.
	if err := ps.conn.Send(migrate.Msg{Kind: migrate.KSync}); err != nil {
		return status.Errorf(codes.Aborted, "pre-copy to node %d: %v", ps.to, err)
	}
	if m, err := recvTimeout(ps.conn, answerTimout, ps.cancel); err != nil || m.Kind != migrate.KSynced {
		return status.Errorf(codes.Aborted, "node %d did not write the pre-copy: %v %s", ps.to, err, m.Kind)
	}
	return nil
}

// sendFrozen sends what the frozen process adds to the pre-copy: the
// pages read at the freeze in mappings the target has staged (in the
// engine's order: a later range wins), then the image, which has no data
// for those mappings and the others' whole, the input the process had
// not read, and end (its sizes filled in here). It returns the bytes
// sent.
func sendFrozen(conn migrate.Conn, img *checkpoint.Image, fst *checkpoint.FinishStats, pending []byte, end migrate.End) (int64, error) {
	var sent int64
	for i, f := range fst.Fresh {
		n, err := migrate.SendPages(conn, f.Start, fst.FreshData[i], false)
		sent += n
		if err != nil {
			return sent, err
		}
	}
	w := migrate.NewImageWriter(conn)
	err := img.Encode(w)
	if err == nil {
		err = w.Close()
	}
	sent += w.N
	for rest := pending; err == nil && len(rest) > 0; {
		k := min(len(rest), migrate.Chunk)
		err = conn.Send(migrate.Msg{Kind: migrate.KStdin, Data: rest[:k]})
		rest = rest[k:]
	}
	if err == nil {
		end.ImageBytes, end.StdinBytes = w.N, int64(len(pending))
		err = conn.Send(migrate.JSON(migrate.KEnd, end))
	}
	return sent, err
}

// migrateError turns an engine error into a status: a refusal (found
// once the process was stopped) or an abandoned migration.
func migrateError(cpid vproc.CPID, err error) error {
	if _, ok := status.FromError(err); ok {
		return err // ours, already said
	}
	var re *checkpoint.RefusalError
	if errors.As(err, &re) {
		return refusal(cpid, "%s", checkpoint.FormatReasons(re.Reasons)) // one line per kind
	}
	return status.Errorf(codes.Aborted, "process %d: %v", cpid, err)
}

// holdInput asks the home to hold the deputy's input and waits until it
// has (THold): then no more input comes.
func (s *runSession) holdInput(d time.Duration) error {
	ch := make(chan struct{})
	s.mu.Lock()
	if s.conn == nil {
		s.mu.Unlock()
		return nil // no home attached: no input comes
	}
	s.hold = ch
	s.mu.Unlock()
	// Input stops being bounded, so that the stream reader, never blocked
	// on a full queue, reads the home's THold.
	s.p.HoldStdin()
	s.sendOwn(rexec.Frame{Type: rexec.TMoving})
	select {
	case <-ch:
		return nil
	case <-time.After(d):
		s.mu.Lock()
		s.hold = nil
		s.mu.Unlock()
		return fmt.Errorf("its home did not hold its input within %v", d)
	}
}

// resumeInput tells the home that the move was abandoned: input again.
func (s *runSession) resumeInput() {
	s.p.UnholdStdin()
	s.sendOwn(rexec.Frame{Type: rexec.TResume})
}

// setMoved marks the session moved: it ends with Moved, not Exit.
func (s *runSession) setMoved(m *rexec.Moved) {
	s.mu.Lock()
	s.moved = m
	s.mu.Unlock()
	if s.held != nil {
		s.held.Moved(m) // its last frame, instead of the kill's exit
	}
}

// msgConn is a migrate.Conn over a gRPC stream.
type msgConn struct{ s msgStream }

func (c *msgConn) Send(m migrate.Msg) error { return c.s.SendMsg(&m) }

func (c *msgConn) Recv() (migrate.Msg, error) {
	var m migrate.Msg
	err := c.s.RecvMsg(&m)
	return m, err
}

// targetReason is why the target failed, when a send broke because it
// gave up (it says why before it ends the stream); "" if it did not say.
func targetReason(conn migrate.Conn, cancel func()) string {
	for {
		m, err := recvTimeout(conn, 2*time.Second, cancel)
		if st, ok := status.FromError(err); err != nil && ok && st.Code() == codes.Aborted {
			return st.Message() // the target's stream status
		}
		if err != nil {
			return ""
		}
		if m.Kind == migrate.KFailed {
			return string(m.Data)
		}
	}
}

// recvTimeout receives one message, cancelling the stream after d.
func recvTimeout(c migrate.Conn, d time.Duration, cancel func()) (migrate.Msg, error) {
	t := time.AfterFunc(d, cancel)
	defer t.Stop()
	m, err := c.Recv()
	if err == nil && m.Kind == migrate.KFailed && len(m.Data) == 0 {
		m.Data = []byte("no reason given")
	}
	return m, err
}
