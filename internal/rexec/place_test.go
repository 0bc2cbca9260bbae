package rexec

import (
	"reflect"
	"testing"
)

func TestSpread(t *testing.T) {
	idle := func(n, cores, speed int) Candidate {
		return Candidate{Node: n, Cores: cores, Speed: speed, MemTotal: 8 << 30, MemFree: 4 << 30}
	}
	busy := idle(2, 2, 1000)
	busy.RunQueue = 6
	short := idle(3, 2, 1000)
	short.MemFree = 10 << 20
	tests := []struct {
		name  string
		k     int
		nodes []Candidate
		want  []int
	}{
		{"none", 3, nil, nil},
		{"round robin over equals", 4, []Candidate{idle(2, 1, 1000), idle(1, 1, 1000)}, []int{1, 2, 1, 2}},
		{"cores fill first", 3, []Candidate{idle(1, 2, 1000), idle(2, 1, 1000)}, []int{1, 2, 1}},
		{"faster node first", 1, []Candidate{idle(1, 1, 500), idle(2, 1, 1500)}, []int{2}},
		{"busy node avoided", 2, []Candidate{busy, idle(1, 2, 1000)}, []int{1, 1}},
		{"short of memory avoided", 2, []Candidate{short, idle(1, 1, 1000)}, []int{1, 1}},
		{"all short of memory: still placed", 1, []Candidate{short}, []int{3}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Spread(tc.k, tc.nodes); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Spread = %v, want %v", got, tc.want)
			}
		})
	}
	if Best(nil) != 0 || Best([]Candidate{idle(4, 1, 1000)}) != 4 {
		t.Error("Best")
	}
}
