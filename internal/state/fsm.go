package state

import (
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/ssi-cluster/ssi/internal/api"
)

// FSM is the raft state machine holding the Registry.
type FSM struct {
	mu      sync.Mutex
	reg     *Registry
	changed chan struct{}
	applied uint64               // raft index of the last applied entry
	seen    map[uint64]time.Time // epoch -> when this node applied it (local clock)
}

// NewFSM returns an FSM with an empty registry.
func NewFSM() *FSM {
	return &FSM{reg: NewRegistry(), changed: make(chan struct{}), seen: map[uint64]time.Time{}}
}

// Apply applies a committed log entry. It returns a *Result.
func (f *FSM) Apply(l *raft.Log) any {
	if l.Type != raft.LogCommand {
		return nil
	}
	c, err := DecodeCommand(l.Data)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.applied = l.Index
	if err != nil {
		return makeResult(nil, err)
	}
	v, err := f.reg.Apply(c)
	if t, ok := v.(api.Transition); ok {
		f.seen[t.Epoch] = time.Now()
		delete(f.seen, t.Epoch-MaxTransitions)
	}
	if err == nil && c.Op != OpMigration { // outcomes change no one's membership view
		close(f.changed)
		f.changed = make(chan struct{})
	}
	return makeResult(v, err)
}

func makeResult(v any, err error) *Result {
	r := &Result{}
	if err != nil {
		r.Error, r.Code = err.Error(), codeOf(err)
		return r
	}
	if v != nil {
		b, merr := json.Marshal(v)
		if merr != nil {
			r.Error, r.Code = merr.Error(), "bad_command"
			return r
		}
		r.Value = b
	}
	return r
}

// Read calls fn with the registry under the FSM's lock. fn must not keep
// the registry nor block.
func (f *FSM) Read(fn func(r *Registry)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f.reg)
}

// SeenAt returns when this node applied the transition of an epoch (zero if
// it was not applied here, e.g. it came in a snapshot).
func (f *FSM) SeenAt(epoch uint64) time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.seen[epoch]
}

// Changed returns a channel closed at the next applied change.
func (f *FSM) Changed() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.changed
}

// Snapshot returns a point-in-time copy for raft to persist.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return &snapshot{reg: f.reg.Clone()}, nil
}

// Restore replaces the registry with a snapshot's.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, 256<<20))
	if err != nil {
		return err
	}
	reg, err := DecodeSnapshot(data)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reg = reg
	close(f.changed)
	f.changed = make(chan struct{})
	return nil
}

// DecodeSnapshot decodes and checks a persisted registry.
func DecodeSnapshot(data []byte) (*Registry, error) {
	reg := NewRegistry()
	if err := json.Unmarshal(data, reg); err != nil {
		return nil, fmt.Errorf("state snapshot: %w", err)
	}
	if reg.NextNumber < 1 {
		return nil, fmt.Errorf("state snapshot: next number %d", reg.NextNumber)
	}
	if err := reg.reindex(); err != nil {
		return nil, fmt.Errorf("state snapshot: %w", err)
	}
	return reg, nil
}

type snapshot struct{ reg *Registry }

func (s *snapshot) Persist(sink raft.SnapshotSink) error {
	b, err := json.Marshal(s.reg)
	if err == nil {
		_, err = sink.Write(b)
	}
	if err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (s *snapshot) Release() {}
