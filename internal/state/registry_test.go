package state

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/ssi-cluster/ssi/internal/api"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func regCmd(id, name, addr string) *Command {
	return &Command{Op: OpRegister, Time: t0, Node: &NodeRec{
		ID: id, Name: name, Addr: addr, GossipPort: 7946, RPCPort: 7947, RaftPort: 7948, Incarnation: 1,
	}}
}

func trCmd(num int, kind string, inc uint64) *Command {
	return &Command{Op: OpTransition, Time: t0.Add(time.Duration(num) * time.Second), Number: num, Kind: kind,
		Incarnation: inc, Reason: "test " + kind}
}

func mustApply(t *testing.T, r *Registry, c *Command) any {
	t.Helper()
	v, err := r.Apply(c)
	if err != nil {
		t.Fatalf("Apply(%+v): %v", c, err)
	}
	return v
}

// checkIndex verifies the derived byID index matches Nodes.
func checkIndex(t *testing.T, r *Registry) {
	t.Helper()
	if len(r.byID) != len(r.Nodes) {
		t.Fatalf("byID has %d entries, Nodes %d", len(r.byID), len(r.Nodes))
	}
	for num, n := range r.Nodes {
		if n.Number != num {
			t.Fatalf("node under %d has number %d", num, n.Number)
		}
		if r.ByID(n.ID) != n {
			t.Fatalf("ByID(%s) is not Nodes[%d]", n.ID, num)
		}
		if num >= r.NextNumber {
			t.Fatalf("node %d >= next number %d", num, r.NextNumber)
		}
	}
}

func TestInit(t *testing.T) {
	t.Parallel()
	r := NewRegistry()
	if _, err := r.Apply(&Command{Op: OpInit}); !errors.Is(err, ErrBadCommand) {
		t.Fatalf("init with no name: %v, want ErrBadCommand", err)
	}
	if r.Cluster != "" {
		t.Fatalf("cluster %q after a refused init", r.Cluster)
	}
	mustApply(t, r, &Command{Op: OpInit, Cluster: "prod"})
	if r.Cluster != "prod" {
		t.Fatalf("cluster %q", r.Cluster)
	}
	mustApply(t, r, &Command{Op: OpInit, Cluster: "prod"}) // idempotent
	if _, err := r.Apply(&Command{Op: OpInit, Cluster: "other"}); !errors.Is(err, ErrBadCommand) {
		t.Fatalf("renaming the cluster: %v, want ErrBadCommand", err)
	}
	if r.Cluster != "prod" || r.Epoch != 0 || len(r.Transitions) != 0 {
		t.Fatalf("registry changed: %+v", r)
	}
}

func TestUnknownOp(t *testing.T) {
	t.Parallel()
	r := NewRegistry()
	before := r.Clone()
	for _, op := range []string{"", "INIT", "delete"} {
		if _, err := r.Apply(&Command{Op: op, Cluster: "x"}); !errors.Is(err, ErrBadCommand) {
			t.Errorf("op %q: %v, want ErrBadCommand", op, err)
		}
	}
	if !reflect.DeepEqual(before, r) {
		t.Fatal("unknown ops changed the registry")
	}
}

