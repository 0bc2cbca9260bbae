package agent

import (
	"slices"
	"testing"

	"github.com/ssi-cluster/ssi/internal/api"
)

func TestSomeAvg10(t *testing.T) {
	for text, want := range map[string]float64{
		"some avg10=12.50 avg60=3.00 avg300=1.00 total=123\nfull avg10=1.00 avg60=0.00 avg300=0.00 total=4\n": 12.5,
		"some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n":                                                    0,
		"some avg10=":  0,
		"":             0,
		"full avg10=9": 0,
	} {
		if got := someAvg10(text); got != want {
			t.Errorf("someAvg10(%q) = %v, want %v", text, got, want)
		}
	}
}

// TestVisibleMoves: with hide_other_procs the balance log shows a user
// only the moves of their own processes, as ps does; root sees all.
func TestVisibleMoves(t *testing.T) {
	evs := []api.BalanceEvent{{CPID: 1, UID: 1000}, {CPID: 2, UID: 1001}, {CPID: 3, UID: 0}}
	for _, tc := range []struct {
		c    Caller
		hide bool
		want []int64
	}{
		{Caller{UID: 1000, Unix: true}, false, []int64{1, 2, 3}},
		{Caller{UID: 1000, Unix: true}, true, []int64{1}},
		{Caller{UID: 0, Unix: true}, true, []int64{1, 2, 3}},
		{Caller{UID: 0}, true, nil},
	} {
		var got []int64
		for _, ev := range visibleMoves(evs, tc.c, tc.hide) {
			got = append(got, ev.CPID)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%+v, hide %v: moves %v, want %v", tc.c, tc.hide, got, tc.want)
		}
	}
}
