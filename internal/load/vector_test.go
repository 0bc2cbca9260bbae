package load

import (
	"bytes"
	"encoding/binary"
	"math"
	"strings"
	"testing"
)

var goodVector = Vector{
	RunQueue: 3,
	Load1:    2.5,
	Load5:    1.25,
	Load15:   0.5,
	CPUUse:   0.75,
	Cores:    8,
	Speed:    1234,
	MemTotal: 16 << 30,
	MemFree:  9 << 30,
	Procs:    42,
	Stamp:    1_700_000_000_123_456_789,
}

func TestVectorRoundTrip(t *testing.T) {
	for _, v := range []Vector{
		goodVector,
		{Cores: 1, Speed: 1}, // the smallest valid vector
		{RunQueue: math.MaxUint32, Load1: math.MaxFloat64, CPUUse: 1, Cores: math.MaxUint32,
			Speed: math.MaxUint32, MemTotal: math.MaxUint64, MemFree: math.MaxUint64,
			Procs: math.MaxUint32, Stamp: math.MinInt64},
	} {
		b, err := v.MarshalBinary()
		if err != nil {
			t.Fatalf("MarshalBinary(%+v): %v", v, err)
		}
		if len(b) != vectorSize || b[0] != vectorVersion {
			t.Fatalf("MarshalBinary: %d bytes, version %d", len(b), b[0])
		}
		var got Vector
		if err := got.UnmarshalBinary(b); err != nil {
			t.Fatalf("UnmarshalBinary: %v", err)
		}
		if got != v {
			t.Errorf("round trip = %+v, want %+v", got, v)
		}
	}
}

// TestVectorLayout pins the documented wire layout.
func TestVectorLayout(t *testing.T) {
	b, err := goodVector.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	f := func(off int) float64 { return math.Float64frombits(le.Uint64(b[off:])) }
	checks := []struct {
		field     string
		got, want any
	}{
		{"RunQueue", le.Uint32(b[1:]), goodVector.RunQueue},
		{"Load1", f(5), goodVector.Load1},
		{"Load5", f(13), goodVector.Load5},
		{"Load15", f(21), goodVector.Load15},
		{"CPUUse", f(29), goodVector.CPUUse},
		{"Cores", le.Uint32(b[37:]), goodVector.Cores},
		{"Speed", le.Uint32(b[41:]), goodVector.Speed},
		{"MemTotal", le.Uint64(b[45:]), goodVector.MemTotal},
		{"MemFree", le.Uint64(b[53:]), goodVector.MemFree},
		{"Procs", le.Uint32(b[61:]), goodVector.Procs},
		{"Stamp", int64(le.Uint64(b[65:])), goodVector.Stamp},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s at its documented offset = %v, want %v", c.field, c.got, c.want)
		}
	}
}

func TestVectorUnmarshalErrors(t *testing.T) {
	good, err := goodVector.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	patch := func(f func(b []byte)) []byte {
		b := bytes.Clone(good)
		f(b)
		return b
	}
	putF := func(off int, x float64) []byte {
		return patch(func(b []byte) { binary.LittleEndian.PutUint64(b[off:], math.Float64bits(x)) })
	}
	tests := []struct {
		name    string
		in      []byte
		wantErr string
	}{
		{"empty", nil, "load vector: length 0, want 73"},
		{"short", good[:72], "length 72, want 73"},
		{"long", append(bytes.Clone(good), 0), "length 74, want 73"},
		{"version 0", patch(func(b []byte) { b[0] = 0 }), "unknown version 0"},
		{"version 2", patch(func(b []byte) { b[0] = 2 }), "unknown version 2"},
		{"load1 NaN", putF(5, math.NaN()), "load1 NaN"},
		{"load5 +Inf", putF(13, math.Inf(1)), "load5 +Inf"},
		{"load15 -Inf", putF(21, math.Inf(-1)), "load15 -Inf"},
		{"load1 negative", putF(5, -1), "load1 -1 is not a finite non-negative number"},
		{"cpu use negative", putF(29, -0.5), "cpu use -0.5"},
		{"cpu use NaN", putF(29, math.NaN()), "cpu use NaN"},
		{"cpu use too big", putF(29, 3.5), "load vector: cpu use 3.5 out of range [0,1]"},
		{"cores 0", patch(func(b []byte) { binary.LittleEndian.PutUint32(b[37:], 0) }), "cores 0"},
		{"speed 0", patch(func(b []byte) { binary.LittleEndian.PutUint32(b[41:], 0) }), "speed 0"},
		{"mem free above total", patch(func(b []byte) { binary.LittleEndian.PutUint64(b[53:], goodVector.MemTotal+1) }),
			"mem free 17179869185 exceeds mem total 17179869184"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := goodVector
			err := v.UnmarshalBinary(tt.in)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("UnmarshalBinary error = %v, want containing %q", err, tt.wantErr)
			}
			if v != goodVector {
				t.Errorf("UnmarshalBinary changed the vector on error: %+v", v)
			}
		})
	}
}

func TestVectorMarshalRejectsInvalid(t *testing.T) {
	v := goodVector
	v.CPUUse = 1.5
	if _, err := v.MarshalBinary(); err == nil || !strings.Contains(err.Error(), "cpu use 1.5 out of range") {
		t.Errorf("MarshalBinary error = %v", err)
	}
}
