package state

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/ssi-cluster/ssi/internal/api"
)

// fakeSink is an in-memory raft.SnapshotSink.
type fakeSink struct {
	bytes.Buffer
	writeErr  error
	closed    bool
	cancelled bool
}

func (s *fakeSink) Write(p []byte) (int, error) {
	if s.writeErr != nil {
		return 0, s.writeErr
	}
	return s.Buffer.Write(p)
}
func (s *fakeSink) ID() string    { return "fake" }
func (s *fakeSink) Cancel() error { s.cancelled = true; return nil }
func (s *fakeSink) Close() error  { s.closed = true; return nil }

func logOf(t *testing.T, index uint64, c *Command) *raft.Log {
	t.Helper()
	b, err := c.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return &raft.Log{Index: index, Type: raft.LogCommand, Data: b}
}

func fsmApply(t *testing.T, f *FSM, l *raft.Log) *Result {
	t.Helper()
	v := f.Apply(l)
	res, ok := v.(*Result)
	if !ok {
		t.Fatalf("FSM.Apply returned %T, want *Result", v)
	}
	return res
}

func fsmClone(f *FSM) *Registry {
	var c *Registry
	f.Read(func(r *Registry) { c = r.Clone() })
	return c
}

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// populatedFSM has a named cluster with nodes 1 (up), 2 (down), 3 (left)
// and 4 (joining).
func populatedFSM(t *testing.T) *FSM {
	t.Helper()
	f := NewFSM()
	cmds := []*Command{
		{Op: OpInit, Time: t0, Cluster: "prod"},
		regCmd("id-1", "n1", "10.0.0.1"), regCmd("id-2", "n2", "10.0.0.2"),
		regCmd("id-3", "n3", "10.0.0.3"), regCmd("id-4", "n4", "10.0.0.4"),
		trCmd(1, api.KindJoin, 1), trCmd(2, api.KindJoin, 1), trCmd(3, api.KindJoin, 1),
		trCmd(2, api.KindDown, 1), trCmd(3, api.KindLeave, 1),
	}
	for i, c := range cmds {
		if res := fsmApply(t, f, logOf(t, uint64(i+1), c)); res.Error != "" {
			t.Fatalf("command %d: %s", i, res.Error)
		}
	}
	return f
}

func TestFSMApplyGarbage(t *testing.T) {
	t.Parallel()
	for name, data := range map[string][]byte{
		"empty":      nil,
		"not json":   []byte("\x00\x01garbage"),
		"truncated":  []byte(`{"op":"register","node":{"id":"x"`),
		"wrong type": []byte(`{"op":5}`),
		"array":      []byte(`[1,2,3]`),
		"too big":    append(append([]byte(`{"op":"init","cluster":"`), bytes.Repeat([]byte("a"), MaxCommand)...), `"}`...),
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := populatedFSM(t)
			before := fsmClone(f)
			ch := f.Changed()
			res := fsmApply(t, f, &raft.Log{Index: 100, Type: raft.LogCommand, Data: data})
			if res.Error == "" || res.Code != "bad_command" || res.Value != nil {
				t.Fatalf("Apply(garbage) = %+v, want an error result", res)
			}
			if !errors.Is(res.Err(), ErrBadCommand) {
				t.Fatalf("Err() = %v, want ErrBadCommand", res.Err())
			}
			if after := fsmClone(f); !reflect.DeepEqual(before, after) {
				t.Fatal("garbage changed the registry")
			}
			if closed(ch) {
				t.Fatal("Changed() closed without a change")
			}
		})
	}
}

func TestFSMApplyRefusedCommand(t *testing.T) {
	t.Parallel()
	f := populatedFSM(t)
	before := fsmClone(f)
	ch := f.Changed()
	res := fsmApply(t, f, logOf(t, 50, trCmd(2, api.KindDown, 0))) // 2 is already down
	if res.Code != "bad_transition" || !errors.Is(res.Err(), ErrBadTransition) {
		t.Fatalf("result %+v", res)
	}
	res = fsmApply(t, f, logOf(t, 51, regCmd("id-x", "n1", "10.0.0.9")))
	if res.Code != "duplicate_name" || !errors.Is(res.Err(), ErrDuplicateName) {
		t.Fatalf("result %+v", res)
	}
	res = fsmApply(t, f, logOf(t, 52, trCmd(99, api.KindDown, 0)))
	if res.Code != "unknown_node" || !errors.Is(res.Err(), ErrUnknownNode) {
		t.Fatalf("result %+v", res)
	}
	if !reflect.DeepEqual(before, fsmClone(f)) {
		t.Fatal("refused commands changed the registry")
	}
	if closed(ch) {
		t.Fatal("Changed() closed without a change")
	}
}

func TestFSMApplyNonCommand(t *testing.T) {
	t.Parallel()
	f := NewFSM()
	for _, typ := range []raft.LogType{raft.LogNoop, raft.LogBarrier, raft.LogConfiguration} {
		if v := f.Apply(&raft.Log{Index: 1, Type: typ, Data: []byte("x")}); v != nil {
			t.Errorf("Apply(%v) = %v, want nil", typ, v)
		}
	}
}

