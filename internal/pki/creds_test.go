package pki

import (
	"crypto/tls"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// credsPair returns the credentials of two members of one cluster.
func credsPair(t *testing.T) (ca *CA, server, client *Creds) {
	t.Helper()
	ca = testCA(t, "creds")
	mk := func(id string) *Creds {
		cert, key := testNode(t, ca, id)
		c, err := NewCreds(ca.CertOnly(), cert, key)
		if err != nil {
			t.Fatalf("NewCreds(%s): %v", id, err)
		}
		return c
	}
	return ca, mk("server-node"), mk("client-node")
}

// serve accepts TLS connections on a tracked listener and echoes.
func serve(t *testing.T, c *Creds) string {
	t.Helper()
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := tls.NewListener(c.Track(raw), c.ServerTLS(false))
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				io.Copy(conn, conn)
			}()
		}
	}()
	return raw.Addr().String()
}

func roundTrip(conn net.Conn) error {
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write([]byte("x")); err != nil {
		return err
	}
	_, err := io.ReadFull(conn, make([]byte, 1))
	return err
}

func TestCredsRevocation(t *testing.T) {
	_, server, client := credsPair(t)
	var removed atomic.Value
	removed.Store("")
	isRemoved := func(id string) bool { return id == removed.Load().(string) }
	server.SetRevoked(isRemoved)
	client.SetRevoked(isRemoved)
	addr := serve(t, server)

	conn, err := tls.Dial("tcp", addr, client.ClientTLS())
	if err != nil {
		t.Fatalf("dial before removal: %v", err)
	}
	defer conn.Close()
	if err := roundTrip(conn); err != nil {
		t.Fatalf("round trip before removal: %v", err)
	}

	// Removing the client closes the connection it holds, and refuses
	// new ones at the handshake.
	removed.Store("client-node")
	if n := server.CloseConns("client-node"); n != 1 {
		t.Errorf("CloseConns closed %d connections, want 1", n)
	}
	if err := roundTrip(conn); err == nil {
		t.Error("the removed node's connection still works")
	}
	c2, err := tls.Dial("tcp", addr, client.ClientTLS())
	if err == nil {
		err = roundTrip(c2) // TLS 1.3: the server's refusal arrives after the client's handshake
		c2.Close()
	}
	if err == nil {
		t.Fatal("a removed node completed a handshake")
	}

	// A client refuses a server whose certificate names a removed node.
	removed.Store("server-node")
	if _, err := tls.Dial("tcp", addr, client.ClientTLS()); err == nil || !strings.Contains(err.Error(), "removed from the cluster") {
		t.Errorf("dial to a removed server: %v, want a refusal naming the removal", err)
	}
}

func TestCredsRenewal(t *testing.T) {
	ca, server, client := credsPair(t)
	addr := serve(t, server)
	old := client.Leaf()
	cert, key, err := ca.IssueNode("client-node", nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := client.SetCert(cert, key); err != nil {
		t.Fatalf("SetCert: %v", err)
	}
	if client.Leaf().SerialNumber.Cmp(old.SerialNumber) == 0 {
		t.Fatal("the certificate was not replaced")
	}
	conn, err := tls.Dial("tcp", addr, client.ClientTLS())
	if err != nil {
		t.Fatalf("dial with the renewed certificate: %v", err)
	}
	defer conn.Close()
	if err := roundTrip(conn); err != nil {
		t.Fatal(err)
	}
	if got := conn.ConnectionState().PeerCertificates[0].Subject.CommonName; got != "server-node" {
		t.Errorf("server is %q", got)
	}
	// A certificate of another CA is refused as a renewal.
	other := testCA(t, "other")
	oc, ok := testNode(t, other, "client-node")
	if err := client.SetCert(oc, ok); err == nil {
		t.Error("SetCert took a certificate of another CA")
	}
}

// TestRaftServerTLS: the raft listener admits voters' certificates only.
func TestRaftServerTLS(t *testing.T) {
	ca := testCA(t, "raft")
	mk := func(id string, voter bool) *Creds {
		issue := ca.IssueNode
		if voter {
			issue = ca.IssueVoter
		}
		cert, key, err := issue(id, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		c, err := NewCreds(ca.CertOnly(), cert, key)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	server := mk("server-node", true)
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := tls.NewListener(server.Track(raw), server.RaftServerTLS())
	defer l.Close()
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			go func() { defer conn.Close(); io.Copy(conn, conn) }()
		}
	}()
	for _, tc := range []struct {
		id    string
		voter bool
	}{{"a-voter", true}, {"a-member", false}} {
		conn, err := tls.Dial("tcp", raw.Addr().String(), mk(tc.id, tc.voter).ClientTLS())
		if err == nil {
			err = roundTrip(conn)
			conn.Close()
		}
		if (err == nil) != tc.voter {
			t.Errorf("%s (voter %v) on the raft listener: %v", tc.id, tc.voter, err)
		}
	}
}
