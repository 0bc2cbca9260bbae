package transport

import (
	"crypto/tls"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

func TestFromIP(t *testing.T) {
	for _, tc := range []struct {
		ip, dst string
		want    string // "" for the kernel's choice
	}{
		{"", "10.0.0.1:7947", ""}, {"0.0.0.0", "10.0.0.1:7947", ""}, {"::", "10.0.0.1:7947", ""},
		{"not an address", "10.0.0.1:7947", ""},
		{"10.1.2.3", "10.0.0.1:7947", "10.1.2.3"},
		{"fd00::7", "[fd00::1]:7947", "fd00::7"},
		{"10.1.2.3", "[fd00::1]:7947", ""}, // another family
		{"fd00::7", "10.0.0.1:7947", ""},   // another family
		{"127.0.0.1", "10.0.0.1:7947", ""}, // loopback cannot reach it
		{"127.200.0.5", "127.200.0.1:7947", "127.200.0.5"},
		{"10.1.2.3", "127.0.0.1:7947", "10.1.2.3"}, // a local address reaches loopback
		{"10.1.2.3", "node1:7947", ""},             // a name: the kernel decides
	} {
		got := ""
		if a := localAddr(dialConfOf([]DialOption{FromIP(tc.ip)}), tc.dst); a != nil {
			got = a.(*net.TCPAddr).IP.String()
		}
		if got != tc.want {
			t.Errorf("FromIP(%q) to %s: source %q, want %q", tc.ip, tc.dst, got, tc.want)
		}
	}
}

// TestRaftDialLeavesFromSource: a raft connection leaves from the address
// the layer was given.
func TestRaftDialLeavesFromSource(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan net.Addr, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			got <- c.RemoteAddr()
			c.Close()
		}
	}()
	l, err := NewRaftLayer("127.0.0.1:0", ln.Addr(), &tls.Config{}, &tls.Config{InsecureSkipVerify: true}, nil, FromIP("127.0.0.3"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go l.Dial(raft.ServerAddress("127.0.0.1:"+portOf(ln.Addr())), time.Second) // the handshake fails: only the source matters
	select {
	case a := <-got:
		if ip := a.(*net.TCPAddr).IP.String(); ip != "127.0.0.3" {
			t.Fatalf("connection came from %s, want 127.0.0.3", ip)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no connection")
	}
}

func portOf(a net.Addr) string {
	_, p, _ := net.SplitHostPort(a.String())
	return p
}