func TestFSMChanged(t *testing.T) {
	t.Parallel()
	f := NewFSM()
	ch := f.Changed()
	if closed(ch) {
		t.Fatal("Changed() closed at start")
	}
	res := fsmApply(t, f, logOf(t, 1, regCmd("id-a", "a", "10.0.0.1")))
	if res.Error != "" || string(res.Value) != "1" {
		t.Fatalf("register result %+v", res)
	}
	if !closed(ch) {
		t.Fatal("Changed() not closed after a change")
	}
	ch2 := f.Changed()
	if closed(ch2) {
		t.Fatal("new Changed() channel is already closed")
	}
	res = fsmApply(t, f, logOf(t, 2, trCmd(1, api.KindJoin, 3)))
	if res.Error != "" {
		t.Fatal(res.Error)
	}
	var tr api.Transition
	if err := json.Unmarshal(res.Value, &tr); err != nil || tr.Epoch != 1 || tr.Kind != api.KindJoin || tr.Incarnation != 3 {
		t.Fatalf("transition result %s: %v", res.Value, err)
	}
	if !closed(ch2) {
		t.Fatal("Changed() not closed after a transition")
	}
	if f.SeenAt(1).IsZero() {
		t.Fatal("SeenAt(1) is zero after applying epoch 1")
	}
	if !f.SeenAt(2).IsZero() {
		t.Fatal("SeenAt(2) set for an epoch never applied")
	}
}

func TestFSMSnapshotRestore(t *testing.T) {
	t.Parallel()
	f := populatedFSM(t)
	want := fsmClone(f)
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	// Changes after the snapshot must not leak into it.
	fsmApply(t, f, logOf(t, 100, trCmd(1, api.KindDown, 0)))

	sink := &fakeSink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatalf("Persist: %v", err)
	}
	snap.Release()
	if !sink.closed || sink.cancelled {
		t.Fatalf("sink closed=%v cancelled=%v", sink.closed, sink.cancelled)
	}

	g := NewFSM()
	ch := g.Changed()
	if err := g.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	got := fsmClone(g)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("restored registry\n%+v\nwant\n%+v", got, want)
	}
	if !closed(ch) {
		t.Fatal("Restore did not signal Changed()")
	}
	checkIndex(t, got)
	// The restored registry keeps working: numbers continue, names stay unique.
	if res := fsmApply(t, g, logOf(t, 200, regCmd("id-5", "n5", "10.0.0.5"))); string(res.Value) != "5" {
		t.Fatalf("register after restore: %+v", res)
	}
	if res := fsmApply(t, g, logOf(t, 201, regCmd("id-x", "n1", "10.0.0.5"))); res.Code != "duplicate_name" {
		t.Fatalf("duplicate after restore: %+v", res)
	}
}

func TestFSMPersistWriteError(t *testing.T) {
	t.Parallel()
	f := populatedFSM(t)
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	sink := &fakeSink{writeErr: errors.New("disk full")}
	if err := snap.Persist(sink); err == nil {
		t.Fatal("Persist succeeded on a failing sink")
	}
	if !sink.cancelled {
		t.Fatal("Persist did not cancel the sink")
	}
}

func TestFSMRestoreBad(t *testing.T) {
	t.Parallel()
	for name, data := range map[string]string{
		"not json":          "garbage",
		"next number 0":     `{"next_number":0,"nodes":{}}`,
		"number mismatch":   `{"next_number":3,"nodes":{"1":{"number":2,"id":"a"}}}`,
		"number too high":   `{"next_number":2,"nodes":{"2":{"number":2,"id":"a"}}}`,
		"no id":             `{"next_number":2,"nodes":{"1":{"number":1}}}`,
		"null node":         `{"next_number":2,"nodes":{"1":null}}`,
		"duplicate id":      `{"next_number":3,"nodes":{"1":{"number":1,"id":"a"},"2":{"number":2,"id":"a"}}}`,
		"negative number":   `{"next_number":3,"nodes":{"-1":{"number":-1,"id":"a"}}}`,
		"non-numeric key":   `{"next_number":3,"nodes":{"x":{"number":1,"id":"a"}}}`,
		"wrong field types": `{"next_number":"3"}`,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := populatedFSM(t)
			before := fsmClone(f)
			ch := f.Changed()
			if err := f.Restore(io.NopCloser(bytes.NewReader([]byte(data)))); err == nil {
				t.Fatalf("Restore(%s) succeeded", data)
			}
			if !reflect.DeepEqual(before, fsmClone(f)) {
				t.Fatal("a failed Restore changed the registry")
			}
			if closed(ch) {
				t.Fatal("a failed Restore signalled Changed()")
			}
		})
	}
}

func TestDecodeSnapshotEmpty(t *testing.T) {
	t.Parallel()
	reg, err := DecodeSnapshot([]byte(`{"next_number":1}`))
	if err != nil {
		t.Fatal(err)
	}
	if reg.Nodes == nil || len(reg.Nodes) != 0 {
		t.Fatalf("nodes %v", reg.Nodes)
	}
	if v, err := reg.Apply(regCmd("a", "a", "10.0.0.1")); err != nil || v != 1 {
		t.Fatalf("register on a restored empty registry: %v %v", v, err)
	}
}
