package agent

import (
	"context"
	"time"

	"github.com/ssi-cluster/ssi/internal/transport"
)

// The decision of a migration, for a target that lost its stream after
// it restored the process and before it heard the decision: the source
// remembers what it did (a local abort, or the agreed outcome it acted
// on), and the target asks it first (MoveOutcome); when the source does
// not know or cannot be reached, the target asks the agreed state
// (migrate_commit.go).

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
