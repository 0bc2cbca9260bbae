package agent

import (
	"context"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ssi-cluster/ssi/internal/state"
	"github.com/ssi-cluster/ssi/internal/transport"
)

// Presence streams (transport/presence.go): every node holds one open to
// the master, and the master takes a stream that breaks without a word as
// a sign that the node's agent died. It is a hint only, as gossip's word
// is: the reconciler confirms it with a Ping over mutual TLS (confirm.go)
// before it commits the node down. An agent that was killed refuses that
// Ping at once, so a crash is committed within a few milliseconds of the
// kernel closing the dead agent's connections, whatever gossip's probe
// interval; a node that falls silent (power, cable, hang) holds its
// connection open and is found by gossip's probes as before.

// presenceRetry bounds how fast a node re-opens a stream that keeps
// failing (a master that is starting, or refuses).
const (
	presenceRetryMin = 100 * time.Millisecond
	presenceRetryMax = time.Second
)

// presence is the master's view of the streams, and this node's own.
type presence struct {
	mu      sync.Mutex
	open    map[string]int    // node ID -> streams open to this node
	lost    map[string]uint64 // node ID -> incarnation whose stream broke
	changed chan struct{}     // closed and replaced when lost changes

	own     grpc.ClientStream // this node's stream to the master, if open
	ownDone chan struct{}     // closed when own ends

	// gone: the last master this node saw die (failover.go), kept across
	// changes of leadership so that, should this node win the election,
	// it commits the old master down without waiting for gossip.
	goneID  string
	goneInc uint64
}

func newPresence() *presence {
	return &presence{open: map[string]int{}, lost: map[string]uint64{}, changed: make(chan struct{})}
}

// Changed returns a channel closed at the next change of Lost.
func (p *presence) Changed() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.changed
}

func (p *presence) notifyLocked() {
	close(p.changed)
	p.changed = make(chan struct{})
}

// streams counts the nodes with a stream open.
func (p *presence) streams() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.open)
}

// opened records a stream from node id.
func (p *presence) opened(id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.open[id]++
	if _, ok := p.lost[id]; ok {
		delete(p.lost, id)
		p.notifyLocked()
	}
}

// closed records the end of a stream from node id (incarnation inc); lost
// says it ended without the node saying it leaves.
func (p *presence) closed(id string, inc uint64, lost bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.open[id]--; p.open[id] <= 0 {
		delete(p.open, id)
		if lost {
			p.lost[id] = inc
			p.notifyLocked()
		}
	}
}

// Lost returns the nodes whose stream broke, with the incarnation that held
// it, and the master this node saw die.
func (p *presence) Lost() map[string]uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]uint64, len(p.lost)+1)
	for id, inc := range p.lost {
		out[id] = inc
	}
	if p.goneID != "" && out[p.goneID] < p.goneInc {
		// The old master's death; a later stream of the same node (it
		// came back) holds a later incarnation and wins.
		out[p.goneID] = p.goneInc
	}
	return out
}

// masterGone records the death of master id (incarnation inc).
func (p *presence) masterGone(id string, inc uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.goneID, p.goneInc = id, inc
}

// forget drops every record: this node is no longer the master, and the
// next one keeps its own.
func (p *presence) forget() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.lost) > 0 {
		clear(p.lost)
		p.notifyLocked()
	}
}

// Presence serves a node's stream, on the master only.
func (h *rpcHandler) Presence(s transport.Stream) error {
	a := h.agent()
	caller, ok := transport.PeerFrom(s.Context())
	if !ok {
		return status.Error(codes.Unauthenticated, "presence needs a node certificate")
	}
	lch := a.store.LeaderChanged()
	if !a.isLeader() {
		return status.Error(codes.FailedPrecondition, "not the master")
	}
	var hello transport.PresenceNote
	if err := s.RecvMsg(&hello); err != nil {
		return err
	}
	a.presence.opened(caller)
	a.metrics.presence.Set(float64(a.presence.streams()))
	defer func() { a.metrics.presence.Set(float64(a.presence.streams())) }()
	leaving := make(chan bool, 1)
	go func() {
		for {
			var n transport.PresenceNote
			if err := s.RecvMsg(&n); err != nil {
				leaving <- false
				return
			}
			if n.Leaving {
				leaving <- true
				return
			}
		}
	}()
	select {
	case left := <-leaving:
		lost := !left && !a.stopping.Load() && a.isLeader()
		// The incarnation the registry holds now: the node may have
		// bumped its own since it opened the stream (excluded while its
		// agent restarted), and the hello's would then never match.
		inc := hello.Incarnation
		a.store.FSM.Read(func(reg *state.Registry) {
			if n := reg.ByID(caller); n != nil && n.Incarnation > inc {
				inc = n.Incarnation
			}
		})
		a.presence.closed(caller, inc, lost)
		if lost {
			a.log.Info("a node's connection to the master closed; checking it", "node_id", caller)
		}
		return nil
	case <-lch:
		a.presence.closed(caller, hello.Incarnation, false)
		return status.Error(codes.FailedPrecondition, "no longer the master")
	}
}

