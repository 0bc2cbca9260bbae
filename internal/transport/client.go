package transport

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/experimental"
	"google.golang.org/grpc/keepalive"
)

// Channel selects one of the connections kept to each peer.
type Channel int

// The channels, highest priority first.
const (
	Control Channel = iota // membership, agreement, process control
	Bulk                   // migration pages, file data
)

// DSCP code points (in the TOS byte) per channel.
var tos = [...]int{Control: 0xC0 /* CS6 */, Bulk: 0x20 /* CS1 */}

// Pool keeps mutual-TLS connections to peers, one per peer and Channel.
// It is safe for concurrent use.
type Pool struct {
	tls *tls.Config
	dc  dialConf

	mu    sync.Mutex
	conns map[poolKey]*grpc.ClientConn
}

type poolKey struct {
	addr string
	ch   Channel
}

// NewPool returns a pool that dials with tlsConf (from pki.ClientTLS).
func NewPool(tlsConf *tls.Config, opts ...DialOption) *Pool {
	return &Pool{tls: tlsConf, conns: map[poolKey]*grpc.ClientConn{}, dc: dialConfOf(opts)}
}

// A DialOption changes how connections are made.
type DialOption func(*dialConf)

type dialConf struct {
	source *net.TCPAddr // local address of outgoing connections, if set
}

func dialConfOf(opts []DialOption) dialConf {
	var c dialConf
	for _, o := range opts {
		o(&c)
	}
	return c
}

// FromIP makes connections leave from ip: an agent bound to one address
// of a machine with several talks to its peers from that address, the one
// it advertises (firewalls and per-address limits then see the node, not
// whichever address the route would pick). "" and unspecified addresses
// (0.0.0.0, ::) leave the choice to the kernel.
func FromIP(ip string) DialOption {
	return func(c *dialConf) {
		if a := net.ParseIP(ip); a != nil && !a.IsUnspecified() {
			c.source = &net.TCPAddr{IP: a}
		}
	}
}

// Client returns a client for the peer at addr (ip:port) on channel ch.
func (p *Pool) Client(addr string, ch Channel) (*Client, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	k := poolKey{addr, ch}
	if cc, ok := p.conns[k]; ok {
		return &Client{cc: cc}, nil
	}
	cc, err := dial(addr, corked(credentials.NewTLS(p.tls)), tos[ch], ch == Bulk, p.dc)
	if err != nil {
		return nil, err
	}
	p.conns[k] = cc
	return &Client{cc: cc}, nil
}

// ResetBackoff makes the connections to addr try again at once (a peer
// that came back), instead of after their reconnect backoff.
func (p *Pool) ResetBackoff(addr string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, cc := range p.conns {
		if k.addr == addr {
			cc.ResetConnectBackoff()
		}
	}
}

// Forget closes the connections to addr (after the peer went away).
func (p *Pool) Forget(addr string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, cc := range p.conns {
		if k.addr == addr {
			cc.Close()
			delete(p.conns, k)
		}
	}
}

// Close closes every connection.
func (p *Pool) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, cc := range p.conns {
		cc.Close()
		delete(p.conns, k)
	}
}

// Flow-control windows and buffers of Bulk connections: large enough that
// a stream is not held to one 64 KiB window per round trip.
const (
	bulkWindow     = 16 << 20
	bulkConnWindow = 64 << 20
	bulkBuffer     = 512 << 10
	// gRPC reads its frames straight from the TLS connection, which
	// hands out a decrypted record from memory: the socket is read
	// through the cork's buffer (cork.go), and a second buffer in
	// between would only copy every byte once more.
	noReadBuffer = 0
)

