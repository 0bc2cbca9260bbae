package pki

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
)

// Creds are a running member's TLS credentials: the CA it trusts, its
// node certificate, which the agent renews while it runs (SetCert), and
// the cluster's list of removed nodes (SetRevoked). Every configuration it
// returns reads the current certificate at each handshake and refuses a
// peer whose certificate names a removed node, on both ends of a
// connection; connections accepted through Track are also closed when
// their peer is removed (CloseConns), so a removal locks a node out of
// connections it already holds, not only of new ones.
type Creds struct {
	pool    *x509.CertPool
	cert    atomic.Pointer[tls.Certificate]
	revoked atomic.Pointer[func(nodeID string) bool]

	mu     sync.Mutex
	conns  map[*trackedConn]struct{}
	unauth map[string]int // connections without a certificate (joiners), by source IP
}

// Connections without a certificate (only Join may be called on them) are
// few and short: at most MaxUnauthPerIP from one address and
// MaxUnauthTotal in all, so that nobody without credentials can hold much
// of an agent's memory or descriptors.
const (
	MaxUnauthPerIP = 4
	MaxUnauthTotal = 64
)

// NewCreds returns credentials for the CA ca and the node certificate and
// key in PEM form.
func NewCreds(ca *CA, certPEM, keyPEM []byte) (*Creds, error) {
	c := &Creds{pool: ca.Pool(), conns: map[*trackedConn]struct{}{}, unauth: map[string]int{}}
	if err := c.SetCert(certPEM, keyPEM); err != nil {
		return nil, err
	}
	return c, nil
}

// SetCert replaces the node certificate (a renewal): handshakes from now
// on present the new one; connections already made keep theirs.
func (c *Creds) SetCert(certPEM, keyPEM []byte) error {
	cert, err := nodeKeyPair(certPEM, keyPEM, c.pool, x509.ExtKeyUsageAny)
	if err != nil {
		return err
	}
	c.cert.Store(&cert)
	return nil
}

// Leaf returns the node certificate in use.
func (c *Creds) Leaf() *x509.Certificate { return c.cert.Load().Leaf }

// SetRevoked sets the check of removed nodes: fn reports whether the node
// with this ID was removed from the cluster. It must be fast and safe for
// concurrent use; it runs at every handshake.
func (c *Creds) SetRevoked(fn func(nodeID string) bool) { c.revoked.Store(&fn) }

// Revoked reports whether nodeID was removed from the cluster.
func (c *Creds) Revoked(nodeID string) bool {
	fn := c.revoked.Load()
	return fn != nil && (*fn)(nodeID)
}

// checkPeer refuses a peer whose verified certificate names a removed
// node. A peer without a verified certificate (a joiner) passes here; the
// RPC layer decides what it may call.
func (c *Creds) checkPeer(cs tls.ConnectionState) (string, error) {
	id, ok := PeerNodeID(cs)
	if !ok {
		return "", nil
	}
	if c.Revoked(id) {
		return id, fmt.Errorf("node %s was removed from the cluster: its certificate is revoked", id)
	}
	return id, nil
}

func (c *Creds) getCert() (*tls.Certificate, error) {
	cert := c.cert.Load()
	if cert == nil {
		return nil, errors.New("no node certificate")
	}
	return cert, nil
}

// ServerTLS returns the listener configuration. With allowUnauthenticated
// false a client must present a certificate signed by the CA; with it true
// (the RPC port, where joiners come) a client may present none, but one it
// presents must verify and must not name a removed node.
func (c *Creds) ServerTLS(allowUnauthenticated bool) *tls.Config {
	clientAuth := tls.RequireAndVerifyClientCert
	if allowUnauthenticated {
		clientAuth = tls.VerifyClientCertIfGiven
	}
	base := &tls.Config{
		ClientCAs:      c.pool,
		ClientAuth:     clientAuth,
		MinVersion:     tls.VersionTLS13,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return c.getCert() },
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		// One configuration per connection, so that the check below knows
		// which connection it admits and can record its peer.
		GetConfigForClient: func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			cfg := base.Clone()
			cfg.VerifyConnection = func(cs tls.ConnectionState) error {
				id, err := c.checkPeer(cs)
				if err != nil {
					return err
				}
				tc := findTracked(hello.Conn)
				if tc == nil {
					return nil
				}
				if id != "" {
					tc.peer.Store(&id)
					return nil
				}
				return c.admitUnauth(tc)
			}
			return cfg, nil
		},
	}
}