// presenceLoop keeps this node's stream to the current master open.
func (a *Agent) presenceLoop(ctx context.Context) {
	wait := presenceRetryMin
	for {
		seen, lch, fch := a.store.LeaderSeen(), a.store.LeaderChanged(), a.store.FSM.Changed()
		rec, id := a.leaderRec()
		if rec == nil || id == a.id.ID {
			// No master known, or not in the registry yet (a restarted
			// agent applies the log once the master tells it the commit
			// index): wait for either.
			select {
			case <-ctx.Done():
				return
			case <-seen:
			case <-lch:
			case <-fch:
			case <-time.After(presenceRetryMax):
			}
			continue
		}
		start := time.Now()
		err := a.holdPresence(ctx, rec)
		if ctx.Err() != nil {
			return
		}
		if time.Since(start) > presenceRetryMax {
			wait = presenceRetryMin
		}
		a.log.Debug("presence stream to the master ended", "master", rec.Number, "err", err)
		a.checkMaster(ctx, rec)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, presenceRetryMax)
	}
}

// holdPresence opens a stream to the master rec and holds it until it
// ends, or until another node is master. The stream has a connection of
// its own: when the master is cut off, whatever this node sends it (the
// stream's end, keepalives) waits unacknowledged on that connection alone,
// not on the one other calls to that node use once it is back.
func (a *Agent) holdPresence(ctx context.Context, rec *state.NodeRec) error {
	cl, err := transport.DialOnce(rec.RPCAddr(), a.creds.ClientTLS(), transport.FromIP(a.cfg.Bind))
	if err != nil {
		return err
	}
	defer cl.Close()
	// The stream outlives ctx by a little: an agent that stops on purpose
	// (SIGTERM, an upgrade, `systemctl restart`) says so on it first, so
	// that the master does not take its going for a crash; gossip then
	// judges, as it always did, whether it stays away long enough to be
	// committed down.
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	go func() {
		select {
		case <-ctx.Done():
			a.sayLeaving()
			cancel()
		case <-sctx.Done():
		}
	}()
	go func() {
		// A new master: this stream has no more use.
		for {
			seen := a.store.LeaderSeen()
			if _, id := a.store.Raft.LeaderWithID(); id != "" && string(id) != rec.ID {
				cancel()
				return
			}
			select {
			case <-sctx.Done():
				return
			case <-seen:
			}
		}
	}()
	st, err := cl.Presence(sctx)
	if err != nil {
		return err
	}
	if err := st.SendMsg(&transport.PresenceNote{Incarnation: a.Identity().Incarnation}); err != nil {
		return err
	}
	done := make(chan struct{})
	a.presence.mu.Lock()
	a.presence.own, a.presence.ownDone = st, done
	a.presence.mu.Unlock()
	a.metrics.link.Set(1)
	defer func() {
		a.metrics.link.Set(0)
		a.presence.mu.Lock()
		a.presence.own, a.presence.ownDone = nil, nil
		a.presence.mu.Unlock()
		close(done)
	}()
	var n transport.PresenceNote
	err = st.RecvMsg(&n) // the master sends nothing: this returns when the stream ends
	if sctx.Err() != nil {
		return nil // ended here: this agent stops, or another node is master
	}
	return err
}

// sayLeaving tells the master, on this node's stream, that the node goes
// on purpose (it leaves the cluster, or its agent stops), and waits
// (briefly) for the master to close the stream.
func (a *Agent) sayLeaving() {
	a.presence.mu.Lock()
	st, done := a.presence.own, a.presence.ownDone
	a.presence.mu.Unlock()
	if st == nil {
		return
	}
	if err := st.SendMsg(&transport.PresenceNote{Incarnation: a.Identity().Incarnation, Leaving: true}); err != nil {
		return
	}
	st.CloseSend()
	select {
	case <-done:
	case <-time.After(500 * time.Millisecond):
	}
}
