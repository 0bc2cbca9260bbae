package transport

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"strings"
	"testing"

	"google.golang.org/grpc/mem"
)

// byteCodec is the codec with whole byte slices, as the tests give them.
type byteCodec struct{}

func (byteCodec) Name() string { return codec{}.Name() }

func (byteCodec) Marshal(v any) ([]byte, error) {
	bs, err := codec{}.Marshal(v)
	if err != nil {
		return nil, err
	}
	defer bs.Free()
	return bs.Materialize(), nil
}

func (byteCodec) Unmarshal(b []byte, v any) error {
	return codec{}.Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, v)
}

// lentMsg is a stream message that appends itself and borrows its buffer.
type lentMsg struct {
	data    []byte
	grow    int // AppendBinary writes this many bytes more than BinarySize says
	release func()
}

func (m *lentMsg) BinarySize() int { return 4 + len(m.data) }

func (m *lentMsg) AppendBinary(b []byte) ([]byte, error) {
	b = binary.LittleEndian.AppendUint32(b, uint32(len(m.data)+m.grow))
	b = append(b, m.data...)
	return append(b, make([]byte, m.grow)...), nil
}

func (m *lentMsg) UnmarshalBinary(b []byte) error {
	if len(b) < 4 || int(binary.LittleEndian.Uint32(b)) != len(b)-4 {
		return errors.New("bad length")
	}
	m.data = b[4:]
	return nil
}

func (m *lentMsg) Lend(release func()) { m.release = release }

func TestCodecLendsBuffers(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		size int
		grow int
	}{
		{"small", 10, 0},
		{"one MiB", 1 << 20, 0},
		{"outgrows its buffer", 5000, 1 << 16},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := &lentMsg{data: bytes.Repeat([]byte{7}, tc.size), grow: tc.grow}
			bs, err := codec{}.Marshal(in)
			if err != nil {
				t.Fatal(err)
			}
			out := new(lentMsg)
			if err := (codec{}).Unmarshal(bs, out); err != nil {
				t.Fatal(err)
			}
			bs.Free()
			if len(out.data) != tc.size+tc.grow || !bytes.Equal(out.data[:tc.size], in.data) {
				t.Fatalf("decoded %d bytes, want %d", len(out.data), tc.size+tc.grow)
			}
			if out.release == nil {
				t.Fatal("the decoded message was not lent its buffer")
			}
			out.release()
		})
	}
	bad := &lentMsg{}
	if err := (codec{}).Unmarshal(mem.BufferSlice{mem.SliceBuffer{1}}, bad); err == nil || bad.release != nil {
		t.Fatalf("a message that does not decode: err %v, lent %v", err, bad.release != nil)
	}
}

func TestCodec(t *testing.T) {
	t.Parallel()
	c := byteCodec{}
	if c.Name() != "ssijson" {
		t.Fatalf("Name = %q", c.Name())
	}
	in := &JoinRequest{Secret: []byte{1, 2, 3}, NodeID: "n", Name: "x", Addr: "10.0.0.1", GossipPort: 1,
		RPCPort: 2, RaftPort: 3, CSR: []byte("csr")}
	b, err := c.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	out := new(JoinRequest)
	if err := c.Unmarshal(b, out); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("round trip %+v, want %+v", out, in)
	}
	if err := c.Unmarshal([]byte("{"), out); err == nil || !strings.Contains(err.Error(), "malformed message") {
		t.Fatalf("Unmarshal of bad JSON: %v", err)
	}
	big := append(append([]byte(`{"command":"`), bytes.Repeat([]byte("A"), MaxMessage)...), `"}`...)
	if err := c.Unmarshal(big, new(ForwardRequest)); err == nil || !strings.Contains(err.Error(), "exceeds") {
		t.Fatalf("Unmarshal of an oversized message: %v", err)
	}
}

// FuzzCodecUnmarshal decodes arbitrary bytes into every message type. It
// must never panic, and whatever decodes must re-encode to a fixed point.
func FuzzCodecUnmarshal(f *testing.F) {
	f.Add([]byte(`{"secret":"AAECAwQFBgcICQoLDA0ODw==","node_id":"3f2a9c1d7e5b4a60","name":"node2","addr":"10.0.0.2","gossip_port":7946,"rpc_port":7947,"raft_port":7948,"csr":"MIIB"}`))
	f.Add([]byte(`{"cluster":"prod","number":2,"cert_pem":"LS0t","ca_cert_pem":null,"gossip_key":"","token":"ssi1.x.y","peers":["10.0.0.1:7946"]}`))
	f.Add([]byte(`{"command":"eyJvcCI6ImluaXQifQ=="}`))
	f.Add([]byte(`{"result":"MQ==","error":"not the leader"}`))
	f.Add([]byte(`{"node_id":"a","number":-1}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"secret":"not base64"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c := byteCodec{}
		for _, mk := range []func() any{
			func() any { return new(JoinRequest) }, func() any { return new(JoinResponse) },
			func() any { return new(ForwardRequest) }, func() any { return new(ForwardResponse) },
			func() any { return new(PingRequest) }, func() any { return new(PingResponse) },
		} {
			v := mk()
			if err := c.Unmarshal(data, v); err != nil {
				continue
			}
			b1, err := c.Marshal(v)
			if err != nil {
				t.Fatalf("%T decoded from %q does not encode: %v", v, data, err)
			}
			w := mk()
			if err := c.Unmarshal(b1, w); err != nil {
				t.Fatalf("%T: re-decode of %s: %v", v, b1, err)
			}
			b2, err := c.Marshal(w)
			if err != nil || !bytes.Equal(b1, b2) {
				t.Fatalf("%T: not a fixed point:\n%s\n%s (%v)", v, b1, b2, err)
			}
		}
	})
}

func TestPoolClasses(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ n, cap int }{
		{0, 256}, {1, 256}, {256, 256}, {257, 512}, {1 << 20, 1 << 20}, {1<<20 + 9, 2 << 20}, {4 << 20, 4 << 20}, {4<<20 + 1, 4<<20 + 1},
	} {
		b := bufPool.Get(tc.n)
		if len(*b) != tc.n || cap(*b) != tc.cap {
			t.Errorf("Get(%d): len %d cap %d, want len %d cap %d", tc.n, len(*b), cap(*b), tc.n, tc.cap)
		}
		bufPool.Put(b)
	}
}
