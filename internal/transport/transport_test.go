package transport

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ssi-cluster/ssi/internal/pki"
)

// call is one handler invocation seen by fakeHandler.
type call struct {
	method string
	peer   string
	hasID  bool
	req    any
}

// fakeHandler records every call it serves.
type fakeHandler struct {
	mu    sync.Mutex
	calls []call
	fail  error // returned by Forward when set
}

func (h *fakeHandler) record(ctx context.Context, method string, req any) {
	id, ok := PeerFrom(ctx)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls = append(h.calls, call{method: method, peer: id, hasID: ok, req: req})
}

func (h *fakeHandler) Calls() []call {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]call(nil), h.calls...)
}

func (h *fakeHandler) Join(ctx context.Context, r *JoinRequest) (*JoinResponse, error) {
	h.record(ctx, "Join", r)
	return &JoinResponse{Cluster: "test", Number: 7, Peers: []string{"127.0.0.1:7946"}}, nil
}

func (h *fakeHandler) Admit(ctx context.Context, r *AdmitRequest) (*JoinResponse, error) {
	h.record(ctx, "Admit", r)
	return &JoinResponse{Cluster: "test", Number: 8}, nil
}

func (h *fakeHandler) Renew(ctx context.Context, r *RenewRequest) (*RenewResponse, error) {
	h.record(ctx, "Renew", r)
	return &RenewResponse{CertPEM: []byte("renewed")}, nil
}

func (h *fakeHandler) Forward(ctx context.Context, r *ForwardRequest) (*ForwardResponse, error) {
	h.record(ctx, "Forward", r)
	if h.fail != nil {
		return nil, h.fail
	}
	return &ForwardResponse{Result: append([]byte("ok:"), r.Command...)}, nil
}

func (h *fakeHandler) Ping(ctx context.Context, r *PingRequest) (*PingResponse, error) {
	h.record(ctx, "Ping", r)
	return &PingResponse{NodeID: "server-node", Number: 1}, nil
}

func (h *fakeHandler) Procs(ctx context.Context, r *ProcsRequest) (*ProcsResponse, error) {
	h.record(ctx, "Procs", r)
	return &ProcsResponse{}, nil
}

func (h *fakeHandler) Signal(ctx context.Context, r *SignalRequest) (*SignalResponse, error) {
	h.record(ctx, "Signal", r)
	return &SignalResponse{}, nil
}

// Exec echoes every message back, upper-cased, until the client closes.
func (h *fakeHandler) Exec(s Stream) error {
	h.record(s.Context(), "Exec", nil)
	for {
		var m binMsg
		if err := s.RecvMsg(&m); err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
		m = binMsg(bytes.ToUpper(m))
		if err := s.SendMsg(&m); err != nil {
			return err
		}
	}
}

func (h *fakeHandler) Migrate(s Stream) error { return h.Exec(s) }
func (h *fakeHandler) Dump(s Stream) error    { return h.Exec(s) }

func (h *fakeHandler) Move(ctx context.Context, r *MoveRequest) (*MoveResponse, error) {
	h.record(ctx, "Move", r)
	return &MoveResponse{}, h.fail
}

func (h *fakeHandler) Moved(ctx context.Context, r *MovedRequest) (*MovedResponse, error) {
	h.record(ctx, "Moved", r)
	return &MovedResponse{}, h.fail
}

func (h *fakeHandler) Presence(Stream) error { return nil }

func (h *fakeHandler) MoveOutcome(ctx context.Context, r *MoveOutcomeRequest) (*MoveOutcomeResponse, error) {
	h.record(ctx, "MoveOutcome", r)
	return &MoveOutcomeResponse{}, h.fail
}

// binMsg is a stream message with its own binary encoding.
type binMsg []byte

func (m *binMsg) MarshalBinary() ([]byte, error) { return *m, nil }
func (m *binMsg) UnmarshalBinary(b []byte) error { *m = b; return nil }

// cluster is a CA with a server and a client certificate.
type cluster struct {
	ca                    *pki.CA
	serverCert, serverKey []byte
	clientCert, clientKey []byte
}

func newCluster(t testing.TB, name string) *cluster {
	t.Helper()
	ca, err := pki.NewCA(name)
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{ca: ca}
	ips := []net.IP{net.ParseIP("127.0.0.1")}
	if c.serverCert, c.serverKey, err = ca.IssueNode("server-node", ips, 0); err != nil {
		t.Fatal(err)
	}
	if c.clientCert, c.clientKey, err = ca.IssueNode("client-node", ips, 0); err != nil {
		t.Fatal(err)
	}
	return c
}

