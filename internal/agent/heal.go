package agent

import (
	"context"
	"sync"
	"time"

	"github.com/ssi-cluster/ssi/internal/state"
)

// A node cut off for longer than voter_replace_after is out of raft, and
// only the log would tell it that it was excluded: the master adds it back
// as a non-voter once it is back (planRaft). Gossip says so, unless the
// gossip key changed while the node was away (a node removed for good
// meanwhile): the node then speaks a key no one reads, and only raft would
// give it the new one. So the master also asks such nodes over mutual TLS
// (a Ping answered with the node's own certificate), each at most every
// healProbeEvery, and counts an answer for healAnswerTTL.

const (
	healProbeEvery = 5 * time.Second
	healAnswerTTL  = 2 * healProbeEvery
)

// healProber holds the master's probes of down nodes out of raft.
type healProber struct {
	mu     sync.Mutex
	probes map[string]*healProbe // by node ID
}

type healProbe struct {
	started  time.Time
	running  bool
	answered time.Time // when it last answered
}

// healAnswers starts the probes due among targets (healTargets) and
// returns the targets that answered within healAnswerTTL. Probes run in
// the background: the reconciler never waits for one.
func (a *Agent) healAnswers(ctx context.Context, targets []*state.NodeRec, now time.Time) map[string]bool {
	h := &a.healer
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.probes == nil {
		h.probes = map[string]*healProbe{}
	}
	out := map[string]bool{}
	keep := map[string]bool{}
	for _, n := range targets {
		keep[n.ID] = true
		p := h.probes[n.ID]
		if p == nil {
			p = &healProbe{}
			h.probes[n.ID] = p
		}
		if !p.answered.IsZero() && now.Sub(p.answered) < healAnswerTTL {
			out[n.ID] = true
		}
		if p.running || now.Sub(p.started) < healProbeEvery {
			continue
		}
		p.started, p.running = now, true
		go func() {
			ok := a.answers(ctx, n)
			h.mu.Lock()
			defer h.mu.Unlock()
			p.running = false
			if ok {
				if p.answered.IsZero() {
					a.log.Info("a down node out of raft answers over TLS: adding it back", "node", n.Number)
				}
				p.answered = time.Now()
			}
		}()
	}
	for id, p := range h.probes {
		if !keep[id] && !p.running {
			delete(h.probes, id)
		}
	}
	return out
}
