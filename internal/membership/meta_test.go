package membership

import (
	"strings"
	"testing"

	"github.com/hashicorp/memberlist"
)

func TestMetaEncodeDecode(t *testing.T) {
	t.Parallel()
	for _, m := range []Meta{
		{Name: "node1", Number: 3, RPCPort: 7947, RaftPort: 7948, Incarnation: 7},
		{Name: "n", RPCPort: 1, RaftPort: 65535}, // number 0: not registered yet
		{Name: strings.Repeat("x", 63), Number: 1 << 30, RPCPort: 65535, RaftPort: 1, Incarnation: 1<<64 - 1},
	} {
		b, err := m.Encode()
		if err != nil {
			t.Fatalf("Encode(%+v): %v", m, err)
		}
		if len(b) > memberlist.MetaMaxSize {
			t.Fatalf("Encode(%+v) is %d bytes", m, len(b))
		}
		got, err := DecodeMeta(b)
		if err != nil {
			t.Fatalf("DecodeMeta(%s): %v", b, err)
		}
		if got != m {
			t.Fatalf("round trip %+v, want %+v", got, m)
		}
	}
}

func TestMetaEncodeTooLong(t *testing.T) {
	t.Parallel()
	m := Meta{Name: strings.Repeat("a", memberlist.MetaMaxSize), RPCPort: 1, RaftPort: 2}
	if _, err := m.Encode(); err == nil || !strings.Contains(err.Error(), "over memberlist's") {
		t.Fatalf("Encode of an oversized meta: %v", err)
	}
}

func TestDecodeMeta(t *testing.T) {
	t.Parallel()
	long := `{"n":"` + strings.Repeat("a", memberlist.MetaMaxSize) + `","rpc":1,"raft":2}`
	for _, tc := range []struct {
		name, in string
		want     Meta
		err      string // "" means success
	}{
		{"valid", `{"n":"node1","num":2,"rpc":7947,"raft":7948,"inc":5}`,
			Meta{Name: "node1", Number: 2, RPCPort: 7947, RaftPort: 7948, Incarnation: 5}, ""},
		{"unknown fields ignored", `{"n":"a","rpc":1,"raft":2,"future":true}`, Meta{Name: "a", RPCPort: 1, RaftPort: 2}, ""},
		{"empty", ``, Meta{}, "empty"},
		{"too long", long, Meta{}, "over 512"},
		{"exactly at the limit", `{"n":"` + strings.Repeat("a", memberlist.MetaMaxSize-len(`{"n":"","rpc":1,"raft":2}`)) + `","rpc":1,"raft":2}`,
			Meta{Name: strings.Repeat("a", memberlist.MetaMaxSize-len(`{"n":"","rpc":1,"raft":2}`)), RPCPort: 1, RaftPort: 2}, ""},
		{"bad json", `{"n":`, Meta{}, "node meta:"},
		{"not an object", `[1]`, Meta{}, "node meta:"},
		{"wrong type", `{"n":5,"rpc":1,"raft":2}`, Meta{}, "node meta:"},
		{"null", `null`, Meta{}, "no name"},
		{"no name", `{"rpc":1,"raft":2}`, Meta{}, "no name"},
		{"empty name", `{"n":"","rpc":1,"raft":2}`, Meta{}, "no name"},
		{"rpc 0", `{"n":"a","rpc":0,"raft":2}`, Meta{}, "bad ports"},
		{"rpc missing", `{"n":"a","raft":2}`, Meta{}, "bad ports"},
		{"raft too big", `{"n":"a","rpc":1,"raft":65536}`, Meta{}, "bad ports"},
		{"rpc negative", `{"n":"a","rpc":-1,"raft":2}`, Meta{}, "bad ports"},
		{"negative number", `{"n":"a","num":-1,"rpc":1,"raft":2}`, Meta{}, "bad number"},
		{"negative incarnation", `{"n":"a","rpc":1,"raft":2,"inc":-1}`, Meta{}, "node meta:"},
	} {
		got, err := DecodeMeta([]byte(tc.in))
		if tc.err == "" {
			if err != nil || got != tc.want {
				t.Errorf("%s: DecodeMeta = %+v, %v; want %+v", tc.name, got, err, tc.want)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%s: DecodeMeta error %v, want one containing %q", tc.name, err, tc.err)
		}
	}
}

// FuzzDecodeMeta checks that DecodeMeta never panics, that what it accepts
// obeys its rules, and that re-encoding an accepted meta (when it still fits)
// decodes to the same meta.
func FuzzDecodeMeta(f *testing.F) {
	f.Add([]byte(`{"n":"node1","num":2,"rpc":7947,"raft":7948,"inc":5}`))
	f.Add([]byte(`{"n":"a","rpc":1,"raft":65535}`))
	f.Add([]byte(`{"n":"\u00e9\ud800","rpc":1,"raft":2}`))
	f.Add([]byte(`{"n":"a","num":-1,"rpc":1,"raft":2}`))
	f.Add([]byte(``))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeMeta(b)
		if err != nil {
			return
		}
		if m.Name == "" || m.Number < 0 || m.RPCPort < 1 || m.RPCPort > 65535 || m.RaftPort < 1 || m.RaftPort > 65535 {
			t.Fatalf("DecodeMeta(%q) accepted %+v", b, m)
		}
		enc, err := m.Encode()
		if err != nil {
			// Escaping can make a valid name longer than the limit.
			return
		}
		again, err := DecodeMeta(enc)
		if err != nil || again != m {
			t.Fatalf("re-decode of %s = %+v, %v; want %+v", enc, again, err, m)
		}
	})
}
