package pki

import (
	"crypto/tls"
	"net"
	"strings"
	"testing"
	"time"
)

// handshakeResult is what each side of a test connection saw.
type handshakeResult struct {
	state tls.ConnectionState
	err   error
}

// handshake connects a client with clientCfg to a server with serverCfg over
// loopback TCP. The server writes one byte after a good handshake and the
// client reads it, so that a client certificate the server rejects (which
// TLS 1.3 reports only after the client's handshake is done) shows up as
// a client error too.
func handshake(t *testing.T, serverCfg, clientCfg *tls.Config) (server, client handshakeResult) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	deadline := time.Now().Add(10 * time.Second)

	done := make(chan handshakeResult, 1)
	go func() {
		raw, err := ln.Accept()
		if err != nil {
			done <- handshakeResult{err: err}
			return
		}
		defer raw.Close()
		raw.SetDeadline(deadline)
		conn := tls.Server(raw, serverCfg)
		if err := conn.Handshake(); err != nil {
			done <- handshakeResult{err: err}
			return
		}
		_, err = conn.Write([]byte{'x'})
		done <- handshakeResult{state: conn.ConnectionState(), err: err}
	}()

	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	raw.SetDeadline(deadline)
	conn := tls.Client(raw, clientCfg)
	client.err = conn.Handshake()
	if client.err == nil {
		_, client.err = conn.Read(make([]byte, 1))
		client.state = conn.ConnectionState()
	}
	raw.Close() // unblocks the server if the client failed first
	return <-done, client
}

// node is the TLS material of one test node.
type node struct{ cert, key []byte }

func TestMutualTLS(t *testing.T) {
	ca := testCA(t, "a")
	alice, bob := issue(t, ca, "alice"), issue(t, ca, "bob")

	server, client := handshake(t, serverCfg(t, alice, ca, false), clientCfg(t, bob, ca))
	if server.err != nil || client.err != nil {
		t.Fatalf("handshake: server %v, client %v", server.err, client.err)
	}
	if id, ok := PeerNodeID(server.state); id != "bob" || !ok {
		t.Errorf("server: PeerNodeID = %q, %v; want bob, true", id, ok)
	}
	if id, ok := PeerNodeID(client.state); id != "alice" || !ok {
		t.Errorf("client: PeerNodeID = %q, %v; want alice, true", id, ok)
	}
	if n := len(server.state.PeerCertificates); n == 0 {
		t.Error("server saw no client certificate")
	}
	if n := len(client.state.PeerCertificates); n != 2 {
		t.Errorf("server presented %d certificates, want 2 (node, CA)", n)
	}
}

func TestBundleTLS(t *testing.T) {
	b := testBundle(t, "solo")
	scfg, err := b.ServerTLS(false)
	if err != nil {
		t.Fatal(err)
	}
	ccfg, err := b.ClientTLS()
	if err != nil {
		t.Fatal(err)
	}
	server, client := handshake(t, scfg, ccfg)
	if server.err != nil || client.err != nil {
		t.Fatalf("handshake: server %v, client %v", server.err, client.err)
	}
}

func TestForeignCARefused(t *testing.T) {
	ours, theirs := testCA(t, "ours"), testCA(t, "theirs")
	member, stranger := issue(t, ours, "member"), issue(t, theirs, "stranger")
	strangerPair, err := tls.X509KeyPair(stranger.cert, stranger.key)
	if err != nil {
		t.Fatal(err)
	}

	// The stranger trusts our CA, so any failure is the member refusing it.
	// It sends its certificate even though the server asks for one from our
	// CA (crypto/tls would otherwise send none, which the join port accepts).
	t.Run("client from another CA", func(t *testing.T) {
		cfg := &tls.Config{
			GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &strangerPair, nil },
			RootCAs:              ours.Pool(),
			ServerName:           ServerName,
		}
		for _, allow := range []bool{false, true} {
			server, client := handshake(t, serverCfg(t, member, ours, allow), cfg)
			if server.err == nil || !strings.Contains(server.err.Error(), "certificate") {
				t.Errorf("allowUnauthenticated=%v: server error = %v, want a certificate error", allow, server.err)
			}
			if client.err == nil {
				t.Errorf("allowUnauthenticated=%v: client saw no error", allow)
			}
		}
	})
	t.Run("server from another CA", func(t *testing.T) {
		cfg := &tls.Config{Certificates: []tls.Certificate{strangerPair}, ClientCAs: ours.Pool(), ClientAuth: tls.RequireAndVerifyClientCert}
		server, client := handshake(t, cfg, clientCfg(t, member, ours))
		if client.err == nil || !strings.Contains(client.err.Error(), "certificate") {
			t.Errorf("client error = %v, want a certificate error", client.err)
		}
		if server.err == nil {
			t.Error("server saw no error")
		}
	})
}

