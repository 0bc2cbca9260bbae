package state

import (
	"errors"
	"testing"
	"time"

	"github.com/ssi-cluster/ssi/internal/api"
)

// A node that registered but never came up gives its name up after
// StaleJoin, with a committed leave; before that the name is refused.
func TestStaleJoiningNameIsReleased(t *testing.T) {
	r := NewRegistry()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	reg := func(id string, at time.Time) (any, error) {
		return r.Apply(&Command{Op: OpRegister, Time: at, Node: &NodeRec{ID: id, Name: "n1", Addr: "10.0.0.1"}})
	}
	if _, err := reg("old-id-1", t0); err != nil {
		t.Fatal(err)
	}
	if _, err := reg("new-id-1", t0.Add(StaleJoin/2)); !errors.Is(err, ErrDuplicateName) {
		t.Fatalf("early re-registration: %v, want ErrDuplicateName", err)
	}
	v, err := reg("new-id-1", t0.Add(2*StaleJoin))
	if err != nil {
		t.Fatalf("late re-registration: %v", err)
	}
	if v.(int) != 2 {
		t.Errorf("new node got number %v, want 2 (numbers are never reused)", v)
	}
	if old := r.Nodes[1]; old.State != api.StateLeft {
		t.Errorf("stale node is %s, want left", old.State)
	}
	if len(r.Transitions) != 1 || r.Transitions[0].Kind != api.KindLeave || r.Transitions[0].Node != 1 {
		t.Errorf("transitions %+v, want one leave of node 1", r.Transitions)
	}
}
