package agent

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc/status"

	"github.com/ssi-cluster/ssi/internal/api"
	"github.com/ssi-cluster/ssi/internal/procstat"
	"github.com/ssi-cluster/ssi/internal/relink"
	"github.com/ssi-cluster/ssi/internal/rexec"
	"github.com/ssi-cluster/ssi/internal/state"
	"github.com/ssi-cluster/ssi/internal/vproc"
)

// The home side of `ssi run`: a deputy (the ssi run process) connects to
// its agent's Unix socket and upgrades the request to a frame stream; the
// agent fills in who the caller is from the kernel, gives the process its
// cluster pid, and relays the stream to the executing node (over the Bulk
// channel, or a pipe when that is this node), following the process when
// it moves.

// downGrace is how long a migration whose stream broke waits for the
// other node to be declared down (detection takes 0.4-0.7 s) before it
// takes it for a broken connection instead. A run's stream waits longer
// (run_grace, relink.go).
const downGrace = 3 * time.Second

// streamBuffer is the socket buffer asked for on a deputy's stream.
const streamBuffer = 4 << 20

func (a *Agent) handleRun(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	switch {
	case !c.Unix:
		writeErr(w, http.StatusForbidden, "run: accepted only on the agent's Unix socket")
		return
	case c.PID <= 0:
		writeErr(w, http.StatusBadRequest, "run: the agent cannot see your process (another PID namespace); run ssi on the node itself")
		return
	case r.Header.Get("Upgrade") != api.UpgradeExec:
		writeErr(w, http.StatusBadRequest, "run: the request must upgrade to %s", api.UpgradeExec)
		return
	}
	conn, brw, ok := upgrade(w, "run", api.UpgradeExec)
	if !ok {
		return
	}
	defer conn.Close()
	// The start frame comes at once from a real deputy: a stream that
	// sends none holds a descriptor for nothing.
	conn.SetReadDeadline(time.Now().Add(startFrameTimeout))
	uc, _ := unixConnOf(conn).(*net.UnixConn)
	if uc != nil {
		uc.SetWriteBuffer(streamBuffer) // output waits in the socket, not in frames
	}
	// The start frame may come with the deputy's stdio (stdio.go): its
	// first bytes are read with recvmsg, which takes the files along.
	var files []*os.File
	in := io.Reader(brw.Reader)
	if uc != nil && brw.Reader.Buffered() == 0 {
		first, fs, err := rexec.ReadFiles(uc, 3)
		if err != nil {
			a.log.Info("a deputy's stream ended before its start frame", "uid", c.UID, "pid", c.PID, "err", err)
			return
		}
		files, in = fs, readerOf(first, brw.Reader)
	}
	// Once started, a run may last for hours: no deadline (the start
	// frame is read under it, then it is lifted).
	a.serveDeputy(rexec.NewStreamConn(conn, in), c, files, func() { conn.SetReadDeadline(time.Time{}) })
}

// upgrade takes the connection of a request over for the stream protocol
// proto (answered 101); ok false if it could not (answered, for what).
func upgrade(w http.ResponseWriter, what, proto string) (net.Conn, *bufio.ReadWriter, bool) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		writeErr(w, http.StatusInternalServerError, "%s: connection cannot be taken over", what)
		return nil, nil, false
	}
	conn, brw, err := hj.Hijack()
	if err != nil {
		return nil, nil, false
	}
	brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: " + proto + "\r\nConnection: Upgrade\r\n\r\n")
	if brw.Flush() != nil {
		conn.Close()
		return nil, nil, false
	}
	return conn, brw, true
}