func dial(addr string, creds credentials.TransportCredentials, tosByte int, bulk bool, dc dialConf) (*grpc.ClientConn, error) {
	d := net.Dialer{Timeout: 3 * time.Second, LocalAddr: localAddr(dc, addr), Control: func(network, address string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			if tosByte != 0 {
				serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_TOS, tosByte)
			}
		})
		if err != nil {
			return err
		}
		return serr
	}}
	// Keepalive notices a dead connection between nodes that membership
	// has not declared down. A Bulk connection carries deputies' streams:
	// closing it after a 5 s stall (a starved machine) would hang up every
	// command on it, while a node that really died is declared down in
	// under a second anyway; so Bulk waits longer.
	ka := keepalive.ClientParameters{Time: 10 * time.Second, Timeout: 5 * time.Second, PermitWithoutStream: true}
	opts := []grpc.DialOption{}
	if bulk {
		ka.Time, ka.Timeout = 30*time.Second, 30*time.Second
		opts = append(opts, grpc.WithInitialWindowSize(bulkWindow), grpc.WithInitialConnWindowSize(bulkConnWindow),
			grpc.WithWriteBufferSize(bulkBuffer), grpc.WithReadBufferSize(noReadBuffer),
			experimental.WithBufferPool(bufPool))
	}
	cc, err := grpc.NewClient("passthrough:///"+addr, append(opts,
		grpc.WithTransportCredentials(creds),
		grpc.WithContextDialer(func(ctx context.Context, a string) (net.Conn, error) {
			return d.DialContext(ctx, "tcp", a)
		}),
		grpc.WithDefaultCallOptions(grpc.ForceCodecV2(codec{}), grpc.MaxCallRecvMsgSize(MaxMessage)),
		grpc.WithKeepaliveParams(ka),
	)...)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	return cc, nil
}

// localAddr is the dialer's LocalAddr for dc and the destination addr
// (host:port): the source address when it can reach addr (the same family,
// and not a loopback address for a destination that is not one), else nil
// (the kernel's choice). A nil *net.TCPAddr must not become a non-nil
// net.Addr.
func localAddr(dc dialConf, addr string) net.Addr {
	if dc.source == nil {
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil
	}
	dst := net.ParseIP(host)
	src := dc.source.IP
	if dst == nil || (src.To4() == nil) != (dst.To4() == nil) || (src.IsLoopback() && !dst.IsLoopback()) {
		return nil
	}
	return dc.source
}

// Client makes calls to one peer.
type Client struct{ cc *grpc.ClientConn }

// DialJoin returns a one-off client for the join handshake: the server is
// verified against the CA pinned by the join token; no client certificate.
// Close it after use.
func DialJoin(addr string, tlsConf *tls.Config, opts ...DialOption) (*Client, error) {
	return DialOnce(addr, tlsConf, opts...)
}

// DialOnce returns a one-off client of addr with tlsConf, apart from any
// pool (a probe of a node that may be dead must not leave a pooled
// connection in reconnect backoff). Close it after use.
func DialOnce(addr string, tlsConf *tls.Config, opts ...DialOption) (*Client, error) {
	cc, err := dial(addr, credentials.NewTLS(tlsConf), tos[Control], false, dialConfOf(opts))
	if err != nil {
		return nil, err
	}
	return &Client{cc: cc}, nil
}

// Close closes a client made by DialJoin. Pool clients are closed by the pool.
func (c *Client) Close() error { return c.cc.Close() }

// Join calls Join.
func (c *Client) Join(ctx context.Context, r *JoinRequest) (*JoinResponse, error) {
	out := new(JoinResponse)
	return out, c.cc.Invoke(ctx, MethodJoin, r, out)
}

// Admit calls Admit.
func (c *Client) Admit(ctx context.Context, r *AdmitRequest) (*JoinResponse, error) {
	out := new(JoinResponse)
	return out, c.cc.Invoke(ctx, MethodAdmit, r, out)
}

// Renew calls Renew.
func (c *Client) Renew(ctx context.Context, r *RenewRequest) (*RenewResponse, error) {
	out := new(RenewResponse)
	return out, c.cc.Invoke(ctx, MethodRenew, r, out)
}

// Forward calls Forward.
func (c *Client) Forward(ctx context.Context, r *ForwardRequest) (*ForwardResponse, error) {
	out := new(ForwardResponse)
	return out, c.cc.Invoke(ctx, MethodForward, r, out)
}

// Ping calls Ping.
func (c *Client) Ping(ctx context.Context) (*PingResponse, error) {
	out := new(PingResponse)
	return out, c.cc.Invoke(ctx, MethodPing, &PingRequest{}, out)
}

// Procs calls Procs.
func (c *Client) Procs(ctx context.Context, r *ProcsRequest) (*ProcsResponse, error) {
	out := new(ProcsResponse)
	return out, c.cc.Invoke(ctx, MethodProcs, r, out)
}

// Exec opens an Exec stream; end it by cancelling ctx or after CloseSend
// and the last message.
func (c *Client) Exec(ctx context.Context) (grpc.ClientStream, error) {
	return c.cc.NewStream(ctx, &execStream, MethodExec)
}

// Signal calls Signal.
func (c *Client) Signal(ctx context.Context, r *SignalRequest) (*SignalResponse, error) {
	out := new(SignalResponse)
	return out, c.cc.Invoke(ctx, MethodSignal, r, out)
}
