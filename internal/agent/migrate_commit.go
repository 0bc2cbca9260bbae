package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ssi-cluster/ssi/internal/migrate"
	"github.com/ssi-cluster/ssi/internal/migrate/commit"
	"github.com/ssi-cluster/ssi/internal/state"
	"github.com/ssi-cluster/ssi/internal/transport"
	"github.com/ssi-cluster/ssi/internal/vproc"
)

// The commit protocol's I/O (package migrate/commit decides): proposals
// to the agreed state, the journal of copies held stopped, the bound on a
// frozen transfer, and the resolution of what a restarted agent finds in
// its journal.

const (
	// frozenBound: a frozen transfer in which nothing is sent or
	// received for this long is abandoned and the process resumes.
	frozenBound = 2 * time.Second
	// decisionWait: a target that holds a restored copy waits this long
	// for the source's word before it asks.
	decisionWait = 5 * time.Second
	// proposeTimeout bounds one proposal to the agreed state.
	proposeTimeout = 2 * time.Second
	// retryEvery: a side that could not learn the outcome tries again.
	retryEvery = time.Second
)

func (a *Agent) journal() commit.Journal {
	return commit.Journal{Dir: filepath.Join(a.cfg.StateDir, "migrations")}
}

// propose asks the agreed state to record o for migration id (from src
// to dst) and returns the outcome it holds: o, or the one proposed first.
func (a *Agent) propose(ctx context.Context, id uint64, src, dst int, o commit.Outcome) (commit.Outcome, error) {
	out := state.MigAbort
	if o == commit.Commit {
		out = state.MigCommit
	}
	pctx, cancel := context.WithTimeout(ctx, proposeTimeout)
	defer cancel()
	res, err := a.apply(pctx, &state.Command{Op: state.OpMigration,
		Migration: &state.MigrationRec{ID: id, Source: src, Target: dst, Outcome: out}})
	if err == nil {
		err = res.Err()
	}
	if err != nil {
		return commit.Undecided, err
	}
	var rec state.MigrationRec
	if err := json.Unmarshal(res.Value, &rec); err != nil {
		return commit.Undecided, fmt.Errorf("the master's answer: %w", err)
	}
	switch rec.Outcome {
	case state.MigCommit:
		return commit.Commit, nil
	case state.MigAbort:
		return commit.Abort, nil
	}
	return commit.Undecided, fmt.Errorf("the master answered outcome %q", rec.Outcome)
}

// resolve runs a side's machine from act until it asks for an action
// that ends the migration (kill, resume, release or drop), which it
// returns: proposals and questions are carried out here, and waits
// repeat them every retryEvery while ctx lasts (a canceled ctx returns
// Wait: the copy stays stopped, for the journal's recovery).
func (a *Agent) resolve(ctx context.Context, act commit.Action, e *commit.Entry,
	src *commit.Source, tgt *commit.Target) commit.Action {
	cpid := showCPID(e.CPID)
	waitedSince := time.Time{}
	for {
		switch act {
		case commit.ProposeCommit, commit.ProposeAbort:
			p := commit.Abort
			if act == commit.ProposeCommit {
				p = commit.Commit
			}
			o, err := a.propose(ctx, e.ID, e.Source, e.Target, p)
			switch {
			case err != nil && src != nil:
				act = src.NoAnswer()
			case err != nil:
				act = tgt.NoAnswer()
			case src != nil:
				act = src.Decided(o)
			default:
				act = tgt.Decided(o)
			}
			if err != nil && (waitedSince.IsZero() || time.Since(waitedSince) > time.Minute) {
				waitedSince = time.Now()
				a.log.Warn("migration: cannot reach the agreed state to learn the outcome; the copy here stays stopped",
					"cpid", cpid, "id", fmt.Sprintf("%x", e.ID), "role", e.Role, "err", err)
			}
		case commit.AskSource:
			act = tgt.SourceSaid(a.askSource(ctx, e.Source, e.ID))
		case commit.Wait:
			select {
			case <-ctx.Done():
				return commit.Wait
			case <-time.After(retryEvery):
			}
			if src != nil {
				act = src.Stalled()
			} else {
				act = tgt.Lost()
			}
		default:
			return act
		}
	}
}

// guard makes a frozen or held copy stay stopped if this agent dies
// (package checkpoint's Guard) and records it in the journal, synced.
func (a *Agent) guard(g interface{ Guard() error }, e *commit.Entry) error {
	if err := g.Guard(); err != nil {
		return fmt.Errorf("cannot guard it against this agent's death: %w", err)
	}
	st, err := commit.StartTime(e.Pid)
	if err != nil {
		return err
	}
	e.Start = st
	if err := a.journal().Save(e); err != nil {
		return fmt.Errorf("the migration journal: %w", err)
	}
	return nil
}

