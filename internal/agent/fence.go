package agent

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/raft"

	"github.com/ssi-cluster/ssi/internal/api"
	"github.com/ssi-cluster/ssi/internal/state"
)

// A node accepts cluster work only while it is a member: registered, up in
// the committed registry as its current incarnation, and in contact with a
// master. Otherwise it is fenced, as OpenSSI's excluded nodes were (they
// rebooted; ours stop accepting cluster work and come back as a new
// incarnation).

// fenceInput is what fenceState decides from.
type fenceInput struct {
	Rec         *state.NodeRec // this node in the registry, nil if absent
	Incarnation uint64         // this agent's incarnation
	Leader      bool
	Now         time.Time
	LastContact time.Time // the last contact with the leader
	MaxSilence  time.Duration
}

// fenceState returns why the node is fenced ("" when it is a member) and
// whether the cluster excluded this very incarnation (so the node must come
// back as a new one).
func fenceState(in fenceInput) (reason string, excluded bool) {
	if in.Rec == nil {
		return "not registered yet", false
	}
	// A short election is not a partition: only a silence longer than
	// MaxSilence fences.
	// The reason names the time of the last contact, not the silence so
	// far: it stays the same while the silence lasts (the agent logs each
	// new reason once).
	if !in.Leader && in.Now.Sub(in.LastContact) > in.MaxSilence {
		return fmt.Sprintf("no contact with a master since %s (minority partition?)", in.LastContact.UTC().Format("15:04:05 MST")), false
	}
	if in.Rec.State != api.StateUp || in.Rec.Incarnation < in.Incarnation {
		if (in.Rec.State == api.StateDown || in.Rec.State == api.StateLeft) && in.Rec.Incarnation >= in.Incarnation {
			return fmt.Sprintf("excluded by the cluster at epoch %d", in.Rec.Epoch), true
		}
		return "waiting for the master to admit this incarnation", false
	}
	return "", false
}

// fenceReason is "" while this node is a member.
func (a *Agent) fenceReason() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.fenced
}

// fenceRecheck is when fenceState's answer can next change by time alone:
// when the silence since the last contact with a master would pass
// MaxSilence (a little after, so that the check sees it passed). While
// silent already, contact coming back is polled for every fencePoll;
// changes of the registry or of the leadership wake the loop anyway.
func fenceRecheck(in fenceInput) time.Duration {
	const fencePoll, fenceMax, fenceMargin = 100 * time.Millisecond, time.Second, 5 * time.Millisecond
	silence := in.Now.Sub(in.LastContact)
	switch {
	case in.Leader:
		return fenceMax
	case silence > in.MaxSilence:
		return fencePoll
	default:
		return min(in.MaxSilence-silence+fenceMargin, fenceMax)
	}
}

func (a *Agent) fenceLoop(ctx context.Context) {
	for {
		fch, lch := a.store.FSM.Changed(), a.store.LeaderChanged()
		next := a.checkFence()
		select {
		case <-ctx.Done():
			return
		case <-time.After(next):
		case <-fch:
		case <-lch:
		}
	}
}

// checkFence fences or unfences this node and returns when to check again.
func (a *Agent) checkFence() time.Duration {
	var rec *state.NodeRec
	a.store.FSM.Read(func(reg *state.Registry) {
		if n := reg.ByID(a.id.ID); n != nil {
			cp := *n
			rec = &cp
		}
	})
	last := a.store.Raft.LastContact()
	if last.IsZero() {
		last = a.started
	}
	silence := maxSilence(time.Duration(a.cfg.RaftHeartbeat), a.store.NonVoter(a.id.ID))
	a.mu.Lock()
	in := fenceInput{Rec: rec, Incarnation: a.id.Incarnation, Leader: a.store.Raft.State() == raft.Leader,
		Now: time.Now(), LastContact: last, MaxSilence: silence}
	reason, excluded := fenceState(in)
	if reason != a.fenced {
		if reason == "" {
			a.log.Info("member of the cluster", "number", rec.Number, "incarnation", a.id.Incarnation)
		} else {
			a.log.Warn("fenced: accepting no cluster work", "why", reason)
		}
		a.fenced = reason
	}
	var bump bool
	if excluded {
		a.id.Incarnation++
		bump = true
		if err := a.id.Save(a.cfg.StateDir); err != nil {
			a.log.Error("saving the new incarnation", "err", err)
		}
	}
	meta := a.meta()
	a.mu.Unlock()
	a.metrics.fenced.Set(boolFloat(reason != ""))
	if bump {
		a.log.Warn("this node was excluded; rejoining as a new incarnation", "incarnation", meta.Incarnation)
		if err := a.gossip.SetMeta(meta); err != nil {
			a.log.Warn("gossiping the new incarnation", "err", err)
		}
	}
	return fenceRecheck(in)
}

// maxSilence is how long a node may hear nothing from a master before it
// fences itself: three of the master's longest heartbeat periods (1.2 s for
// the default raft_heartbeat of 1 s; at least minSilence, so that a short
// hiccup of a busy machine is not a partition), and for a non-voter, which
// the master heartbeats once a state.NonVoterHeartbeat (state/quiet.go),
// that period more.
func maxSilence(hb time.Duration, nonVoter bool) time.Duration {
	const minSilence = 750 * time.Millisecond
	d := max(3*state.HeartbeatPeriodMax(hb), minSilence)
	if nonVoter {
		d += state.NonVoterHeartbeat
	}
	return d
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
