package agent

import (
	"strings"
	"testing"
	"time"

	"github.com/ssi-cluster/ssi/internal/api"
	"github.com/ssi-cluster/ssi/internal/state"
)

func TestFenceState(t *testing.T) {
	t.Parallel()
	node := func(st string, inc uint64) *state.NodeRec {
		return &state.NodeRec{Number: 2, ID: "id2", Name: "n2", State: st, Incarnation: inc, Epoch: 17}
	}
	const silence = 1200 * time.Millisecond
	now := time.Date(2026, 12, 7, 6, 14, 30, 0, time.UTC)
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	for _, tc := range []struct {
		name     string
		in       fenceInput
		reason   string // "" = member; otherwise a substring of the reason
		excluded bool
	}{
		{"not registered", fenceInput{Rec: nil, Incarnation: 1, Leader: true}, "not registered yet", false},
		{"not registered, no leader", fenceInput{Rec: nil, Incarnation: 1}, "not registered yet", false},
		{"follower with no leader past MaxSilence", fenceInput{Rec: node(api.StateUp, 1), Incarnation: 1,
			Now: now, LastContact: ago(1500 * time.Millisecond), MaxSilence: silence}, "no contact with a master since 06:14:28 UTC", false},
		// Each new reason is logged: the reason must not change while
		// the silence lasts.
		{"the reason stays the same while the silence lasts", fenceInput{Rec: node(api.StateUp, 1), Incarnation: 1,
			Now: now.Add(time.Hour), LastContact: ago(1500 * time.Millisecond), MaxSilence: silence}, "no contact with a master since 06:14:28 UTC", false},
		{"follower silent too long though excluded: not excluded", fenceInput{Rec: node(api.StateDown, 1), Incarnation: 1,
			Now: now, LastContact: ago(2 * time.Second), MaxSilence: silence}, "no contact with a master", false},
		{"follower in a short election is a member", fenceInput{Rec: node(api.StateUp, 1), Incarnation: 1,
			Now: now, LastContact: ago(300 * time.Millisecond), MaxSilence: silence}, "", false},
		{"follower at the silence limit is a member", fenceInput{Rec: node(api.StateUp, 1), Incarnation: 1,
			Now: now, LastContact: ago(silence), MaxSilence: silence}, "", false},
		{"follower up, same incarnation", fenceInput{Rec: node(api.StateUp, 4), Incarnation: 4,
			Now: now, LastContact: ago(10 * time.Millisecond), MaxSilence: silence}, "", false},
		{"leader up, same incarnation, no contact needed", fenceInput{Rec: node(api.StateUp, 4), Incarnation: 4, Leader: true,
			Now: now, LastContact: ago(time.Hour), MaxSilence: silence}, "", false},
		{"up with an older incarnation waits", fenceInput{Rec: node(api.StateUp, 3), Incarnation: 4, Leader: true},
			"waiting for the master to admit this incarnation", false},
		{"joining waits", fenceInput{Rec: node(state.StateJoining, 4), Incarnation: 4, Leader: true},
			"waiting for the master", false},
		{"down, same incarnation: excluded", fenceInput{Rec: node(api.StateDown, 4), Incarnation: 4,
			MaxSilence: silence}, "excluded by the cluster at epoch 17", true},
		{"down, newer incarnation in registry: excluded", fenceInput{Rec: node(api.StateDown, 5), Incarnation: 4, Leader: true},
			"excluded by the cluster", true},
		{"down, older incarnation: waiting", fenceInput{Rec: node(api.StateDown, 3), Incarnation: 4, Leader: true},
			"waiting for the master to admit this incarnation", false},
		{"left, same incarnation: excluded", fenceInput{Rec: node(api.StateLeft, 4), Incarnation: 4, Leader: true},
			"excluded by the cluster", true},
		{"left, older incarnation: waiting", fenceInput{Rec: node(api.StateLeft, 2), Incarnation: 4, Leader: true},
			"waiting", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			reason, excluded := fenceState(tc.in)
			if excluded != tc.excluded {
				t.Errorf("excluded = %v, want %v (reason %q)", excluded, tc.excluded, reason)
			}
			if tc.reason == "" {
				if reason != "" {
					t.Errorf("reason = %q, want a member (\"\")", reason)
				}
				return
			}
			if !strings.Contains(reason, tc.reason) {
				t.Errorf("reason = %q, want it to contain %q", reason, tc.reason)
			}
		})
	}
}

func TestFenceRecheck(t *testing.T) {
	t.Parallel()
	const silence = 750 * time.Millisecond
	now := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	for _, tc := range []struct {
		name string
		in   fenceInput
		want time.Duration
	}{
		{"leader: only leadership or registry changes matter", fenceInput{Leader: true, Now: now, LastContact: ago(time.Hour), MaxSilence: silence}, time.Second},
		{"fresh contact: when the silence would pass the limit", fenceInput{Now: now, LastContact: ago(50 * time.Millisecond), MaxSilence: silence}, 705 * time.Millisecond},
		{"at the limit: just after it", fenceInput{Now: now, LastContact: ago(silence), MaxSilence: silence}, 5 * time.Millisecond},
		{"silent already: poll for contact coming back", fenceInput{Now: now, LastContact: ago(time.Second), MaxSilence: silence}, 100 * time.Millisecond},
		{"long limit: at most a second", fenceInput{Now: now, LastContact: ago(0), MaxSilence: 10 * time.Second}, time.Second},
	} {
		if got := fenceRecheck(tc.in); got != tc.want {
			t.Errorf("%s: fenceRecheck = %s, want %s", tc.name, got, tc.want)
		}
	}
}
