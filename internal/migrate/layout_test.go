package migrate

import (
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/ssi-cluster/ssi/internal/checkpoint"
)

func manyMappings(n int) []checkpoint.Mapping {
	ms := make([]checkpoint.Mapping, n)
	for i := range ms {
		start := uint64(0x10000000) + uint64(i)*0x2000
		ms[i] = checkpoint.Mapping{Start: start, End: start + 0x1000, Prot: checkpoint.ProtRead, Dev: "fe:00",
			Inode: uint64(i), Path: fmt.Sprintf("/usr/lib/x86_64-linux-gnu/libsomething-%d.so.1", i), Kind: checkpoint.KindFilePrivate}
	}
	return ms
}

// TestLayoutParts: a layout that fits is one message, as older agents
// send; one of 65,530 mappings (vm.max_map_count) goes in parts of at
// most MaxData bytes, all but the last marked More, and comes back whole.
func TestLayoutParts(t *testing.T) {
	for _, n := range []int{0, 10, 65530} {
		l := Layout{Pid: 42, Mappings: manyMappings(n)}
		c := chanConn{make(chan []byte, 1024)}
		if err := SendLayout(c, l); err != nil {
			t.Fatal(err)
		}
		parts := len(c.ch)
		if n <= 10 && parts != 1 {
			t.Errorf("%d mappings: %d messages, want 1", n, parts)
		}
		if n == 65530 && parts < 4 {
			t.Errorf("%d mappings: %d messages, want several", n, parts)
		}
		got, err := RecvLayout(c)
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Mappings) == 0 {
			got.Mappings = l.Mappings[:0:0]
		}
		if got.Pid != 42 || !reflect.DeepEqual(got.Mappings, l.Mappings) {
			t.Errorf("%d mappings: got pid %d and %d mappings back", n, got.Pid, len(got.Mappings))
		}
		t.Logf("%d mappings: %d messages", n, parts)
	}
}

// TestRecvLayoutRejects: parts of another pid, another kind where a part
// is due, and more mappings than any process has.
func TestRecvLayoutRejects(t *testing.T) {
	part := func(pid int, n int, more bool) Msg {
		return JSON(KLayout, Layout{Pid: pid, Mappings: manyMappings(n), More: more})
	}
	tests := []struct {
		name string
		msgs []Msg
	}{
		{"another pid", []Msg{part(1, 1, true), part(2, 1, false)}},
		{"another kind", []Msg{part(1, 1, true), Text(KFailed, "x")}},
		{"not JSON", []Msg{{Kind: KLayout, Data: []byte("{")}}},
	}
	for _, tt := range tests {
		c := chanConn{make(chan []byte, 16)}
		for _, m := range tt.msgs {
			c.Send(m)
		}
		if _, err := RecvLayout(c); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", tt.name, err)
		}
	}
	// A peer that says More for ever is cut off at maxLayoutMappings.
	c := chanConn{make(chan []byte, 64)}
	big := part(1, 10000, true)
	go func() {
		for range maxLayoutMappings/10000 + 2 {
			if err := c.Send(big); err != nil {
				panic(err)
			}
		}
	}()
	if _, err := RecvLayout(c); !errors.Is(err, ErrCorrupt) {
		t.Errorf("endless layout: %v, want ErrCorrupt", err)
	}
}