func (c *cluster) clientTLS(t testing.TB) *tls.Config {
	t.Helper()
	conf, err := pki.ClientTLS(c.clientCert, c.clientKey, c.ca.Pool())
	if err != nil {
		t.Fatal(err)
	}
	return conf
}

// client is a client of addr on channel ch with the cluster's client
// certificate, its pool closed when the test ends.
func (c *cluster) client(t testing.TB, addr string, ch Channel) *Client {
	t.Helper()
	pool := NewPool(c.clientTLS(t))
	t.Cleanup(pool.Close)
	cl, err := pool.Client(addr, ch)
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// startServer serves h with the cluster's server certificate on a random
// loopback port and returns its address.
func startServer(t testing.TB, c *cluster, h Handler) string {
	t.Helper()
	conf, err := pki.ServerTLS(c.serverCert, c.serverKey, c.ca.Pool(), true)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(conf, h)
	done := make(chan error, 1)
	go func() { done <- Serve(s, l) }()
	t.Cleanup(func() {
		s.Stop()
		if err := <-done; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			t.Errorf("Serve: %v", err)
		}
	})
	return l.Addr().String()
}

func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestPoolClientAuthenticated(t *testing.T) {
	t.Parallel()
	c := newCluster(t, "a")
	h := &fakeHandler{}
	addr := startServer(t, c, h)
	pool := NewPool(c.clientTLS(t))
	defer pool.Close()

	for _, ch := range []Channel{Control, Bulk} {
		cl, err := pool.Client(addr, ch)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := cl.Ping(ctxT(t))
		if err != nil {
			t.Fatalf("Ping on channel %d: %v", ch, err)
		}
		if resp.NodeID != "server-node" || resp.Number != 1 {
			t.Fatalf("Ping = %+v", resp)
		}
		fr, err := cl.Forward(ctxT(t), &ForwardRequest{Command: []byte(`{"op":"init"}`)})
		if err != nil {
			t.Fatalf("Forward: %v", err)
		}
		if string(fr.Result) != `ok:{"op":"init"}` || fr.Error != "" {
			t.Fatalf("Forward = %+v", fr)
		}
	}
	calls := h.Calls()
	if len(calls) != 4 {
		t.Fatalf("handler saw %d calls, want 4: %+v", len(calls), calls)
	}
	for _, cl := range calls {
		if !cl.hasID || cl.peer != "client-node" {
			t.Errorf("%s: PeerFrom = %q, %v; want client-node", cl.method, cl.peer, cl.hasID)
		}
	}
	if fr := calls[1].req.(*ForwardRequest); string(fr.Command) != `{"op":"init"}` {
		t.Errorf("handler got command %q", fr.Command)
	}

	// The pool reuses the connection and re-dials after Forget.
	c1, _ := pool.Client(addr, Control)
	c2, _ := pool.Client(addr, Control)
	if c1.cc != c2.cc {
		t.Error("pool dialed twice for the same peer and channel")
	}
	c3, _ := pool.Client(addr, Bulk)
	if c3.cc == c1.cc {
		t.Error("Control and Bulk share a connection")
	}
	pool.Forget(addr)
	c4, err := pool.Client(addr, Control)
	if err != nil {
		t.Fatal(err)
	}
	if c4.cc == c1.cc {
		t.Error("Forget kept the connection")
	}
	if _, err := c4.Ping(ctxT(t)); err != nil {
		t.Fatalf("Ping after Forget: %v", err)
	}
}

func TestExecStreamBinary(t *testing.T) {
	t.Parallel()
	c := newCluster(t, "a")
	h := &fakeHandler{}
	addr := startServer(t, c, h)
	cl := c.client(t, addr, Bulk)
	s, err := cl.Exec(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte("x"), 1<<20)
	for _, in := range [][]byte{[]byte("hello"), {0, 1, 2, 255}, big} {
		m := binMsg(in)
		if err := s.SendMsg(&m); err != nil {
			t.Fatal(err)
		}
		var out binMsg
		if err := s.RecvMsg(&out); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out, bytes.ToUpper(in)) {
			t.Fatalf("echo of %d bytes: got %d bytes, not the upper-cased input", len(in), len(out))
		}
	}
	if err := s.CloseSend(); err != nil {
		t.Fatal(err)
	}
	var m binMsg
	if err := s.RecvMsg(&m); err != io.EOF {
		t.Fatalf("after CloseSend: %v, want io.EOF", err)
	}
	calls := h.Calls()
	if len(calls) != 1 || calls[0].method != "Exec" || calls[0].peer != "client-node" {
		t.Fatalf("handler saw %+v, want one Exec from client-node", calls)
	}
}