func TestNoClientCert(t *testing.T) {
	ca := testCA(t, "a")
	member := issue(t, ca, "member")
	anon := &tls.Config{RootCAs: ca.Pool(), ServerName: ServerName, MinVersion: tls.VersionTLS13}

	server, client := handshake(t, serverCfg(t, member, ca, false), anon)
	if server.err == nil || client.err == nil {
		t.Errorf("required client cert: handshake succeeded (server %v, client %v)", server.err, client.err)
	}

	server, client = handshake(t, serverCfg(t, member, ca, true), anon)
	if server.err != nil || client.err != nil {
		t.Fatalf("optional client cert: server %v, client %v", server.err, client.err)
	}
	if id, ok := PeerNodeID(server.state); ok || id != "" {
		t.Errorf("PeerNodeID = %q, %v; want \"\", false", id, ok)
	}
}

func TestJoinClientTLS(t *testing.T) {
	ca, other := testCA(t, "a"), testCA(t, "b")
	member := issue(t, ca, "member")

	server, client := handshake(t, serverCfg(t, member, ca, true), JoinClientTLS(ca.Sum()))
	if server.err != nil || client.err != nil {
		t.Fatalf("right sum: server %v, client %v", server.err, client.err)
	}
	if _, ok := PeerNodeID(server.state); ok {
		t.Error("server: joiner has a verified certificate")
	}

	_, client = handshake(t, serverCfg(t, member, ca, true), JoinClientTLS(other.Sum()))
	want := "server's CA does not match the join token (want sha256:"
	if client.err == nil || !strings.Contains(client.err.Error(), want) {
		t.Errorf("wrong sum: client error = %v, want it to contain %q", client.err, want)
	}

	// An impostor that presents the real CA certificate after its own
	// leaf must still be refused: the leaf does not verify against it.
	impostor := issue(t, other, "impostor")
	cfg := serverCfg(t, impostor, other, true)
	cfg.Certificates[0].Certificate = [][]byte{cfg.Certificates[0].Certificate[0], ca.Cert.Raw}
	_, client = handshake(t, cfg, JoinClientTLS(ca.Sum()))
	if client.err == nil || !strings.Contains(client.err.Error(), "not valid for the join token's CA") {
		t.Errorf("impostor: client error = %v, want a verification error", client.err)
	}
}

func TestServerTLSRejectsForeignCert(t *testing.T) {
	ours, theirs := testCA(t, "ours"), testCA(t, "theirs")
	stranger := issue(t, theirs, "stranger")
	if _, err := ServerTLS(stranger.cert, stranger.key, ours.Pool(), false); err == nil {
		t.Error("ServerTLS accepted a certificate from another CA")
	}
	if _, err := ClientTLS(stranger.cert, stranger.key, ours.Pool()); err == nil {
		t.Error("ClientTLS accepted a certificate from another CA")
	}
	member := issue(t, ours, "member")
	if _, err := ServerTLS(member.cert, stranger.key, ours.Pool(), false); err == nil {
		t.Error("ServerTLS accepted a key that does not match the certificate")
	}
}

func issue(t *testing.T, ca *CA, id string) node {
	cert, key := testNode(t, ca, id)
	return node{cert, key}
}

func serverCfg(t *testing.T, n node, ca *CA, allowUnauthenticated bool) *tls.Config {
	t.Helper()
	cfg, err := ServerTLS(n.cert, n.key, ca.Pool(), allowUnauthenticated)
	if err != nil {
		t.Fatalf("ServerTLS: %v", err)
	}
	return cfg
}

func clientCfg(t *testing.T, n node, ca *CA) *tls.Config {
	t.Helper()
	cfg, err := ClientTLS(n.cert, n.key, ca.Pool())
	if err != nil {
		t.Fatalf("ClientTLS: %v", err)
	}
	return cfg
}