func TestRegisterAssignsNumbersNeverReused(t *testing.T) {
	t.Parallel()
	r := NewRegistry()
	for i, name := range []string{"a", "b", "c"} {
		v := mustApply(t, r, regCmd("id-"+name, name, fmt.Sprintf("10.0.0.%d", i+1)))
		if v != i+1 {
			t.Fatalf("register %s = %v, want %d", name, v, i+1)
		}
		n := r.Nodes[i+1]
		if n.State != StateJoining || n.Name != name || n.ID != "id-"+name || !n.Since.Equal(t0) || n.Incarnation != 1 || n.Epoch != 0 {
			t.Fatalf("node %d = %+v", i+1, n)
		}
	}
	if r.NextNumber != 4 {
		t.Fatalf("next number %d, want 4", r.NextNumber)
	}
	checkIndex(t, r)

	// b joins and leaves; a new node (new ID) with b's name gets a new
	// number, not b's.
	mustApply(t, r, trCmd(2, api.KindJoin, 1))
	mustApply(t, r, trCmd(2, api.KindLeave, 1))
	if v := mustApply(t, r, regCmd("id-b2", "b", "10.0.0.9")); v != 4 {
		t.Fatalf("re-used name got number %v, want 4", v)
	}
	if r.Nodes[2].ID != "id-b" || r.Nodes[2].State != api.StateLeft {
		t.Fatalf("old node 2 changed: %+v", r.Nodes[2])
	}
	// A node leaving the highest number does not give it back either.
	mustApply(t, r, trCmd(4, api.KindLeave, 1))
	if v := mustApply(t, r, regCmd("id-e", "e", "10.0.0.10")); v != 5 {
		t.Fatalf("register after the last node left = %v, want 5", v)
	}
	if r.NextNumber != 6 {
		t.Fatalf("next number %d, want 6", r.NextNumber)
	}
	checkIndex(t, r)
}

func TestRegisterDuplicateName(t *testing.T) {
	t.Parallel()
	for _, st := range []string{StateJoining, api.StateUp, api.StateDown} {
		t.Run(st, func(t *testing.T) {
			t.Parallel()
			r := registryWith(t, st)
			before := r.Clone()
			_, err := r.Apply(regCmd("id-other", "n", "10.0.0.99"))
			if !errors.Is(err, ErrDuplicateName) {
				t.Fatalf("duplicate name of a %s node: %v, want ErrDuplicateName", st, err)
			}
			if !reflect.DeepEqual(before, r) {
				t.Fatalf("refused register changed the registry:\n%+v\n%+v", before, r)
			}
		})
	}
}

func TestRegisterBadCommand(t *testing.T) {
	t.Parallel()
	for name, n := range map[string]*NodeRec{
		"nil node": nil,
		"no id":    {Name: "n", Addr: "10.0.0.1"},
		"no name":  {ID: "x", Addr: "10.0.0.1"},
		"no addr":  {ID: "x", Name: "n"},
	} {
		r := registryWith(t, api.StateUp)
		before := r.Clone()
		if _, err := r.Apply(&Command{Op: OpRegister, Node: n}); !errors.Is(err, ErrBadCommand) {
			t.Errorf("%s: %v, want ErrBadCommand", name, err)
		}
		if !reflect.DeepEqual(before, r) {
			t.Errorf("%s: registry changed", name)
		}
	}
}

func TestReRegisterKeepsNumber(t *testing.T) {
	t.Parallel()
	r := NewRegistry()
	mustApply(t, r, regCmd("id-a", "a", "10.0.0.1"))
	mustApply(t, r, regCmd("id-b", "b", "10.0.0.2"))
	mustApply(t, r, trCmd(1, api.KindJoin, 1))
	epoch := r.Epoch

	c := regCmd("id-a", "a-renamed", "10.0.0.50")
	c.Node.GossipPort, c.Node.RPCPort, c.Node.RaftPort = 1001, 1002, 1003
	c.Node.Incarnation = 9
	c.Node.Number = 77 // ignored: the registry decides numbers
	c.Time = t0.Add(time.Hour)
	if v := mustApply(t, r, c); v != 1 {
		t.Fatalf("re-register = %v, want 1", v)
	}
	n := r.Nodes[1]
	if n.Name != "a-renamed" || n.Addr != "10.0.0.50" || n.GossipPort != 1001 || n.RPCPort != 1002 || n.RaftPort != 1003 {
		t.Fatalf("addresses not refreshed: %+v", n)
	}
	if n.State != api.StateUp || n.Incarnation != 1 || n.Epoch != 1 || !n.Since.Equal(t0.Add(time.Second)) {
		t.Fatalf("re-register changed state, incarnation, epoch or since: %+v", n)
	}
	if r.NextNumber != 3 || len(r.Nodes) != 2 || r.Epoch != epoch {
		t.Fatalf("re-register changed the registry: next %d nodes %d epoch %d", r.NextNumber, len(r.Nodes), r.Epoch)
	}
	if n.RPCAddr() != "10.0.0.50:1002" || n.RaftAddr() != "10.0.0.50:1003" || n.GossipAddr() != "10.0.0.50:1001" {
		t.Fatalf("addrs %s %s %s", n.RPCAddr(), n.RaftAddr(), n.GossipAddr())
	}
	checkIndex(t, r)

	// Re-registering under a name another live node holds is refused.
	before := r.Clone()
	if _, err := r.Apply(regCmd("id-a", "b", "10.0.0.1")); !errors.Is(err, ErrDuplicateName) {
		t.Fatalf("re-register with b's name: %v", err)
	}
	if !reflect.DeepEqual(before, r) {
		t.Fatal("refused re-register changed the registry")
	}
}

