package membership

import (
	"bytes"
	"math"
	"strings"
	"testing"

	"github.com/ssi-cluster/ssi/internal/load"
)

var testVector = load.Vector{RunQueue: 3, Load1: 2.5, Load5: 1.25, Load15: 0.5, CPUUse: 0.75, Cores: 8,
	Speed: 1234, MemTotal: 16 << 30, MemFree: 9 << 30, Procs: 42, Stamp: 1_700_000_000_123_456_789}

func TestLoadMessageRoundTrip(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		id string
		v  load.Vector
	}{
		{"3f2a9c1d7e5b4a60", testVector},
		{"a", load.Vector{Cores: 1, Speed: 1}},
		{strings.Repeat("z", 255), load.Vector{RunQueue: math.MaxUint32, Load1: math.MaxFloat64, CPUUse: 1,
			Cores: math.MaxUint32, Speed: math.MaxUint32, MemTotal: math.MaxUint64, MemFree: math.MaxUint64,
			Procs: math.MaxUint32, Stamp: math.MinInt64}},
	} {
		b, err := encodeLoad(tc.id, tc.v)
		if err != nil {
			t.Fatalf("encodeLoad(%q): %v", tc.id, err)
		}
		if b[0] != msgLoad || int(b[1]) != len(tc.id) || string(b[2:2+len(tc.id)]) != tc.id {
			t.Fatalf("encodeLoad(%q) header % x", tc.id, b[:2])
		}
		id, v, err := decodeLoad(b)
		if err != nil {
			t.Fatalf("decodeLoad: %v", err)
		}
		if id != tc.id || v != tc.v {
			t.Fatalf("round trip = %q %+v, want %q %+v", id, v, tc.id, tc.v)
		}
	}
}

func TestEncodeLoadErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, id string
		v        load.Vector
	}{
		{"empty id", "", testVector},
		{"id too long", strings.Repeat("a", 256), testVector},
		{"invalid vector", "a", load.Vector{}}, // no cores
		{"NaN load", "a", load.Vector{Cores: 1, Speed: 1, Load1: math.NaN()}},
	} {
		if b, err := encodeLoad(tc.id, tc.v); err == nil {
			t.Errorf("%s: encodeLoad = % x, want an error", tc.name, b)
		}
	}
}

func TestDecodeLoadErrors(t *testing.T) {
	t.Parallel()
	good, err := encodeLoad("node", testVector)
	if err != nil {
		t.Fatal(err)
	}
	mod := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	for _, tc := range []struct {
		name string
		b    []byte
		want string
	}{
		{"nil", nil, "too short"},
		{"one byte", []byte{msgLoad}, "too short"},
		{"wrong type", mod(func(b []byte) []byte { b[0] = 2; return b }), "unknown type 2"},
		{"zero id length", mod(func(b []byte) []byte { b[1] = 0; return b }), "bad node id length"},
		{"id longer than message", []byte{msgLoad, 10, 'a', 'b'}, "bad node id length"},
		{"no vector", good[:2+4], "length 0"},
		{"short vector", good[:len(good)-1], "length"},
		{"trailing byte", append(append([]byte(nil), good...), 0), "length"},
		{"id length off by one", mod(func(b []byte) []byte { b[1] = 5; return b }), "length"},
		{"bad vector version", mod(func(b []byte) []byte { b[2+4] = 9; return b }), "unknown version"},
	} {
		id, v, err := decodeLoad(tc.b)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: decodeLoad = %q, %+v, %v; want an error with %q", tc.name, id, v, err, tc.want)
		}
	}
}

func TestLoadBroadcastInvalidates(t *testing.T) {
	t.Parallel()
	a1 := &loadBroadcast{id: "a", msg: []byte{1}}
	a2 := &loadBroadcast{id: "a", msg: []byte{2}}
	b := &loadBroadcast{id: "b", msg: []byte{3}}
	if !a2.Invalidates(a1) || !a1.Invalidates(a2) {
		t.Error("a vector of a node does not invalidate an older one of the same node")
	}
	if a1.Invalidates(b) || b.Invalidates(a1) {
		t.Error("vectors of different nodes invalidate each other")
	}
	if !bytes.Equal(a2.Message(), []byte{2}) {
		t.Error("Message")
	}
	a1.Finished()
}

// FuzzDecodeLoad checks that decodeLoad never panics and that a message it
// accepts re-encodes to exactly the same bytes.
func FuzzDecodeLoad(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{msgLoad, 1, 'a'})
	for _, id := range []string{"a", "3f2a9c1d7e5b4a60"} {
		b, err := encodeLoad(id, testVector)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		id, v, err := decodeLoad(b)
		if err != nil {
			return
		}
		again, err := encodeLoad(id, v)
		if err != nil {
			t.Fatalf("decoded %q %+v from % x does not encode: %v", id, v, b, err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("re-encoding gives % x, want % x", again, b)
		}
	})
}
