package relink

import (
	"testing"
	"time"
)

// TestLink walks a link through events at given times (seconds after t0)
// and checks its state after each.
func TestLink(t *testing.T) {
	t0 := time.Unix(1000, 0)
	type step struct {
		at    float64 // seconds after t0
		event string  // broken, reattached, gone, expire
		want  State
		left  float64 // grace left after the event, seconds
	}
	cases := []struct {
		name  string
		steps []step
	}{
		{"a false down: back within the grace", []step{
			{0, "broken", Suspected, 30}, {1.4, "expire", Suspected, 28.6}, {1.5, "reattached", Attached, 30}}},
		{"a dead node: lost when the grace ran out", []step{
			{0, "broken", Suspected, 30}, {29.9, "expire", Suspected, 0.1}, {30, "expire", Lost, 0}}},
		{"too late: a re-attachment after lost is refused", []step{
			{0, "broken", Suspected, 30}, {31, "expire", Lost, 0}, {32, "reattached", Lost, 0}}},
		{"flapping does not extend the grace", []step{
			{0, "broken", Suspected, 30}, {10, "broken", Suspected, 20}, {30, "expire", Lost, 0}}},
		{"a new suspicion after a re-attachment has its own grace", []step{
			{0, "broken", Suspected, 30}, {1, "reattached", Attached, 30}, {20, "broken", Suspected, 30},
			{49, "expire", Suspected, 1}, {50, "expire", Lost, 0}}},
		{"the node says the process is gone: lost at once", []step{
			{0, "broken", Suspected, 30}, {2, "gone", Lost, 0}}},
		{"expire while attached changes nothing", []step{{100, "expire", Attached, 30}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l := New(30 * time.Second)
			for i, s := range tc.steps {
				now := t0.Add(time.Duration(s.at * float64(time.Second)))
				switch s.event {
				case "broken":
					l.Broken(now, "node 2 is down")
				case "reattached":
					l.Reattached()
				case "gone":
					l.Gone("node 2 has no process 42")
				case "expire":
					l.Expire(now)
				}
				left := time.Duration(s.left * float64(time.Second))
				if l.State() != s.want || l.Left(now) != left {
					t.Fatalf("step %d (%s at %vs): %s with %v left, want %s with %v", i, s.event, s.at, l.State(), l.Left(now), s.want, left)
				}
			}
		})
	}
}

func TestLinkReasons(t *testing.T) {
	t0 := time.Unix(0, 0)
	l := New(30 * time.Second)
	l.Broken(t0, "node 2 went down (it is down)")
	l.Expire(t0.Add(31 * time.Second))
	if want := "node 2 went down (it is down), and did not come back within 30s"; l.Why() != want {
		t.Errorf("why %q, want %q", l.Why(), want)
	}
	l = New(30 * time.Second)
	l.Broken(t0, "lost the connection to node 3 (EOF)")
	l.Recause("node 3 went down (it is down)")
	if l.Expire(t0.Add(29*time.Second)) || l.Why() != "node 3 went down (it is down)" {
		t.Errorf("recaused: %s %q", l.State(), l.Why())
	}
	l = New(time.Second)
	l.Broken(t0, "x")
	if !l.Reattached() || l.Reattachments() != 1 || l.Why() != "" {
		t.Errorf("after a re-attachment: %s, %d, %q", l.State(), l.Reattachments(), l.Why())
	}
}
