package load

import "testing"

func TestSignificant(t *testing.T) {
	t.Parallel()
	base := Vector{RunQueue: 1, Load1: 0.5, Load5: 0.4, Load15: 0.3, CPUUse: 0.2, Cores: 2, Speed: 1000,
		MemTotal: 1000 << 20, MemFree: 500 << 20, Procs: 10, Stamp: 1}
	for _, tc := range []struct {
		name string
		edit func(v *Vector)
		want bool
	}{
		{"same but the stamp", func(v *Vector) { v.Stamp = 2 }, false},
		{"slower averages only", func(v *Vector) { v.Load5, v.Load15 = 0.9, 0.9 }, false},
		{"load1 within 0.1", func(v *Vector) { v.Load1 = 0.55 }, false},
		{"load1 by 0.1", func(v *Vector) { v.Load1 = 0.6 }, true},
		{"load1 down by 0.1", func(v *Vector) { v.Load1 = 0.4 }, true},
		{"cpu within 5 points", func(v *Vector) { v.CPUUse = 0.24 }, false},
		{"cpu by 5 points", func(v *Vector) { v.CPUUse = 0.25 }, true},
		{"run queue", func(v *Vector) { v.RunQueue = 2 }, true},
		{"processes", func(v *Vector) { v.Procs = 9 }, true},
		{"cores", func(v *Vector) { v.Cores = 1 }, true},
		{"speed", func(v *Vector) { v.Speed = 900 }, true},
		{"memory total", func(v *Vector) { v.MemTotal = 2000 << 20 }, true},
		{"free memory within 2%", func(v *Vector) { v.MemFree = 490 << 20 }, false},
		{"free memory down 2%", func(v *Vector) { v.MemFree = 480 << 20 }, true},
		{"free memory up 2%", func(v *Vector) { v.MemFree = 520 << 20 }, true},
	} {
		cur := base
		tc.edit(&cur)
		if got := Significant(base, cur); got != tc.want {
			t.Errorf("%s: Significant = %v, want %v", tc.name, got, tc.want)
		}
	}
}
