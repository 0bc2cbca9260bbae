package pki

import (
	"testing"
	"time"
)

func TestRenewAt(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	issued := func(life time.Duration) (time.Time, time.Time) { return t0.Add(-ClockSkew), t0.Add(life) }
	for _, tc := range []struct {
		name string
		life time.Duration
		ttl  time.Duration
		want time.Time
	}{
		{"default: half of 72 h after issue", 72 * time.Hour, 72 * time.Hour, t0.Add(36 * time.Hour)},
		{"one minute: 30 s after issue, not skewed by the backdating", time.Minute, time.Minute, t0.Add(30 * time.Second)},
		{"cert_ttl shortened below the certificate's life: at once", 72 * time.Hour, time.Hour, t0},
		{"cert_ttl lengthened: at half the current life", time.Hour, 72 * time.Hour, t0.Add(30 * time.Minute)},
	} {
		from, until := issued(tc.life)
		if got := RenewAt(from, until, tc.ttl); !got.Equal(tc.want) {
			t.Errorf("%s: renewAt = %v, want %v", tc.name, got.Sub(t0), tc.want.Sub(t0))
		}
	}
	// A certificate not backdated (issued elsewhere) still renews in its life.
	if got := RenewAt(t0, t0.Add(2*time.Minute), time.Hour); got.After(t0.Add(2 * time.Minute)) {
		t.Errorf("renewAt past the end of a short certificate: %v", got)
	}
}
