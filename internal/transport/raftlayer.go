package transport

import (
	"crypto/tls"
	"net"
	"time"

	"github.com/hashicorp/raft"
)

// RaftLayer is a raft.StreamLayer over mutual TLS: both ends must present a
// certificate of the cluster CA.
type RaftLayer struct {
	net.Listener
	client    *tls.Config
	advertise net.Addr
	dc        dialConf
}

// NewRaftLayer listens on bind with server (RequireAndVerifyClientCert) and
// dials with client. advertise is the address other nodes dial. wrap, if
// not nil, wraps the TCP listener under TLS (pki.Creds.Track, so that a
// removed node's raft connections can be closed).
func NewRaftLayer(bind string, advertise net.Addr, server, client *tls.Config, wrap func(net.Listener) net.Listener,
	opts ...DialOption) (*RaftLayer, error) {
	l, err := net.Listen("tcp", bind)
	if err != nil {
		return nil, err
	}
	if wrap != nil {
		l = wrap(l)
	}
	return &RaftLayer{Listener: tls.NewListener(l, server), client: client, advertise: advertise, dc: dialConfOf(opts)}, nil
}

// Addr is the advertised address.
func (l *RaftLayer) Addr() net.Addr { return l.advertise }

// Dial opens a mutual-TLS connection to a raft peer.
func (l *RaftLayer) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	d := &net.Dialer{Timeout: timeout, LocalAddr: localAddr(l.dc, string(addr))}
	return tls.DialWithDialer(d, "tcp", string(addr), l.client)
}
