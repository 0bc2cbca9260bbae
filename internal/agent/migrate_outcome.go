package agent

import (
	"context"
	"time"

	"github.com/ssi-cluster/ssi/internal/transport"
)

// The decision of a migration, for a target that lost its stream after
// it restored the process and before it heard the decision: the source
// remembers what it decided, the target asks (MoveOutcome) and waits
// while the source is up and has not decided.

// outcomeMemory is how long a source remembers a decision.
const outcomeMemory = 5 * time.Minute

type outcome struct {
	commit bool
	to     int // the target, the only node told
	at     time.Time
}

// decide records the decision of migration id to node to.
func (m *migrations) decide(id uint64, to int, commit bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.outcomes == nil {
		m.outcomes = map[uint64]outcome{}
	}
	for k, o := range m.outcomes {
		if time.Since(o.at) > outcomeMemory {
			delete(m.outcomes, k)
		}
	}
	m.outcomes[id] = outcome{commit, to, time.Now()}
}

// MoveOutcome answers a target about migration r.ID: only the target of
// that migration, known from its certificate; to any other node it is a
// migration not decided.
func (h *rpcHandler) MoveOutcome(ctx context.Context, r *transport.MoveOutcomeRequest) (*transport.MoveOutcomeResponse, error) {
	from, err := h.agent().callerNode(ctx, 0)
	if err != nil {
		return nil, err
	}
	m := h.agent().mig
	m.mu.Lock()
	defer m.mu.Unlock()
	o, ok := m.outcomes[r.ID]
	if !ok || o.to != from {
		return &transport.MoveOutcomeResponse{}, nil
	}
	return &transport.MoveOutcomeResponse{Decided: true, Commit: o.commit}, nil
}

// askOutcome finds out, after the stream to source src broke, whether
// migration id committed: yes if the source's node goes down (its copy
// died with it) or says it killed its copy; no if it says it resumed it,
// or does not decide within a minute.
func (a *Agent) askOutcome(ctx context.Context, src int, id uint64) bool {
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if n, err := a.upNode(src); err == nil {
			if c, err := a.peer(n); err == nil {
				cctx, cancel := context.WithTimeout(context.Background(), rpcTimeout)
				r, err := c.MoveOutcome(cctx, &transport.MoveOutcomeRequest{ID: id})
				cancel()
				if err == nil && r.Decided {
					return r.Commit
				}
			}
		}
		if a.sourceDown(ctx, src) { // waits up to downGrace
			return true
		}
	}
	return false
}