// askSource asks the source what it decided (Undecided when it does not
// know, cannot be reached or is not up).
func (a *Agent) askSource(ctx context.Context, src int, id uint64) commit.Outcome {
	n, err := a.upNode(src)
	if err != nil {
		return commit.Undecided
	}
	c, err := a.peer(n)
	if err != nil {
		return commit.Undecided
	}
	cctx, cancel := context.WithTimeout(ctx, rpcTimeout)
	defer cancel()
	r, err := c.MoveOutcome(cctx, &transport.MoveOutcomeRequest{ID: id})
	switch {
	case err != nil || !r.Decided:
		return commit.Undecided
	case r.Commit:
		return commit.Commit
	}
	return commit.Abort
}

// stallWatch cancels a frozen transfer in which nothing moves for
// frozenBound: every message sent or received is progress.
type stallWatch struct {
	migrate.Conn
	mu     sync.Mutex
	last   time.Time
	done   chan struct{}
	fired  bool
	cancel func()
}

func watchStalls(c migrate.Conn, cancel func()) *stallWatch {
	w := &stallWatch{Conn: c, last: time.Now(), done: make(chan struct{}), cancel: cancel}
	go func() {
		t := time.NewTicker(frozenBound / 10)
		defer t.Stop()
		for {
			select {
			case <-w.done:
				return
			case <-t.C:
			}
			w.mu.Lock()
			stalled := time.Since(w.last) > frozenBound
			w.fired = w.fired || stalled
			w.mu.Unlock()
			if stalled {
				cancel()
				return
			}
		}
	}()
	return w
}

func (w *stallWatch) touch() {
	w.mu.Lock()
	w.last = time.Now()
	w.mu.Unlock()
}

func (w *stallWatch) Send(m migrate.Msg) error {
	err := w.Conn.Send(m)
	w.touch()
	return err
}

func (w *stallWatch) Recv() (migrate.Msg, error) {
	m, err := w.Conn.Recv()
	w.touch()
	return m, err
}

// stop ends the watch; it reports whether the watch had fired.
func (w *stallWatch) stop() bool {
	select {
	case <-w.done:
	default:
		close(w.done)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.fired
}

// recoverMigrations resolves, once this node is a member again, the
// copies that the journal says an earlier run of the agent held stopped
// in a migration: each is killed or let go as the agreed state says
// (asking it with an abort: the first proposal wins, so an abort is the
// outcome only if nothing was decided).
func (a *Agent) recoverMigrations(ctx context.Context) {
	j := a.journal()
	entries, bad := j.List()
	for _, err := range bad {
		a.log.Error("a migration journal entry cannot be read; its copy, if any, stays stopped", "err", err)
	}
	for _, e := range entries {
		if !e.Alive() {
			j.Remove(e)
			continue
		}
		a.log.Warn("migration: a copy held stopped by an earlier run of the agent; resolving it", "cpid", showCPID(e.CPID),
			"pid", e.Pid, "role", e.Role, "id", fmt.Sprintf("%x", e.ID))
		go a.recoverOne(ctx, e)
	}
}

func (a *Agent) recoverOne(ctx context.Context, e *commit.Entry) {
	for a.fenceReason() != "" {
		select {
		case <-ctx.Done():
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
	var act commit.Action
	if e.Role == commit.RoleSource {
		s := commit.Recover()
		act = a.resolve(ctx, s.Stalled(), e, &s, nil)
	} else {
		t := commit.RecoverTarget()
		act = a.resolve(ctx, t.Lost(), e, nil, &t)
	}
	if act == commit.Wait || !e.Alive() {
		return // canceled; or gone meanwhile
	}
	cpid := showCPID(e.CPID)
	switch act {
	case commit.KillCopy, commit.DropCopy:
		unix.Kill(e.Pid, unix.SIGKILL)
		a.log.Info("migration recovered: the copy here was killed (the other runs)", "cpid", cpid, "pid", e.Pid, "role", e.Role)
	case commit.ResumeCopy, commit.ReleaseCopy:
		if !e.Stopped {
			unix.Kill(e.Pid, unix.SIGCONT)
		}
		a.log.Info("migration recovered: the copy here runs on", "cpid", cpid, "pid", e.Pid, "role", e.Role)
		if e.Role == commit.RoleTarget {
			go a.tellOrigin(vproc.CPID(e.CPID), a.Identity().Number, e.Pid)
		}
	}
	a.journal().Remove(e)
}
