package state

import (
	"fmt"
	"sort"
	"time"
)

// The agreed outcome of a contested migration. A migration's two copies
// (the source's, frozen, and the target's, restored and held) each run
// only on a decision: the target's on commit, the source's on abort. The
// source decides alone while the target has not restored the process;
// once the target has, a commit is proposed here and the first proposal
// of a migration wins, so the two sides can never act on different
// decisions, whatever failed in between (package migrate/commit has the
// protocol and its model).

// OpMigration records a migration's outcome (first proposal wins).
const OpMigration = "migration"

// Outcomes of a migration.
const (
	MigCommit = "commit" // the target's copy runs, the source's is killed
	MigAbort  = "abort"  // the source's copy runs, the target's is killed
)

// MigrationRec is the agreed outcome of one migration.
type MigrationRec struct {
	ID      uint64    `json:"id"`
	Source  int       `json:"source"`
	Target  int       `json:"target"`
	Outcome string    `json:"outcome"` // MigCommit or MigAbort
	At      time.Time `json:"at"`      // when it was decided (the proposer's command time)
}

// At most MaxMigrations outcomes are kept: when there are more, those
// older than MigrationMemory go, then the oldest until a tenth of the
// room is free (pruning in batches keeps an apply cheap). A side that
// comes back to a migration it had not resolved after its outcome was
// forgotten finds no record: it proposes again, and its proposal is the
// outcome (docs/migration.md says why that is still one copy).
const (
	MigrationMemory = 24 * time.Hour
	MaxMigrations   = 20000
)

// decideMigration applies an OpMigration: the first outcome proposed for
// an ID is the outcome; later proposals get it back unchanged.
func (r *Registry) decideMigration(c *Command) (any, error) {
	m := c.Migration
	if m == nil || m.ID == 0 || m.Source < 1 || m.Target < 1 || m.Source == m.Target ||
		(m.Outcome != MigCommit && m.Outcome != MigAbort) {
		return nil, fmt.Errorf("%w: a migration outcome needs an id, two distinct nodes and commit or abort", ErrBadCommand)
	}
	if r.Migrations == nil {
		r.Migrations = map[uint64]*MigrationRec{}
	}
	if old := r.Migrations[m.ID]; old != nil {
		if old.Source != m.Source || old.Target != m.Target {
			return nil, fmt.Errorf("%w: migration %x is from node %d to node %d", ErrBadCommand, m.ID, old.Source, old.Target)
		}
		return *old, nil
	}
	rec := *m
	rec.At = c.Time
	r.Migrations[m.ID] = &rec
	if len(r.Migrations) > MaxMigrations {
		r.pruneMigrations(c.Time)
	}
	return rec, nil
}

// pruneMigrations forgets outcomes older than MigrationMemory, then the
// oldest down to nine tenths of MaxMigrations. It depends on the log only (command
// times), so every replica forgets the same ones.
func (r *Registry) pruneMigrations(now time.Time) {
	for id, m := range r.Migrations {
		if now.Sub(m.At) > MigrationMemory {
			delete(r.Migrations, id)
		}
	}
	keep := MaxMigrations * 9 / 10
	if len(r.Migrations) <= keep {
		return
	}
	all := make([]*MigrationRec, 0, len(r.Migrations))
	for _, m := range r.Migrations {
		all = append(all, m)
	}
	sort.Slice(all, func(i, j int) bool {
		if !all[i].At.Equal(all[j].At) {
			return all[i].At.Before(all[j].At)
		}
		return all[i].ID < all[j].ID
	})
	for _, m := range all[:len(all)-keep] {
		delete(r.Migrations, m.ID)
	}
}

// Migration returns the agreed outcome of migration id, if any.
func (r *Registry) Migration(id uint64) (MigrationRec, bool) {
	m := r.Migrations[id]
	if m == nil {
		return MigrationRec{}, false
	}
	return *m, true
}

// mayForwardMigration: the source may propose either outcome; the target
// only an abort (it gives up waiting); no other node either.
func mayForwardMigration(c *Command, caller *NodeRec) error {
	m := c.Migration
	switch {
	case m == nil:
		return fmt.Errorf("%w: no migration", ErrBadCommand)
	case caller.Number == m.Source:
		return nil
	case caller.Number == m.Target && m.Outcome == MigAbort:
		return nil
	}
	return fmt.Errorf("node %d may not decide migration %x from node %d to node %d", caller.Number, m.ID, m.Source, m.Target)
}