// serveDeputy serves one run request of a deputy until its process ends;
// files are what came with the request (the deputy's stdio, Spec.Stdio).
// started is called once the start frame is in.
func (a *Agent) serveDeputy(fc *rexec.StreamConn, c Caller, files []*os.File, started func()) {
	f, err := fc.Recv()
	if err != nil {
		closeAll(files)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			a.log.Info("closed a deputy's stream: no start frame", "uid", c.UID, "pid", c.PID, "within", startFrameTimeout)
		}
		return
	}
	started()
	if f.Type != rexec.TStart {
		closeAll(files)
		refuseRun(fc, rexec.ExitCannotRun, fmt.Sprintf("the first frame is %s, not start", f.Type))
		return
	}
	spec, err := rexec.ParseSpec(f.Data)
	if err != nil {
		closeAll(files)
		refuseRun(fc, rexec.ExitCannotRun, err.Error())
		return
	}
	stdio, err := openPassed(spec.Stdio, files)
	if err != nil {
		refuseRun(fc, rexec.ExitCannotRun, "the deputy's stdio: "+err.Error())
		return
	}
	defer stdio.close()
	origin, err := a.fillCaller(spec, c)
	if err != nil {
		refuseRun(fc, rexec.ExitCannotRun, err.Error())
		return
	}
	var target *state.NodeRec
	if spec.Attach != 0 {
		target, err = a.rejoinNode(spec)
	} else {
		target, err = a.chooseNode(spec)
	}
	if err != nil {
		refuseRun(fc, rexec.ExitCannotRun, err.Error())
		return
	}
	a.metrics.deputies.Inc()
	spec.GraceMS = a.runGrace().Milliseconds() // the node keeps the process this long for us
	rec := &homeRec{CPID: spec.CPID, Node: target.Number, Deputy: true}
	a.track.setHome(origin, rec)
	// Once the deputy is gone: forgotten if the process ended, else
	// tracked on (hung up, it may live on).
	defer a.track.releaseHome(origin, rec)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// A write to a passed pipe whose reader does not read waits in the
	// poller: closing the file when the run ends (the deputy died, say)
	// wakes it.
	defer context.AfterFunc(ctx, stdio.close)()
	// The deputy's death (even by SIGKILL) hangs its process up.
	go watchExit(ctx, c.PID, cancel)
	a.relay(ctx, cancel, spec, target.Number, fc, rec, c.PID, stdio)
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
	num := spec.Node
	if spec.Fast {
		if num = rexec.Best(a.candidates(a.registry())); num == 0 {
			return nil, errors.New("no node is up")
		}
	}
	if num == 0 {
		num = a.Identity().Number
	}
	n, err := a.upNode(num)
	if err != nil {
		return nil, errors.New(status.Convert(err).Message())
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

// relay carries frames between the deputy and the node that runs its
// process (this one included) until the process ends, the deputy goes or
// the process is lost; it follows the process when it moves (see rexec's
// doc: Moving, Hold, Resume, Moved), and re-attaches to it when its
// stream breaks or its node is committed down and comes back within the
// grace (relink.go).
func (a *Agent) relay(ctx context.Context, cancel context.CancelFunc, spec *rexec.Spec, node int, fc rexec.Conn, rec *homeRec, deputy int, stdio *passedStdio) {
	cpid := showCPID(spec.CPID)
	lost := func(node int, msg string) {
		a.track.endHome(rec)
		a.track.noteEnded(spec.CPID, endedText(time.Now(), rexec.Status{Lost: true}))
		a.metrics.lost.Inc()
		a.log.Warn("run lost", "cpid", cpid, "node", node, "why", msg)
		fc.Send(rexec.Frame{Type: rexec.TError, Data: []byte(msg)})
		fc.Send(rexec.JSON(rexec.TExit, rexec.Status{Code: rexec.ExitLost, Lost: true}))
	}
	// A link outlives ctx (the deputy's life) by a moment: a deputy that
	// goes has its process hung up (Hangup), which must reach the node
	// before the stream is cancelled (hangupWait).
	lctx := context.WithoutCancel(ctx)
	var link *runLink
	var err error
	lk := relink.New(a.runGrace())
	var rejoined *rexec.Started // a deputy whose agent before this one went (deputy_rejoin.go)
	if spec.Attach != 0 {
		var st rexec.Started
		lk.Broken(time.Now(), "its home agent restarted")
		link, st, err = a.awaitReattach(ctx, lctx, lk, spec, node, sessionAt{spec.Received, spec.ReceivedPid})
		rejoined = &st
	} else {
		link, err = a.dialRun(lctx, node, spec)
	}
	if err != nil {
		lost(node, err.Error())
		return
	}
	var cur atomic.Pointer[runLink]
	cur.Store(link)
	defer func() { cur.Load().stop() }()
	in := relink.NewInput(link)
	pid := 0 // the process's pid on its node, once known
	if rejoined != nil {
		pid = rejoined.Pid
		a.resumeInput(fc, in, spec, node, *rejoined) // before any input is passed
	}
	// tellInput tells an exact deputy what the node has of its input
	// (it keeps the rest).
	tellInput := func() {
		if spec.Exact {
			frames, base := in.Has()
			fc.Send(rexec.JSON(rexec.TInputHas, rexec.InputHas{Frames: frames, Base: base, Node: node, Pid: pid}))
		}
	}
	defer in.Close()
	defer context.AfterFunc(ctx, func() {
		if a.stopping.Load() {
			return // the deputy re-attaches through the next agent
		}
		in.Hangup()
		time.AfterFunc(hangupWait, func() { cur.Load().stop() })
	})()
	go func() {
		for {
			f, err := fc.Recv()
			if err != nil {
				cancel() // the deputy is gone: its process is hung up
				return
			}
			if rexec.Counted(f.Type) && in.Pass(f) != nil {
				return
			}
		}
	}()
	var got relink.Acks // the session's counted frames received
	// The output bytes handed on, counted on this deputy's stream; tell
	// says them to the deputy with n, the session's frames handled, and
	// the session (rexec.Delivered; deputies of versions before get it
	// without the session, or TAck, n only).
	var outBytes, errBytes int64
	tell := func(n int64) {
		d := rexec.Delivered{Frames: n, Stdout: outBytes, Stderr: errBytes, Node: int64(node), Pid: int64(pid)}
		switch {
		case spec.SessionDelivered:
			fc.Send(d.Frame())
		case spec.Exact:
			fc.Send(d.FrameV1())
		default:
			fc.Send(rexec.AckFrame(n))
		}
	}
	started, broken := false, false
	if rejoined != nil {
		got.Resume(spec.Received)
		a.track.runsAt(rec, node, rejoined.Pid)
		a.log.Info("deputy re-attached to its process", "cpid", cpid, "node", node, "pid", rejoined.Pid, "received", spec.Received)
		started = true
		if stdio != nil && stdio.in != nil {
			go stdio.pumpStdin(in)
		}
	}
	var attachedAt time.Time // the last re-attachment
	for {
		f, err := link.Recv()
		if err != nil {
			if ctx.Err() != nil {
				return // the deputy is gone
			}
			why := link.why(err)
			lk.Broken(time.Now(), why)
			in.Suspend()
			link.stop()
			a.log.Warn("run suspected: waiting for its node to come back", "cpid", cpid, "node", node, "why", why, "grace", a.runGrace())
			// A stream that breaks again right after a re-attachment
			// (its node drops a home it holds down) is not retried at
			// once: that would loop as fast as the two agents answer.
			if since := time.Since(attachedAt); since < reattachEvery {
				select {
				case <-ctx.Done():
					return
				case <-time.After(reattachEvery - since):
				}
			}
			nl, st, err := a.awaitReattach(ctx, lctx, lk, spec, node, sessionAt{got.Received(), pid})
			if err != nil {
				if ctx.Err() == nil {
					lost(node, fmt.Sprintf("%s; process %s lost", err, cpid))
				}
				return
			}
			link = nl
			cur.Store(link)
			if err := in.Resume(link, st.Received, st.Ended); err != nil {
				lost(node, fmt.Sprintf("re-attached to process %s on node %d, but its input cannot be completed: %v", cpid, node, err))
				return
			}
			attachedAt = time.Now()
			a.track.runsAt(rec, node, st.Pid)
			pid = st.Pid
			a.metrics.reattached.Inc()
			a.log.Info("run re-attached to its process", "cpid", cpid, "node", node, "pid", st.Pid, "suspected", why)
			continue
		}
		// A counted frame is acknowledged once handled (deliver), and
		// the deputy told first: a next agent, after this one went,
		// resumes from what the deputy has (rejoin.go).
		deliver := func() {}
		if rexec.Counted(f.Type) {
			last := f.Type == rexec.TExit || f.Type == rexec.TMoved
			n, now := got.Got(len(f.Data), last)
			switch f.Type {
			case rexec.TStdout:
				outBytes += int64(len(f.Data))
			case rexec.TStderr:
				errBytes += int64(len(f.Data))
			}
			l := link
			deliver = func() {
				tell(n)
				if now {
					l.ack(n)
				}
			}
		}
		switch f.Type {
		case rexec.TAck:
			in.Ack(rexec.Ack(f))
			tellInput()
		case rexec.TMoving:
			in.Hold()
		case rexec.TResume:
			in.Release(link)
		case rexec.TMoved:
			m, err := rexec.ParseMoved(f.Data)
			if err != nil {
				lost(node, err.Error())
				return
			}
			from := node
			a.mig.step.At("home", "moved")
			// The deputy learns of the new session first: an agent after
			// this one resumes it there (until then, it finds the end of
			// this one kept on the node the process left).
			node, pid = m.Node, m.Pid
			got.Reset() // the new node's session numbers from 1
			tell(0)
			for err == nil { // the old stream ends after Moved
				_, err = link.Recv()
			}
			link.stop()
			attach := *spec
			// The new session, from its first frame (a rejoined
			// deputy's spec counted in the one before).
			attach.Attach, attach.Received, attach.ReceivedPid = spec.CPID, 0, 0
			if link, err = a.dialRun(lctx, m.Node, &attach); err != nil {
				lost(m.Node, fmt.Sprintf("process %s moved to node %d, which cannot be reached: %v", cpid, m.Node, err))
				return
			}
			cur.Store(link)
			a.track.runsAt(rec, m.Node, m.Pid)
			a.log.Info("run followed to its new node", "cpid", cpid, "from", from, "node", m.Node, "pid", m.Pid)
			in.Moved(link)
			tellInput() // what went with the process: a new session's base
			deliver = func() {}
		case rexec.TStarted:
			s, err := rexec.ParseStarted(f.Data)
			if err == nil {
				a.track.runsAt(rec, node, s.Pid)
				pid = s.Pid
			}
			if started {
				continue // a re-attachment: the deputy knows its process
			}
			started = true
			if err == nil && spec.Exact {
				s.Exact = true // this agent speaks Delivered and InputHas
				f.Release()
				f = rexec.JSON(rexec.TStarted, s)
			}
			if fc.Send(f) != nil {
				cancel()
				return
			}
			if stdio != nil && stdio.in != nil {
				go stdio.pumpStdin(in)
			}
		case rexec.TStdout, rexec.TStderr:
			if w := stdio.output(f.Type); w != nil {
				a.passedOutput(ctx, w, f, spec.CPID, spec.UID, &broken)
				f.Release()
				deliver()
				continue
			}
			err := fc.Send(f)
			f.Release()
			if err != nil {
				cancel()
				return
			}
		case rexec.TContinued:
			continueIfStopped(deputy) // ssi continue: the deputy stopped with its process
			fallthrough
		default:
			if f.Type == rexec.TExit {
				a.track.endHome(rec)
				if st, err := rexec.ParseStatus(f.Data); err == nil {
					a.track.noteEnded(spec.CPID, endedText(time.Now(), st))
				}
			}
			err := fc.Send(f)
			f.Release()
			if err != nil {
				cancel()
				return
			}
			if f.Type == rexec.TExit {
				deliver()
				return
			}
		}
		deliver()
	}
}

// continueIfStopped continues the deputy pid if it is stopped: it
// stopped itself with its process (job control) and the process was
// continued from elsewhere (ssi continue).
func continueIfStopped(pid int) {
	if procstat.ReadState(pid) == 'T' {
		unix.Kill(pid, unix.SIGCONT)
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
