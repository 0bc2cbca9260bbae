package agent

import "testing"

// TestRetireKeepsEndedForItsHome: a session retired with keep is given
// once, and only to its own home; one retired without keep is gone.
func TestRetireKeepsEndedForItsHome(t *testing.T) {
	m := newMigrations()
	kept := &runSession{rec: &runRec{CPID: 1<<22 | 7, Home: 1}}
	gone := &runSession{rec: &runRec{CPID: 1<<22 | 8, Home: 1}}
	for _, s := range []*runSession{kept, gone} {
		m.add(s.rec.CPID, s)
	}
	m.retire(kept.rec.CPID, kept, true)
	m.retire(gone.rec.CPID, gone, false)
	for _, tc := range []struct {
		name string
		cpid int64
		home int
		want *runSession
	}{
		{"another node asks", kept.rec.CPID, 2, nil},
		{"its home asks", kept.rec.CPID, 1, kept},
		{"its home asks again", kept.rec.CPID, 1, nil},
		{"not kept", gone.rec.CPID, 1, nil},
	} {
		if got := m.takeEnded(tc.cpid, tc.home); got != tc.want {
			t.Errorf("%s: takeEnded = %p, want %p", tc.name, got, tc.want)
		}
	}
	if m.session(kept.rec.CPID) != nil || m.session(gone.rec.CPID) != nil {
		t.Error("a retired session is still a running one")
	}
}