// registryWith returns a registry with one node, number 1, ID "id-n",
// name "n", in the given state.
func registryWith(t *testing.T, st string) *Registry {
	t.Helper()
	r := NewRegistry()
	mustApply(t, r, &Command{Op: OpInit, Cluster: "c"})
	mustApply(t, r, regCmd("id-n", "n", "10.0.0.1"))
	switch st {
	case StateJoining:
	case api.StateUp:
		mustApply(t, r, trCmd(1, api.KindJoin, 1))
	case api.StateDown:
		mustApply(t, r, trCmd(1, api.KindJoin, 1))
		mustApply(t, r, trCmd(1, api.KindDown, 1))
	case api.StateLeft:
		mustApply(t, r, trCmd(1, api.KindJoin, 1))
		mustApply(t, r, trCmd(1, api.KindLeave, 1))
	default:
		t.Fatalf("no way to reach state %q", st)
	}
	if r.Nodes[1].State != st {
		t.Fatalf("node is %s, want %s", r.Nodes[1].State, st)
	}
	return r
}

func TestTransitionMatrix(t *testing.T) {
	t.Parallel()
	// to[from][kind] is the state reached, "" if refused.
	to := map[string]map[string]string{
		StateJoining:  {api.KindJoin: api.StateUp, api.KindDown: "", api.KindReturn: "", api.KindLeave: api.StateLeft},
		api.StateUp:   {api.KindJoin: "", api.KindDown: api.StateDown, api.KindReturn: "", api.KindLeave: api.StateLeft},
		api.StateDown: {api.KindJoin: "", api.KindDown: "", api.KindReturn: api.StateUp, api.KindLeave: api.StateLeft},
		api.StateLeft: {api.KindJoin: "", api.KindDown: "", api.KindReturn: api.StateUp, api.KindLeave: ""},
	}
	for from, kinds := range to {
		for kind, want := range kinds {
			t.Run(from+"/"+kind, func(t *testing.T) {
				t.Parallel()
				r := registryWith(t, from)
				before := r.Clone()
				c := trCmd(1, kind, 0)
				c.Time = t0.Add(24 * time.Hour)
				v, err := r.Apply(c)
				if want == "" {
					if !errors.Is(err, ErrBadTransition) {
						t.Fatalf("%s from %s: %v, want ErrBadTransition", kind, from, err)
					}
					if !reflect.DeepEqual(before, r) {
						t.Fatalf("refused %s from %s changed the registry", kind, from)
					}
					return
				}
				if err != nil {
					t.Fatalf("%s from %s: %v", kind, from, err)
				}
				if r.Epoch != before.Epoch+1 {
					t.Fatalf("epoch %d, want %d", r.Epoch, before.Epoch+1)
				}
				if len(r.Transitions) != len(before.Transitions)+1 {
					t.Fatalf("%d transitions, want %d", len(r.Transitions), len(before.Transitions)+1)
				}
				n := r.Nodes[1]
				if n.State != want || n.Epoch != r.Epoch || !n.Since.Equal(c.Time) {
					t.Fatalf("node after %s from %s: %+v", kind, from, n)
				}
				tr, ok := v.(api.Transition)
				if !ok {
					t.Fatalf("Apply returned %T, want api.Transition", v)
				}
				wantTr := api.Transition{Epoch: r.Epoch, Kind: kind, Node: 1, Name: "n", Incarnation: 1,
					Time: c.Time, Reason: c.Reason}
				if !reflect.DeepEqual(tr, wantTr) {
					t.Fatalf("transition %+v, want %+v", tr, wantTr)
				}
				if last := r.Transitions[len(r.Transitions)-1]; !reflect.DeepEqual(last, wantTr) {
					t.Fatalf("last kept transition %+v", last)
				}
			})
		}
	}
}

