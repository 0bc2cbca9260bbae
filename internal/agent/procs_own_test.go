package agent

import (
	"slices"
	"testing"

	"github.com/ssi-cluster/ssi/internal/vproc"
)

func TestDescendants(t *testing.T) {
	table := []vproc.Proc{
		{Pid: 1, PPid: 0}, {Pid: 10, PPid: 1}, // init, the agent
		{Pid: 11, PPid: 10}, {Pid: 12, PPid: 11}, // its child and grandchild
		{Pid: 20, PPid: 1}, {Pid: 21, PPid: 20}, // another user's session
		{Pid: 30, PPid: 1}, {Pid: 31, PPid: 30}, // a held run, reparented to init
	}
	var got []int
	for _, p := range descendants(table, map[int]bool{10: true, 30: true}) {
		got = append(got, p.Pid)
	}
	if want := []int{10, 11, 12, 30, 31}; !slices.Equal(got, want) {
		t.Errorf("descendants = %v, want %v", got, want)
	}
}
