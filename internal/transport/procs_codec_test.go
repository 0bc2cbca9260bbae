package transport

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/ssi-cluster/ssi/internal/api"
)

func TestProcsResponseBinary(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   ProcsResponse
	}{
		{"empty", ProcsResponse{Procs: []api.Proc{}}},
		{"two", ProcsResponse{Procs: []api.Proc{
			{CPID: 4194305, Node: 1, Pid: 1, UID: 0, User: "root", State: "S", CPU: 0.5, RSS: 1 << 20, Time: 1.25, Threads: 3, Command: "init"},
			{CPID: 8388620, Node: 2, Pid: 12, PPid: 1, PGid: 12, PCPID: 4194310, UID: 65534, User: "nobody", State: "R",
				Command: "sh -c 'echo é'", Threads: 1},
		}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := tc.in.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			var out ProcsResponse
			if err := out.UnmarshalBinary(b); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(out, tc.in) {
				t.Errorf("round trip: got %+v, want %+v", out, tc.in)
			}
			for cut := 0; cut < len(b); cut += 1 + len(b)/40 {
				if err := new(ProcsResponse).UnmarshalBinary(b[:cut]); err == nil && cut != len(b) {
					t.Errorf("%d of %d bytes decoded without error", cut, len(b))
				}
			}
		})
	}
}

func FuzzProcsResponse(f *testing.F) {
	b, _ := (&ProcsResponse{Procs: []api.Proc{{CPID: 1, User: "u", State: "S", Command: "c"}}}).MarshalBinary()
	f.Add(b)
	f.Add([]byte("SSIP\xff\xff\xff\xff"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var r ProcsResponse
		if r.UnmarshalBinary(data) != nil {
			return
		}
		again, err := r.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again, data) {
			t.Fatalf("a decoded table encodes to other bytes")
		}
	})
}