func TestHandlerErrorPassesThrough(t *testing.T) {
	t.Parallel()
	c := newCluster(t, "a")
	h := &fakeHandler{fail: status.Error(codes.FailedPrecondition, "not the leader")}
	addr := startServer(t, c, h)
	cl := c.client(t, addr, Control)
	_, err := cl.Forward(ctxT(t), &ForwardRequest{Command: []byte("x")})
	if status.Code(err) != codes.FailedPrecondition || status.Convert(err).Message() != "not the leader" {
		t.Fatalf("Forward = %v, want FailedPrecondition 'not the leader'", err)
	}
}

func TestClientOfAnotherCARefused(t *testing.T) {
	t.Parallel()
	c := newCluster(t, "a")
	other := newCluster(t, "b")
	h := &fakeHandler{}
	addr := startServer(t, c, h)

	for _, force := range []bool{false, true} {
		// The client presents a certificate of another cluster but trusts
		// this cluster's CA, so only the server's check can refuse it.
		conf := other.clientTLS(t)
		conf.RootCAs = c.ca.Pool()
		if force {
			// Send the certificate even though the server's list of
			// acceptable CAs does not name its issuer (without this, the
			// client sends none and is merely unauthenticated).
			cert := conf.Certificates[0]
			conf.Certificates = nil
			conf.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }
		}
		pool := NewPool(conf)
		cl, err := pool.Client(addr, Control)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if _, err := cl.Ping(ctx); err == nil {
			t.Fatalf("force=%v: Ping with another cluster's certificate succeeded", force)
		} else if !force && status.Code(err) != codes.Unauthenticated {
			t.Errorf("Ping with an unsent foreign certificate = %v, want Unauthenticated", err)
		}
		if _, err := cl.Forward(ctx, &ForwardRequest{Command: []byte("{}")}); err == nil {
			t.Fatalf("force=%v: Forward with another cluster's certificate succeeded", force)
		}
		if force {
			// A certificate that is presented and does not verify fails
			// the handshake: not even Join gets through.
			if _, err := cl.Join(ctx, &JoinRequest{NodeID: "x"}); err == nil || status.Code(err) != codes.Unavailable {
				t.Errorf("Join with a presented foreign certificate = %v, want Unavailable", err)
			}
		}
		cancel()
		pool.Close()
	}
	if calls := h.Calls(); len(calls) != 0 {
		t.Fatalf("handler was called: %+v", calls)
	}
}

func TestServerOfAnotherCARefused(t *testing.T) {
	t.Parallel()
	c := newCluster(t, "a")
	other := newCluster(t, "b")
	h := &fakeHandler{}
	addr := startServer(t, other, h)
	cl := c.client(t, addr, Control)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := cl.Ping(ctx); err == nil {
		t.Fatal("a client pinged a server of another cluster")
	}
	if calls := h.Calls(); len(calls) != 0 {
		t.Fatalf("handler was called: %+v", calls)
	}
}

func TestJoinClient(t *testing.T) {
	t.Parallel()
	c := newCluster(t, "a")
	h := &fakeHandler{}
	addr := startServer(t, c, h)
	cl, err := DialJoin(addr, pki.JoinClientTLS(c.ca.Sum()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()

	resp, err := cl.Join(ctxT(t), &JoinRequest{NodeID: "new-node-123", Name: "n", Secret: make([]byte, 16)})
	if err != nil {
		t.Fatalf("Join: %v", err)
	}
	if resp.Cluster != "test" || resp.Number != 7 || len(resp.Peers) != 1 {
		t.Fatalf("Join = %+v", resp)
	}
	if _, err := cl.Ping(ctxT(t)); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("Ping without a certificate = %v, want Unauthenticated", err)
	}
	if _, err := cl.Forward(ctxT(t), &ForwardRequest{Command: []byte("{}")}); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("Forward without a certificate = %v, want Unauthenticated", err)
	}
	calls := h.Calls()
	if len(calls) != 1 || calls[0].method != "Join" {
		t.Fatalf("handler calls %+v, want only Join", calls)
	}
	if calls[0].hasID {
		t.Fatalf("Join without a certificate has a peer ID %q", calls[0].peer)
	}
	if jr := calls[0].req.(*JoinRequest); jr.NodeID != "new-node-123" || len(jr.Secret) != 16 {
		t.Fatalf("handler got %+v", jr)
	}
}

