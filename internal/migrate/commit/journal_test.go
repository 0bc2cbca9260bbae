package commit

import (
	"os"
	"path/filepath"
	"testing"
)

func TestJournal(t *testing.T) {
	j := Journal{Dir: filepath.Join(t.TempDir(), "migrations")}
	start, err := StartTime(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	e := &Entry{ID: 0xabc, Role: RoleSource, CPID: 1<<22 | 5, Pid: os.Getpid(), Start: start, Source: 1, Target: 2}
	if err := j.Save(e); err != nil {
		t.Fatal(err)
	}
	if !e.Alive() {
		t.Error("this process is not alive by its entry")
	}
	os.WriteFile(filepath.Join(j.Dir, "junk.json"), []byte("{"), 0o600)
	os.WriteFile(filepath.Join(j.Dir, "1-target.json"), []byte(`{"id":2,"role":"target","pid":3}`), 0o600)
	got, bad := j.List()
	if len(got) != 1 || *got[0] != *e {
		t.Errorf("listed %+v, want %+v", got, e)
	}
	if len(bad) != 2 {
		t.Errorf("bad files %v, want 2", bad)
	}
	if err := j.Remove(e); err != nil {
		t.Fatal(err)
	}
	if err := j.Remove(e); err != nil {
		t.Errorf("removing twice: %v", err)
	}
	gone := *e
	gone.Start++
	if gone.Alive() {
		t.Error("an entry with another start time is alive")
	}
}