func TestTransitionRefusals(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		c    *Command
		want error
	}{
		{"unknown node", trCmd(42, api.KindDown, 0), ErrUnknownNode},
		{"node zero", trCmd(0, api.KindDown, 0), ErrUnknownNode},
		{"negative node", trCmd(-1, api.KindDown, 0), ErrUnknownNode},
		{"unknown kind", trCmd(1, "explode", 0), ErrBadCommand},
		{"empty kind", trCmd(1, "", 0), ErrBadCommand},
	} {
		r := registryWith(t, api.StateUp)
		before := r.Clone()
		if _, err := r.Apply(tc.c); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
		if !reflect.DeepEqual(before, r) {
			t.Errorf("%s: registry changed", tc.name)
		}
	}
}

func TestTransitionIncarnation(t *testing.T) {
	t.Parallel()
	r := registryWith(t, api.StateUp)
	mustApply(t, r, trCmd(1, api.KindDown, 0)) // lower: kept at 1
	if r.Nodes[1].Incarnation != 1 {
		t.Fatalf("incarnation %d after a lower one", r.Nodes[1].Incarnation)
	}
	v := mustApply(t, r, trCmd(1, api.KindReturn, 5))
	if r.Nodes[1].Incarnation != 5 || v.(api.Transition).Incarnation != 5 {
		t.Fatalf("incarnation %d (transition %d), want 5", r.Nodes[1].Incarnation, v.(api.Transition).Incarnation)
	}
}

func TestTransitionsAfter(t *testing.T) {
	t.Parallel()
	r := registryWith(t, api.StateUp) // epoch 1: join
	for i := 0; i < 4; i++ {
		mustApply(t, r, trCmd(1, api.KindDown, 0))   // 2, 4, 6, 8
		mustApply(t, r, trCmd(1, api.KindReturn, 0)) // 3, 5, 7, 9
	}
	if r.Epoch != 9 {
		t.Fatalf("epoch %d", r.Epoch)
	}
	for _, tc := range []struct {
		after uint64
		first uint64
		n     int
	}{{0, 1, 9}, {1, 2, 8}, {5, 6, 4}, {8, 9, 1}, {9, 0, 0}, {100, 0, 0}} {
		got := r.TransitionsAfter(tc.after)
		if len(got) != tc.n {
			t.Errorf("TransitionsAfter(%d) has %d, want %d", tc.after, len(got), tc.n)
			continue
		}
		for i, tr := range got {
			if tr.Epoch != tc.first+uint64(i) {
				t.Errorf("TransitionsAfter(%d)[%d].Epoch = %d", tc.after, i, tr.Epoch)
			}
		}
	}
	// The result is a copy.
	got := r.TransitionsAfter(0)
	got[0].Kind = "mutated"
	if r.Transitions[0].Kind != api.KindJoin {
		t.Fatal("TransitionsAfter returned the registry's own slice")
	}
	if got := NewRegistry().TransitionsAfter(0); len(got) != 0 {
		t.Fatalf("empty registry: %v", got)
	}
}

