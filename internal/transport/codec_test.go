package transport

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
)

func TestCodec(t *testing.T) {
	t.Parallel()
	c := jsonCodec{}
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
		c := jsonCodec{}
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
