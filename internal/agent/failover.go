package agent

import (
	"context"
	"errors"
	"net"
	"slices"
	"syscall"
	"time"

	"github.com/hashicorp/raft"

	"github.com/ssi-cluster/ssi/internal/state"
)

// Failover when the master's agent dies.
//
// Raft replaces a master that falls silent after a follower's election
// timeout (raft_heartbeat, 1-2 s of silence). A master whose agent died
// (killed, crashed) need not be waited for: its presence stream breaks at
// once on every node (presence.go), and a port that refuses connections
// says that no agent listens there any more. Then one voter stands for
// election at once (state.Store.ElectNow: raft's leadership-transfer
// election, which the other voters grant though they have not timed out),
// and, if it wins, commits the old master down. The voters take turns,
// failoverStagger apart in the order of their IDs, so that they do not split
// the vote: a voter whose turn comes once an election has begun (raft's
// term moved on since the master died: another voter stood) leaves it to
// raft, and so does one whose turn comes after a new master is known. A master that is only unreachable (its port does not answer at all)
// is left to raft's timeout: standing for election then could unseat a
// master that is alive behind a slow link.

// failoverStagger separates the voters' turns to stand for election.
const failoverStagger = 300 * time.Millisecond

// refuseWait bounds the check that a port refuses connections.
const refuseWait = 500 * time.Millisecond

// refuses reports whether a TCP connection to addr is refused: nothing
// listens there (a timeout or success is not a refusal).
func refuses(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, refuseWait)
	if err == nil {
		c.Close()
		return false
	}
	return errors.Is(err, syscall.ECONNREFUSED)
}

// turn is this node's place among the voters that may stand for election
// when master is gone, or -1 when it may not (not a voter).
func turn(cfg raft.Configuration, self, master string) int {
	var ids []string
	for _, s := range cfg.Servers {
		if s.Suffrage == raft.Voter && string(s.ID) != master {
			ids = append(ids, string(s.ID))
		}
	}
	slices.Sort(ids)
	return slices.Index(ids, self)
}

// checkMaster runs when this node's presence stream to master rec ended:
// if rec's agent is gone, this voter stands for election in its turn.
func (a *Agent) checkMaster(ctx context.Context, rec *state.NodeRec) {
	if _, id := a.store.Raft.LeaderWithID(); id != "" && string(id) != rec.ID {
		return // replaced already
	}
	f := a.store.Raft.GetConfiguration()
	if f.Error() != nil {
		return
	}
	n := turn(f.Configuration(), a.id.ID, rec.ID)
	if n < 0 || !refuses(rec.RPCAddr()) {
		return
	}
	a.presence.masterGone(rec.ID, rec.Incarnation)
	term := a.store.Raft.CurrentTerm()
	deadline := time.Now().Add(time.Duration(n) * failoverStagger)
	for {
		seen := a.store.LeaderSeen()
		if _, id := a.store.Raft.LeaderWithID(); id != "" && string(id) != rec.ID {
			return // another voter won
		}
		if a.store.Raft.CurrentTerm() != term {
			return // another voter stands: raft goes on from there
		}
		wait := time.Until(deadline)
		if wait <= 0 {
			break
		}
		select {
		case <-ctx.Done():
			return
		case <-seen:
		case <-time.After(wait):
		}
	}
	a.log.Warn("the master's agent is gone (its connection closed and its port refuses): standing for election",
		"master", rec.Number, "turn", n)
	if err := a.store.ElectNow(); err != nil {
		a.log.Warn("standing for election", "err", err)
	}
}
