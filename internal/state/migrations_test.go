package state

import (
	"errors"
	"testing"
	"time"
)

func migCmd(id uint64, src, dst int, outcome string, at time.Time) *Command {
	return &Command{Op: OpMigration, Time: at, Migration: &MigrationRec{ID: id, Source: src, Target: dst, Outcome: outcome}}
}

// TestMigrationFirstWins: the first outcome proposed is the outcome; a
// later proposal, of either kind, gets it back.
func TestMigrationFirstWins(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name  string
		props []string
		want  string
	}{
		{"commit first", []string{MigCommit, MigAbort}, MigCommit},
		{"abort first", []string{MigAbort, MigCommit}, MigAbort},
		{"commit twice", []string{MigCommit, MigCommit}, MigCommit},
		{"abort alone", []string{MigAbort}, MigAbort},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewRegistry()
			for i, o := range tt.props {
				v, err := r.Apply(migCmd(7, 1, 2, o, t0.Add(time.Duration(i)*time.Second)))
				if err != nil {
					t.Fatal(err)
				}
				if got := v.(MigrationRec).Outcome; got != tt.want {
					t.Fatalf("proposal %d (%s): outcome %s, want %s", i, o, got, tt.want)
				}
			}
			if m, ok := r.Migration(7); !ok || m.Outcome != tt.want || !m.At.Equal(t0) {
				t.Fatalf("recorded %+v %v", m, ok)
			}
		})
	}
}

func TestMigrationBad(t *testing.T) {
	t0 := time.Now()
	r := NewRegistry()
	for _, c := range []*Command{
		{Op: OpMigration, Time: t0},
		migCmd(0, 1, 2, MigCommit, t0),
		migCmd(1, 1, 1, MigCommit, t0),
		migCmd(1, 0, 2, MigCommit, t0),
		migCmd(1, 1, 2, "maybe", t0),
	} {
		if _, err := r.Apply(c); !errors.Is(err, ErrBadCommand) {
			t.Errorf("%+v: err %v, want a bad command", c.Migration, err)
		}
	}
	r.Apply(migCmd(1, 1, 2, MigCommit, t0))
	if _, err := r.Apply(migCmd(1, 3, 2, MigAbort, t0)); !errors.Is(err, ErrBadCommand) {
		t.Errorf("another source for the same ID: %v", err)
	}
}

// TestMigrationPrune: outcomes older than MigrationMemory go, and beyond
// MaxMigrations the oldest go; a clone and a snapshot keep them.
func TestMigrationPrune(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	r := NewRegistry()
	r.Apply(migCmd(1, 1, 2, MigCommit, t0))
	r.Apply(migCmd(2, 1, 2, MigCommit, t0.Add(MigrationMemory)))
	for i := 0; i < MaxMigrations-1; i++ { // one past the bound with the two above
		r.Apply(migCmd(uint64(100+i), 1, 2, MigAbort, t0.Add(MigrationMemory+time.Duration(i+1)*time.Millisecond)))
	}
	if _, ok := r.Migration(1); ok {
		t.Error("an outcome older than MigrationMemory is kept past MaxMigrations")
	}
	if n := len(r.Migrations); n != MaxMigrations*9/10 {
		t.Fatalf("%d outcomes kept, want %d", n, MaxMigrations*9/10)
	}
	if _, ok := r.Migration(2); ok {
		t.Error("the oldest outcome is kept beyond MaxMigrations")
	}
	c := r.Clone()
	if m, ok := c.Migration(100 + MaxMigrations - 2); !ok || m.Outcome != MigAbort {
		t.Error("a clone lost an outcome")
	}
}

func TestMayForwardMigration(t *testing.T) {
	src, dst, other := &NodeRec{Number: 1}, &NodeRec{Number: 2}, &NodeRec{Number: 3}
	tests := []struct {
		caller  *NodeRec
		outcome string
		ok      bool
	}{
		{src, MigCommit, true}, {src, MigAbort, true},
		{dst, MigAbort, true}, {dst, MigCommit, false},
		{other, MigAbort, false}, {other, MigCommit, false},
	}
	for _, tt := range tests {
		err := MayForward(migCmd(9, 1, 2, tt.outcome, time.Now()), tt.caller)
		if (err == nil) != tt.ok {
			t.Errorf("node %d proposing %s: err %v, want ok=%v", tt.caller.Number, tt.outcome, err, tt.ok)
		}
	}
}
