package transport

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/ssi-cluster/ssi/internal/pki"
)

// newRaftLayer starts a raft layer for node id of c on a random loopback
// port, with mutual TLS.
func newRaftLayer(t *testing.T, c *cluster, id string) *RaftLayer {
	t.Helper()
	certPEM, keyPEM, err := c.ca.IssueNode(id, []net.IP{net.ParseIP("127.0.0.1")}, 0)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := pki.ServerTLS(certPEM, keyPEM, c.ca.Pool(), false)
	if err != nil {
		t.Fatal(err)
	}
	cli, err := pki.ClientTLS(certPEM, keyPEM, c.ca.Pool())
	if err != nil {
		t.Fatal(err)
	}
	adv := &net.TCPAddr{IP: net.ParseIP("192.0.2.1"), Port: 7948}
	l, err := NewRaftLayer("127.0.0.1:0", adv, srv, cli, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	if l.Addr() != net.Addr(adv) {
		t.Fatalf("Addr() = %v, want the advertised %v", l.Addr(), adv)
	}
	return l
}

// accepted is a connection accepted by a raft layer and the result of the
// server side of its TLS handshake.
type accepted struct {
	conn net.Conn
	err  error
}

// acceptOne accepts one connection in the background and runs the server
// side of its handshake (tls.Listen defers it to the first read or write).
func acceptOne(t *testing.T, l net.Listener) <-chan accepted {
	t.Helper()
	ch := make(chan accepted, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			ch <- accepted{err: err}
			return
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		ch <- accepted{conn: c, err: c.(*tls.Conn).Handshake()}
	}()
	return ch
}

func recv(t *testing.T, ch <-chan accepted) accepted {
	t.Helper()
	select {
	case a := <-ch:
		if a.conn != nil {
			t.Cleanup(func() { a.conn.Close() })
		}
		return a
	case <-time.After(15 * time.Second):
		t.Fatal("no connection accepted")
		return accepted{}
	}
}

func deadline(c net.Conn) { c.SetDeadline(time.Now().Add(10 * time.Second)) }

func TestRaftLayerMutualTLS(t *testing.T) {
	t.Parallel()
	c := newCluster(t, "a")
	l1 := newRaftLayer(t, c, "node-1")
	l2 := newRaftLayer(t, c, "node-2")
	var _ raft.StreamLayer = l1

	acc := acceptOne(t, l2)
	out, err := l1.Dial(raft.ServerAddress(l2.Listener.Addr().String()), 5*time.Second)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer out.Close()
	a := recv(t, acc)
	if a.err != nil {
		t.Fatalf("server handshake: %v", a.err)
	}
	in := a.conn
	deadline(out)
	deadline(in)

	if _, err := out.Write([]byte("append entries")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, len("append entries"))
	if _, err := io.ReadFull(in, buf); err != nil || string(buf) != "append entries" {
		t.Fatalf("server read %q, %v", buf, err)
	}
	if _, err := in.Write([]byte("ok")); err != nil {
		t.Fatal(err)
	}
	buf = make([]byte, 2)
	if _, err := io.ReadFull(out, buf); err != nil || string(buf) != "ok" {
		t.Fatalf("client read %q, %v", buf, err)
	}

	// Each end knows who the other is.
	if id, ok := pki.PeerNodeID(in.(*tls.Conn).ConnectionState()); !ok || id != "node-1" {
		t.Errorf("server sees peer %q, %v; want node-1", id, ok)
	}
	if id, ok := pki.PeerNodeID(out.(*tls.Conn).ConnectionState()); !ok || id != "node-2" {
		t.Errorf("client sees peer %q, %v; want node-2", id, ok)
	}
}

// clientGone checks that a client connection can no longer exchange data:
// it reads EOF, a reset or a TLS alert.
func clientGone(t *testing.T, conn net.Conn) {
	t.Helper()
	deadline(conn)
	conn.Write([]byte("x")) // may or may not fail; the read decides
	n, err := conn.Read(make([]byte, 64))
	if err == nil {
		t.Fatalf("client read %d bytes from a refused connection", n)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the refused connection was left open: %v", err)
	}
}

func TestRaftLayerRefusesPlainTCP(t *testing.T) {
	t.Parallel()
	c := newCluster(t, "a")
	l := newRaftLayer(t, c, "node-1")
	acc := acceptOne(t, l)
	conn, err := net.Dial("tcp", l.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("GET / HTTP/1.0\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	a := recv(t, acc)
	if a.err == nil {
		t.Fatal("the server completed a TLS handshake with a plain TCP client")
	}
	a.conn.Close() // what the raft transport does on a failed handshake
	clientGone(t, conn)
}

func TestRaftLayerRefusesTLSWithoutCert(t *testing.T) {
	t.Parallel()
	c := newCluster(t, "a")
	l := newRaftLayer(t, c, "node-1")
	acc := acceptOne(t, l)
	d := &net.Dialer{Timeout: 5 * time.Second}
	conn, err := tls.DialWithDialer(d, "tcp", l.Listener.Addr().String(),
		&tls.Config{RootCAs: c.ca.Pool(), ServerName: pki.ServerName, MinVersion: tls.VersionTLS13})
	a := recv(t, acc)
	if a.err == nil {
		t.Fatal("the server accepted a client without a certificate")
	}
	if err != nil {
		return // refused during the client's handshake
	}
	defer conn.Close()
	a.conn.Close()
	clientGone(t, conn)
}

func TestRaftLayerRefusesOtherCA(t *testing.T) {
	t.Parallel()
	c := newCluster(t, "a")
	other := newCluster(t, "b")
	l := newRaftLayer(t, c, "node-1")
	stranger := newRaftLayer(t, other, "node-x")
	acc := acceptOne(t, l)
	conn, err := stranger.Dial(raft.ServerAddress(l.Listener.Addr().String()), 5*time.Second)
	if err == nil {
		conn.Close()
		t.Fatal("a node of another cluster completed a raft handshake")
	}
	if a := recv(t, acc); a.err == nil {
		t.Fatal("the server completed a handshake with a node of another cluster")
	}
}

func TestRaftLayerDialNowhere(t *testing.T) {
	t.Parallel()
	c := newCluster(t, "a")
	l := newRaftLayer(t, c, "node-1")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	if conn, err := l.Dial(raft.ServerAddress(addr), time.Second); err == nil {
		conn.Close()
		t.Fatal("Dial to a closed port succeeded")
	}
}
