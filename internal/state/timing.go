package state

import (
	"time"

	"github.com/hashicorp/raft"
)

// Raft's timing, and what an idle cluster pays for it.
//
// hashicorp/raft ties the leader's heartbeat period to HeartbeatTimeout: it
// sends an AppendEntries to every follower and non-voter every
// HeartbeatTimeout/10 to /5, and another every CommitTimeout to /2 so that
// followers learn the commit index. With a 250 ms heartbeat timeout and a
// 25 ms commit timeout an idle master sent about 55 RPCs a second to each
// node, and each follower answered them: most of an idle agent's CPU.
//
// The heartbeat timeout has two jobs, which ssi separates:
//   - a follower starts an election after HeartbeatTimeout to 2x without
//     contact: this bounds a failed master's replacement, so followers keep
//     the configured timeout (raft_heartbeat);
//   - the leader heartbeats every HeartbeatTimeout/10 to /5: the leader runs
//     with leaderHeartbeatFactor times the timeout, so it heartbeats every
//     raft_heartbeat/5 to /2.5 (50-100 ms for 250 ms): still at least 2.5
//     heartbeats in a follower's shortest election timeout. Raft's
//     ReloadConfig sets it when this node wins an election and sets it back
//     when it loses the leadership.
//
// The commit timeout is long (commitTimeout): instead the store follows
// every successful Apply with a Barrier (coalesced: at most one pending),
// which carries the new commit index to every follower at once; so a
// committed transition reaches the followers one round trip after it is
// committed, as before, and an idle master sends one AppendEntries per
// peer every 3-6 s for it.
const (
	leaderHeartbeatFactor = 2
	commitTimeout         = 3 * time.Second
)

// HeartbeatPeriodMax is the longest a master waits between two heartbeats
// to a voter, for the configured heartbeat timeout hb.
func HeartbeatPeriodMax(hb time.Duration) time.Duration {
	return hb * leaderHeartbeatFactor / 5
}

// leaderTiming is the reloadable configuration for a leader (lead) or a
// follower, from the configured heartbeat timeout hb.
func leaderTiming(cur raft.ReloadableConfig, hb time.Duration, lead bool) raft.ReloadableConfig {
	if lead {
		hb *= leaderHeartbeatFactor
	}
	cur.HeartbeatTimeout, cur.ElectionTimeout = hb, hb
	return cur
}

// watchLeadership follows raft's leadership signal: it sets the heartbeat
// period and tells LeaderChanged's watchers.
func (s *Store) watchLeadership(hb time.Duration) {
	defer close(s.done)
	for {
		select {
		case <-s.stop:
			return
		case lead := <-s.Raft.LeaderCh():
			if err := s.Raft.ReloadConfig(leaderTiming(s.Raft.ReloadableConfig(), hb, lead)); err != nil {
				s.log.Error("setting the heartbeat period", "leader", lead, "error", err)
			}
			s.mu.Lock()
			close(s.leaderChanged)
			s.leaderChanged = make(chan struct{})
			s.mu.Unlock()
		}
	}
}

// LeaderChanged returns a channel closed when this node next gains or loses
// the leadership.
func (s *Store) LeaderChanged() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.leaderChanged
}

// watchLeader closes LeaderSeen's channel whenever raft observes a leader
// (or the loss of one): followers learn of a new master at once, without
// polling.
func (s *Store) watchLeader() {
	ch := make(chan raft.Observation, 4)
	s.Raft.RegisterObserver(raft.NewObserver(ch, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.LeaderObservation)
		return ok
	}))
	go func() {
		for {
			select {
			case <-s.stop:
				return
			case <-ch:
				s.mu.Lock()
				close(s.leaderSeen)
				s.leaderSeen = make(chan struct{})
				s.mu.Unlock()
			}
		}
	}()
}

// LeaderSeen returns a channel closed when this node next observes a new
// leader, or none.
func (s *Store) LeaderSeen() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.leaderSeen
}

// nudgeLoop sends a Barrier after applies, so followers learn the commit
// index without waiting for the commit timeout. Applies while one Barrier is
// in flight share the next one.
func (s *Store) nudgeLoop() {
	for {
		select {
		case <-s.stop:
			return
		case <-s.nudge:
			if s.Raft.State() == raft.Leader {
				s.Raft.Barrier(time.Second).Error() // a failed barrier only means the commit timeout carries it
			}
		}
	}
}

// Nudged makes followers learn the commit index now (after an apply or a
// configuration change).
func (s *Store) Nudged() {
	s.tr.Kick()
	select {
	case s.nudge <- struct{}{}:
	default:
	}
}

// ElectNow makes this node, a voter, stand for election at once, as if the
// master had handed its leadership over: for a master whose death is
// certain (its agent's connection closed and its port refuses), so that
// the cluster does not wait out a follower's election timeout. A
// non-voter must not call it.
func (s *Store) ElectNow() error {
	if s.Raft.State() != raft.Follower {
		return nil
	}
	return s.tr.elect(time.Second)
}
