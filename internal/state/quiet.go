package state

import (
	"errors"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// Heartbeats to non-voters, and why the master thins them.
//
// hashicorp/raft heartbeats every peer, voter or not, every
// HeartbeatTimeout/10 to /5 (50-100 ms here, timing.go): on 128 nodes the
// master sent 1,200-2,500 RPCs a second over TLS, more than a core of this
// host, and the cluster never settled. Only voters need them: a voter's
// heartbeats hold off its election timer and renew the master's lease,
// while a non-voter neither votes nor counts towards the lease. A non-voter
// needs contact for one thing, its fence (a node that hears from no master
// for a while stops accepting cluster work, fence.go), and one heartbeat a
// NonVoterHeartbeat serves that.
//
// quietTransport sits between raft and its network transport. A heartbeat
// (an AppendEntries that carries nothing but the term) to a peer that the
// latest configuration lists as a non-voter waits until NonVoterHeartbeat
// has passed since the last one it let through to that peer, then goes
// out: the master's cost per non-voter is one heartbeat RPC a second, and
// its replication goroutine for that peer sleeps instead of waking ten to
// twenty times a second. Voters, peers not (yet) in the configuration and
// every other RPC pass untouched, so replication, commit and elections
// are raft's own. A waiting heartbeat rechecks the peer's suffrage when
// Kick is called (the store calls it after every change it applies), so a
// newly promoted voter is heartbeated at once.

// NonVoterHeartbeat is the longest a non-voter goes without a heartbeat
// from the master (besides the entries it is sent).
const NonVoterHeartbeat = time.Second

// suffrageFunc reports whether id is a non-voter in the latest raft
// configuration.
type suffrageFunc func(id raft.ServerID) (nonVoter bool)

// quietTransport thins heartbeats to non-voters; see above.
type quietTransport struct {
	raft.Transport
	every    time.Duration
	nonVoter suffrageFunc // set once raft exists; nil lets everything through

	// rpcs is what raft consumes: the network's RPCs and, at a
	// confirmed master death, a TimeoutNow of this node's own (Elect).
	rpcs chan raft.RPC

	mu     sync.Mutex
	last   map[raft.ServerID]time.Time // the last heartbeat let through
	kick   chan struct{}               // closed and replaced by Kick
	closed chan struct{}
	once   sync.Once
}

func newQuietTransport(inner raft.Transport, every time.Duration) *quietTransport {
	t := &quietTransport{Transport: inner, every: every, last: map[raft.ServerID]time.Time{},
		kick: make(chan struct{}), closed: make(chan struct{}), rpcs: make(chan raft.RPC)}
	go t.forward(inner.Consumer())
	return t
}

// forward passes the network's RPCs on to raft. Heartbeats do not come
// this way: the network transport hands them to raft's heartbeat handler
// directly, so an idle node pays nothing for the extra hop.
func (t *quietTransport) forward(in <-chan raft.RPC) {
	for {
		select {
		case rpc := <-in:
			select {
			case t.rpcs <- rpc:
			case <-t.closed:
				return
			}
		case <-t.closed:
			return
		}
	}
}

// Consumer is what raft reads RPCs from.
func (t *quietTransport) Consumer() <-chan raft.RPC { return t.rpcs }

// elect hands raft a TimeoutNow as if from a master handing its
// leadership over: this node starts an election at once, and the other
// voters grant it even though they still believe in the old master (raft's
// leadership-transfer vote). It returns once raft took it, or fails after
// d.
func (t *quietTransport) elect(d time.Duration) error {
	resp := make(chan raft.RPCResponse, 1)
	rpc := raft.RPC{Command: &raft.TimeoutNowRequest{RPCHeader: raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax}},
		RespChan: resp}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case t.rpcs <- rpc:
	case <-timer.C:
		return errors.New("raft did not take the election request in time")
	case <-t.closed:
		return raft.ErrTransportShutdown
	}
	select {
	case r := <-resp:
		return r.Error
	case <-timer.C:
		return errors.New("raft did not answer the election request in time")
	case <-t.closed:
		return raft.ErrTransportShutdown
	}
}

// isHeartbeat is raft's own test (net_transport.go): a term and nothing else.
func isHeartbeat(a *raft.AppendEntriesRequest) bool {
	return a.Term != 0 && a.PrevLogEntry == 0 && a.PrevLogTerm == 0 &&
		len(a.Entries) == 0 && a.LeaderCommitIndex == 0
}

// AppendEntries lets a heartbeat to a non-voter through once every t.every.
func (t *quietTransport) AppendEntries(id raft.ServerID, target raft.ServerAddress,
	args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) error {
	if isHeartbeat(args) {
		if err := t.hold(id); err != nil {
			return err
		}
	}
	return t.Transport.AppendEntries(id, target, args, resp)
}

// hold waits until a heartbeat to id may go out, and records that it does.
func (t *quietTransport) hold(id raft.ServerID) error {
	for {
		t.mu.Lock()
		kick := t.kick
		wait := time.Until(t.last[id].Add(t.every))
		if t.nonVoter == nil || !t.nonVoter(id) || wait <= 0 {
			t.last[id] = time.Now()
			t.mu.Unlock()
			return nil
		}
		t.mu.Unlock()
		timer := time.NewTimer(wait)
		select {
		case <-timer.C:
		case <-kick:
			timer.Stop()
		case <-t.closed:
			timer.Stop()
			return raft.ErrTransportShutdown
		}
	}
}

// Kick makes waiting heartbeats look at their peer's suffrage again.
func (t *quietTransport) Kick() {
	t.mu.Lock()
	close(t.kick)
	t.kick = make(chan struct{})
	t.mu.Unlock()
}

// setSuffrage installs the suffrage lookup (once raft exists).
func (t *quietTransport) setSuffrage(f suffrageFunc) {
	t.mu.Lock()
	t.nonVoter = f
	t.mu.Unlock()
	t.Kick()
}

// RequestPreVote passes pre-votes through: raft uses them only when its
// transport offers them.
func (t *quietTransport) RequestPreVote(id raft.ServerID, target raft.ServerAddress,
	args *raft.RequestPreVoteRequest, resp *raft.RequestPreVoteResponse) error {
	pv, ok := t.Transport.(raft.WithPreVote)
	if !ok {
		return errors.New("transport has no pre-vote")
	}
	return pv.RequestPreVote(id, target, args, resp)
}

// Close releases waiting heartbeats and closes the inner transport.
func (t *quietTransport) Close() error {
	t.once.Do(func() { close(t.closed) })
	if c, ok := t.Transport.(raft.WithClose); ok {
		return c.Close()
	}
	return nil
}

// nonVoterIn looks id up in r's latest configuration (an atomic copy:
// no round trip through raft's main loop).
func nonVoterIn(r *raft.Raft) suffrageFunc {
	return func(id raft.ServerID) bool {
		f := r.GetConfiguration()
		if f.Error() != nil {
			return false
		}
		for _, s := range f.Configuration().Servers {
			if s.ID == id {
				return s.Suffrage == raft.Nonvoter
			}
		}
		return false
	}
}

// NonVoter reports whether the latest raft configuration lists node id as
// a non-voter.
func (s *Store) NonVoter(id string) bool { return nonVoterIn(s.Raft)(raft.ServerID(id)) }
