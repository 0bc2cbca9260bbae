package pki

import (
	"net"
	"testing"
)

// testCA returns a fresh CA or fails the test.
func testCA(t testing.TB, name string) *CA {
	t.Helper()
	ca, err := NewCA(name)
	if err != nil {
		t.Fatalf("NewCA: %v", err)
	}
	return ca
}

// testNode issues a node certificate for id from ca or fails the test.
func testNode(t testing.TB, ca *CA, id string) (certPEM, keyPEM []byte) {
	t.Helper()
	certPEM, keyPEM, err := ca.IssueNode(id, []net.IP{net.ParseIP("127.0.0.1")}, 0)
	if err != nil {
		t.Fatalf("IssueNode(%q): %v", id, err)
	}
	return certPEM, keyPEM
}

// testBundle returns a complete, valid bundle for node id of a new cluster.
func testBundle(t testing.TB, id string) *Bundle {
	t.Helper()
	ca := testCA(t, "test")
	certPEM, keyPEM := testNode(t, ca, id)
	gossip, err := NewGossipKey()
	if err != nil {
		t.Fatal(err)
	}
	return &Bundle{CA: ca, NodeCertPEM: certPEM, NodeKeyPEM: keyPEM, GossipKey: gossip}
}
