package state

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/ssi-cluster/ssi/internal/api"
)

// fuzzRegistry is a registry with a node in every state: 1 up, 2 down,
// 3 left, 4 joining.
func fuzzRegistry(t *testing.T) *Registry {
	r := NewRegistry()
	for _, c := range []*Command{
		{Op: OpInit, Time: t0, Cluster: "prod"},
		regCmd("id-1", "n1", "10.0.0.1"), regCmd("id-2", "n2", "10.0.0.2"),
		regCmd("id-3", "n3", "10.0.0.3"), regCmd("id-4", "n4", "10.0.0.4"),
		trCmd(1, api.KindJoin, 1), trCmd(2, api.KindJoin, 1), trCmd(3, api.KindJoin, 1),
		trCmd(2, api.KindDown, 1), trCmd(3, api.KindLeave, 1),
		{Op: OpTokenCreate, Time: t0, Token: testToken("ab", time.Time{}, 2, false)},
	} {
		if _, err := r.Apply(c); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

// FuzzDecodeCommand decodes arbitrary bytes as a log entry and applies the
// result to a fresh and to a populated registry. Nothing may panic; an
// Apply that fails must leave the registry exactly as it was, and one that
// succeeds must leave the derived index consistent.
func FuzzDecodeCommand(f *testing.F) {
	f.Add([]byte(`{"op":"init","cluster":"prod"}`))
	f.Add([]byte(`{"op":"transition","number":1,"kind":"down"}`))
	h := testToken("ab", time.Time{}, 2, false).Hash
	f.Add([]byte(`{"op":"register","node":{"id":"id-9","name":"n9","addr":"10.0.0.9"},"token_hash":"` + h + `"}`))
	f.Add([]byte(`{"op":"token-create","token":{"id":"` + h[:12] + `","hash":"` + h + `","max_uses":1}}`))
	f.Add([]byte(`{"op":"token-revoke","token_id":"` + h[:12] + `"}`))
	f.Add([]byte(`{"op":"remove","number":2}`))
	f.Add([]byte(`{"op":"gossip-key","gossip_key":"` + h + `"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := DecodeCommand(data)
		if err != nil {
			return
		}
		for _, r := range []*Registry{NewRegistry(), fuzzRegistry(t)} {
			before := r.Clone()
			_, err := r.Apply(c)
			if err != nil {
				if !reflect.DeepEqual(before, r) {
					t.Fatalf("failed Apply (%v) changed the registry:\n%+v\n%+v", err, before, r)
				}
				continue
			}
			checkIndex(t, r)
			if r.Epoch < before.Epoch || r.NextNumber < before.NextNumber {
				t.Fatalf("epoch or next number went back: %d->%d, %d->%d", before.Epoch, r.Epoch, before.NextNumber, r.NextNumber)
			}
		}
		// A decoded command re-encodes to something that decodes the same.
		b, err := c.Encode()
		if err != nil {
			t.Fatalf("Encode: %v", err)
		}
		if _, err := DecodeCommand(b); err != nil && len(b) <= MaxCommand {
			t.Fatalf("re-decode of %s: %v", b, err)
		}
	})
}

// FuzzDecodeSnapshot checks that DecodeSnapshot never panics and that what
// it accepts is a fixed point of encode/decode and a usable registry.
func FuzzDecodeSnapshot(f *testing.F) {
	f.Add([]byte(`{"next_number":1}`))
	f.Add([]byte(`{"next_number":2,"nodes":{"1":{"number":1,"id":"a"}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		reg, err := DecodeSnapshot(data)
		if err != nil {
			return
		}
		checkIndex(t, reg)
		b1, err := json.Marshal(reg)
		if err != nil {
			// A time outside years 0-9999 cannot come out of JSON decoding.
			t.Fatalf("re-encode: %v", err)
		}
		reg2, err := DecodeSnapshot(b1)
		if err != nil {
			t.Fatalf("decode of re-encoded snapshot %s: %v", b1, err)
		}
		b2, err := json.Marshal(reg2)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b1, b2) {
			t.Fatalf("snapshot is not a fixed point:\n%s\n%s", b1, b2)
		}
		if reg.Cluster != reg2.Cluster || reg.NextNumber != reg2.NextNumber || reg.Epoch != reg2.Epoch ||
			len(reg.Nodes) != len(reg2.Nodes) || len(reg.Transitions) != len(reg2.Transitions) {
			t.Fatalf("round trip changed the registry: %+v vs %+v", reg, reg2)
		}
		// A restored registry must accept commands without panicking.
		for num := range reg.Nodes {
			_, _ = reg.Apply(&Command{Op: OpTransition, Number: num, Kind: api.KindDown})
			break
		}
		_, _ = reg.Apply(regCmd("fuzz-new-id", "fuzz-new-name", "10.0.0.1"))
	})
}