func TestJoinClientWrongCASum(t *testing.T) {
	t.Parallel()
	c := newCluster(t, "a")
	other := newCluster(t, "b")
	h := &fakeHandler{}
	addr := startServer(t, c, h)
	for name, sum := range map[string][32]byte{"other CA": other.ca.Sum(), "zero": {}} {
		cl, err := DialJoin(addr, pki.JoinClientTLS(sum))
		if err != nil {
			continue // refused at dial: fine
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err = cl.Join(ctx, &JoinRequest{NodeID: "x"})
		cancel()
		cl.Close()
		if err == nil {
			t.Fatalf("%s: Join with a wrong CA pin succeeded", name)
		}
	}
	if calls := h.Calls(); len(calls) != 0 {
		t.Fatalf("handler was called: %+v", calls)
	}
}

// rawCodec sends bytes as they are, to put malformed payloads on the wire.
type rawCodec struct{}

func (rawCodec) Name() string { return "raw" }
func (rawCodec) Marshal(v any) ([]byte, error) {
	return v.([]byte), nil
}
func (rawCodec) Unmarshal(data []byte, v any) error {
	*(v.(*[]byte)) = append([]byte(nil), data...)
	return nil
}

// malformed lists requests whose payload does not decode.
var malformed = []struct {
	name, method, payload string
	join                  bool // sent without a certificate
}{
	{"invalid json", MethodForward, `{"command":`, false},
	{"binary", MethodPing, "\x00\xff\xfe", false},
	{"wrong field type", MethodForward, `{"command":5}`, false},
	{"array", MethodPing, `[1,2]`, false},
	{"join without certificate", MethodJoin, `{"secret":"not base64!"}`, true},
}

// malformedSetup starts a server and returns a certified and a join client.
func malformedSetup(t *testing.T) (h *fakeHandler, cl, joinCl *Client) {
	t.Helper()
	c := newCluster(t, "a")
	h = &fakeHandler{}
	addr := startServer(t, c, h)
	cl = c.client(t, addr, Control)
	joinCl, err := DialJoin(addr, pki.JoinClientTLS(c.ca.Sum()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { joinCl.Close() })
	return h, cl, joinCl
}

func TestMalformedPayloadKeepsServing(t *testing.T) {
	t.Parallel()
	h, cl, joinCl := malformedSetup(t)
	for _, tc := range malformed {
		via := cl
		if tc.join {
			via = joinCl
		}
		var out []byte
		err := via.cc.Invoke(ctxT(t), tc.method, []byte(tc.payload), &out, grpc.ForceCodec(rawCodec{}))
		if code := status.Code(err); code == codes.OK || code == codes.Unavailable {
			t.Errorf("%s: Invoke = %v, want the call refused", tc.name, err)
		}
		// The server keeps serving, on the same connections.
		if _, err := cl.Ping(ctxT(t)); err != nil {
			t.Fatalf("%s: Ping after a malformed call: %v", tc.name, err)
		}
		if _, err := joinCl.Join(ctxT(t), &JoinRequest{NodeID: "after"}); err != nil {
			t.Fatalf("%s: Join after a malformed call: %v", tc.name, err)
		}
	}
	calls := h.Calls()
	if len(calls) != 2*len(malformed) {
		t.Errorf("handler saw %d calls, want the %d good ones", len(calls), 2*len(malformed))
	}
	for _, c := range calls {
		if c.method == "Forward" {
			t.Errorf("handler saw a malformed Forward")
		}
		if jr, ok := c.req.(*JoinRequest); ok && jr.NodeID != "after" {
			t.Errorf("handler saw a malformed Join: %+v", jr)
		}
	}

	// An unknown method is refused without reaching the handler.
	var out []byte
	if err := cl.cc.Invoke(ctxT(t), "/ssi.v1.Cluster/Nope", []byte(`{}`), &out, grpc.ForceCodec(rawCodec{})); status.Code(err) != codes.Unimplemented {
		t.Errorf("unknown method = %v, want Unimplemented", err)
	}
}

// TestMalformedPayloadInvalidArgument: service.go promises InvalidArgument
// for a request that does not decode.
func TestMalformedPayloadInvalidArgument(t *testing.T) {
	// grpc (v1.85) runs unary methods through serverStream.RecvMsg, which
	// on a codec error writes status Internal ("grpc: failed to unmarshal
	// the received message") to the stream itself before returning; the
	// InvalidArgument that unary() returns afterwards never reaches the
	// client.
	t.Parallel()
	_, cl, joinCl := malformedSetup(t)
	for _, tc := range malformed {
		via := cl
		if tc.join {
			via = joinCl
		}
		var out []byte
		err := via.cc.Invoke(ctxT(t), tc.method, []byte(tc.payload), &out, grpc.ForceCodec(rawCodec{}))
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("%s: Invoke = %v, want InvalidArgument", tc.name, err)
		}
	}
}

func TestPeerFromEmptyContext(t *testing.T) {
	t.Parallel()
	if id, ok := PeerFrom(context.Background()); ok || id != "" {
		t.Fatalf("PeerFrom(background) = %q, %v", id, ok)
	}
}
