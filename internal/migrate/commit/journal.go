package commit

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/ssi-cluster/ssi/internal/procstat"
	"github.com/ssi-cluster/ssi/internal/statedir"
)

// The journal: a node's record, on disk, of the copies it holds stopped
// in a migration (the source's frozen copy from just before the image is
// sent, the target's held copy from just before it says it restored), so
// that an agent that restarts finds them and resolves them with the
// agreed state instead of leaving them stopped for ever. One file per
// migration, written atomically and synced before the step it covers.

// Role is a node's part in a migration.
type Role string

// The roles.
const (
	RoleSource Role = "source"
	RoleTarget Role = "target"
)

// Entry is one copy held in a migration.
type Entry struct {
	ID     uint64 `json:"id"`
	Role   Role   `json:"role"`
	CPID   int64  `json:"cpid"`
	Pid    int    `json:"pid"`   // the copy's pid on this node
	Start  uint64 `json:"start"` // its start time (/proc/PID/stat field 22): the pid is not reused
	Source int    `json:"source"`
	Target int    `json:"target"`
	// Stopped: the process was stopped (SIGSTOP) before the migration;
	// resumed, it stays stopped.
	Stopped bool `json:"stopped,omitempty"`
}

// Journal is the directory of the entries.
type Journal struct{ Dir string }

func (e *Entry) name() string { return strconv.FormatUint(e.ID, 16) + "-" + string(e.Role) + ".json" }

// Save writes e (synced) before the step it covers.
func (j Journal) Save(e *Entry) error {
	if err := os.MkdirAll(j.Dir, 0o700); err != nil {
		return err
	}
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	return statedir.WriteFile(j.Dir, e.name(), b, 0o600)
}

// Remove deletes e once its copy is resolved (killed or let go).
func (j Journal) Remove(e *Entry) error {
	err := os.Remove(filepath.Join(j.Dir, e.name()))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

// List reads every entry. A file that cannot be read or parsed is
// reported in bad (by name, with why) and left in place for the operator:
// its copy, if any, stays stopped.
func (j Journal) List() (entries []*Entry, bad []error) {
	des, err := os.ReadDir(j.Dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, []error{err}
	}
	for _, de := range des {
		if !strings.HasSuffix(de.Name(), ".json") || strings.HasPrefix(de.Name(), ".") {
			continue
		}
		path := filepath.Join(j.Dir, de.Name())
		b, err := os.ReadFile(path)
		e := new(Entry)
		if err == nil {
			err = json.Unmarshal(b, e)
		}
		if err == nil && (e.ID == 0 || e.Pid < 1 || (e.Role != RoleSource && e.Role != RoleTarget) || e.name() != de.Name()) {
			err = errors.New("not a migration journal entry")
		}
		if err != nil {
			bad = append(bad, fmt.Errorf("migration journal %s: %w", path, err))
			continue
		}
		entries = append(entries, e)
	}
	return entries, bad
}

// StartTime is pid's start time (/proc/PID/stat field 22).
func StartTime(pid int) (uint64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	s, err := procstat.Parse(b)
	if err != nil {
		return 0, err
	}
	return s.Uint(22)
}

// Alive says whether e's copy is still the process it names.
func (e *Entry) Alive() bool {
	st, err := StartTime(e.Pid)
	return err == nil && st == e.Start
}