// RaftServerTLS returns the raft listener's configuration: a client must
// present a certificate of the CA that names a voter (VoterOU) and a node
// not removed. Only voters ever open raft connections (a leader to its
// followers, a candidate to the voters), so a member is refused at the
// handshake: it cannot send AppendEntries, RequestVote or snapshots.
func (c *Creds) RaftServerTLS() *tls.Config {
	cfg := c.ServerTLS(false)
	get := cfg.GetConfigForClient
	cfg.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		pc, err := get(hello)
		if err != nil {
			return nil, err
		}
		check := pc.VerifyConnection
		pc.VerifyConnection = func(cs tls.ConnectionState) error {
			if err := check(cs); err != nil {
				return err
			}
			if !PeerIsVoter(cs) {
				id, _ := PeerNodeID(cs)
				return fmt.Errorf("node %s is not a voter: raft is spoken by voters only", id)
			}
			return nil
		}
		return pc, nil
	}
	return cfg
}

// ClientTLS returns the mutual-TLS client configuration: it presents the
// node certificate and accepts only servers whose certificate is signed by
// the CA, names ServerName and does not name a removed node.
func (c *Creds) ClientTLS() *tls.Config {
	return &tls.Config{
		RootCAs:              c.pool,
		ServerName:           ServerName,
		MinVersion:           tls.VersionTLS13,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return c.getCert() },
		VerifyConnection: func(cs tls.ConnectionState) error {
			_, err := c.checkPeer(cs)
			return err
		},
	}
}

// Track wraps a listener whose connections ServerTLS admits, so that
// CloseConns can close those of a removed node.
func (c *Creds) Track(l net.Listener) net.Listener { return &trackingListener{Listener: l, c: c} }

// CloseConns closes every tracked connection whose verified peer is
// nodeID and returns how many it closed.
func (c *Creds) CloseConns(nodeID string) int {
	c.mu.Lock()
	var victims []*trackedConn
	for tc := range c.conns {
		if p := tc.peer.Load(); p != nil && *p == nodeID {
			victims = append(victims, tc)
		}
	}
	c.mu.Unlock()
	for _, tc := range victims {
		tc.Close()
	}
	return len(victims)
}

// admitUnauth counts a connection without a certificate against its
// source's and the total allowance, or refuses it.
func (c *Creds) admitUnauth(tc *trackedConn) error {
	ip := tc.RemoteAddr().String()
	if h, _, err := net.SplitHostPort(ip); err == nil {
		ip = h
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	total := 0
	for _, n := range c.unauth {
		total += n
	}
	switch {
	case c.unauth[ip] >= MaxUnauthPerIP:
		return fmt.Errorf("%s already holds %d connections without a certificate", ip, MaxUnauthPerIP)
	case total >= MaxUnauthTotal:
		return fmt.Errorf("%d connections without a certificate are open already", MaxUnauthTotal)
	}
	c.unauth[ip]++
	tc.unauthIP = ip
	return nil
}

// findTracked finds the tracked connection under conn, through wrappers
// that expose what they wrap with NetConn (as tls.Conn does).
func findTracked(conn net.Conn) *trackedConn {
	for i := 0; i < 8 && conn != nil; i++ {
		if tc, ok := conn.(*trackedConn); ok {
			return tc
		}
		w, ok := conn.(interface{ NetConn() net.Conn })
		if !ok {
			return nil
		}
		conn = w.NetConn()
	}
	return nil
}

type trackingListener struct {
	net.Listener
	c *Creds
}

func (l *trackingListener) Accept() (net.Conn, error) {
	conn, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: conn, c: l.c}
	l.c.mu.Lock()
	l.c.conns[tc] = struct{}{}
	l.c.mu.Unlock()
	return tc, nil
}

// trackedConn is an accepted connection that forgets itself when closed.
type trackedConn struct {
	net.Conn
	c        *Creds
	peer     atomic.Pointer[string] // the verified peer's node ID, once known
	unauthIP string                 // set (under c.mu) when counted as without a certificate
	once     sync.Once
}

func (tc *trackedConn) Close() error {
	tc.once.Do(func() {
		tc.c.mu.Lock()
		delete(tc.c.conns, tc)
		if ip := tc.unauthIP; ip != "" {
			if tc.c.unauth[ip]--; tc.c.unauth[ip] <= 0 {
				delete(tc.c.unauth, ip)
			}
		}
		tc.c.mu.Unlock()
	})
	return tc.Conn.Close()
}
