package deputy

import "testing"

// TestJobStops: the launcher of an --np job stops once every instance
// left is stopped, once per stop of the job.
func TestJobStops(t *testing.T) {
	type ev struct {
		what string // stop, cont, end
		rank int
		want bool // the job has just become stopped
	}
	for _, tc := range []struct {
		name string
		k    int
		evs  []ev
	}{
		{"one of two stops", 2, []ev{{"stop", 0, false}}},
		{"both stop", 2, []ev{{"stop", 0, false}, {"stop", 1, true}}},
		{"a stop repeated", 2, []ev{{"stop", 0, false}, {"stop", 1, true}, {"stop", 1, false}}},
		{"stopped, continued, stopped again", 2, []ev{{"stop", 0, false}, {"stop", 1, true},
			{"cont", 0, false}, {"cont", 1, false}, {"stop", 1, false}, {"stop", 0, true}}},
		{"the one not stopped ends", 3, []ev{{"stop", 0, false}, {"stop", 1, false}, {"end", 2, true}}},
		{"all end", 2, []ev{{"end", 0, false}, {"end", 1, false}}},
		{"the stopped one ends", 2, []ev{{"stop", 0, false}, {"end", 0, false}, {"stop", 1, true}}},
		{"single", 1, []ev{{"stop", 0, true}, {"cont", 0, false}, {"stop", 0, true}}},
	} {
		j := newJobStops(tc.k)
		for i, e := range tc.evs {
			var got bool
			switch e.what {
			case "stop":
				got = j.stop(e.rank)
			case "cont":
				j.cont(e.rank)
			case "end":
				got = j.end(e.rank)
			}
			if got != e.want {
				t.Errorf("%s: event %d (%s %d): job stopped %v, want %v", tc.name, i, e.what, e.rank, got, e.want)
			}
		}
	}
}