func TestMaxTransitionsTrimming(t *testing.T) {
	t.Parallel()
	r := registryWith(t, api.StateUp) // epoch 1
	total := MaxTransitions + 11
	for r.Epoch < uint64(total) {
		kind := api.KindDown
		if r.Nodes[1].State == api.StateDown {
			kind = api.KindReturn
		}
		mustApply(t, r, trCmd(1, kind, 0))
	}
	if len(r.Transitions) != MaxTransitions {
		t.Fatalf("%d transitions kept, want %d", len(r.Transitions), MaxTransitions)
	}
	if first := r.Transitions[0].Epoch; first != uint64(total-MaxTransitions+1) {
		t.Fatalf("oldest kept epoch %d, want %d", first, total-MaxTransitions+1)
	}
	for i := 1; i < len(r.Transitions); i++ {
		if r.Transitions[i].Epoch != r.Transitions[i-1].Epoch+1 {
			t.Fatalf("gap at %d: %d then %d", i, r.Transitions[i-1].Epoch, r.Transitions[i].Epoch)
		}
	}
	if got := r.TransitionsAfter(0); len(got) != MaxTransitions {
		t.Fatalf("TransitionsAfter(0) = %d", len(got))
	}
	if got := r.TransitionsAfter(uint64(total - 3)); len(got) != 3 {
		t.Fatalf("TransitionsAfter(total-3) = %d", len(got))
	}
}

func TestCloneIndependent(t *testing.T) {
	t.Parallel()
	r := NewRegistry()
	mustApply(t, r, &Command{Op: OpInit, Cluster: "c"})
	mustApply(t, r, regCmd("id-a", "a", "10.0.0.1"))
	mustApply(t, r, regCmd("id-b", "b", "10.0.0.2"))
	mustApply(t, r, trCmd(1, api.KindJoin, 1))
	c := r.Clone()
	if !reflect.DeepEqual(c, r) {
		t.Fatalf("clone differs:\n%+v\n%+v", c, r)
	}
	checkIndex(t, c)
	snap := r.Clone()

	// Mutate the clone every way; the original must not move.
	c.ByID("id-a").Addr = "10.9.9.9"
	c.Nodes[2].State = api.StateLeft
	c.Transitions[0].Kind = "mutated"
	mustApply(t, c, regCmd("id-c", "c", "10.0.0.3"))
	mustApply(t, c, trCmd(2, api.KindReturn, 0))
	if c.Nodes[1].Addr != "10.9.9.9" {
		t.Fatal("clone's byID does not point at the clone's nodes")
	}
	if !reflect.DeepEqual(snap, r) {
		t.Fatalf("mutating the clone changed the original:\n%+v\n%+v", snap, r)
	}
	// And the other way round.
	mustApply(t, r, trCmd(1, api.KindDown, 0))
	if c.Nodes[1].State != api.StateUp {
		t.Fatal("mutating the original changed the clone")
	}
}

func TestSorted(t *testing.T) {
	t.Parallel()
	r := NewRegistry()
	for i := 0; i < 20; i++ {
		mustApply(t, r, regCmd(fmt.Sprintf("id%d", i), fmt.Sprintf("n%d", i), "10.0.0.1"))
	}
	s := r.Sorted()
	if len(s) != 20 {
		t.Fatalf("%d nodes", len(s))
	}
	for i, n := range s {
		if n.Number != i+1 {
			t.Fatalf("Sorted()[%d] is node %d", i, n.Number)
		}
	}
}

func TestResultErr(t *testing.T) {
	t.Parallel()
	for _, base := range []error{ErrDuplicateName, ErrBadTransition, ErrUnknownNode, ErrBadCommand} {
		res := makeResult(nil, fmt.Errorf("%w: detail", base))
		err := res.Err()
		if !errors.Is(err, base) {
			t.Errorf("Result{%q}.Err() = %v, not Is %v", res.Code, err, base)
		}
		if err.Error() != base.Error()+": detail" {
			t.Errorf("message %q", err)
		}
	}
	if err := (&Result{Error: "x", Code: "made_up"}).Err(); !errors.Is(err, ErrBadCommand) {
		t.Errorf("unknown code: %v", err)
	}
	if err := (&Result{Value: []byte("1")}).Err(); err != nil {
		t.Errorf("success: %v", err)
	}
	if res := makeResult(3, nil); string(res.Value) != "3" || res.Error != "" {
		t.Errorf("makeResult(3) = %+v", res)
	}
}
