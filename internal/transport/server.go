package transport

import (
	"context"
	"crypto/tls"
	"net"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/experimental"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/tap"

	"github.com/ssi-cluster/ssi/internal/pki"
)

type peerKey struct{}

// PeerFrom returns the verified node ID of the caller of an RPC.
func PeerFrom(ctx context.Context) (string, bool) {
	id, ok := ctx.Value(peerKey{}).(string)
	return id, ok
}

// NewServer returns a gRPC server for h. tlsConf must come from
// pki.ServerTLS(allowUnauthenticated=true): the certificate is then checked
// here, per method, and only Join may be called without one.
func NewServer(tlsConf *tls.Config, h Handler) *grpc.Server {
	s := grpc.NewServer(
		grpc.Creds(corked(credentials.NewTLS(tlsConf))),
		grpc.ForceServerCodecV2(codec{}),
		grpc.MaxRecvMsgSize(MaxMessage),
		grpc.UnaryInterceptor(authorize),
		grpc.StreamInterceptor(authorizeStream),
		// Before a message is read: a caller without a certificate may
		// call Join alone, so it cannot make the server buffer a large
		// message for any other method (authorize runs only once the
		// whole message is in).
		grpc.InTapHandle(joinOnlyWithoutCert),
		// Lenient: clients keep their own (stricter) watch; see dial.
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 30 * time.Second}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: time.Second, PermitWithoutStream: true}),
		grpc.ConnectionTimeout(5*time.Second),
		// Windows for the Bulk streams (per stream, per connection);
		// control messages are small and unaffected.
		grpc.InitialWindowSize(bulkWindow), grpc.InitialConnWindowSize(bulkConnWindow),
		grpc.WriteBufferSize(bulkBuffer), grpc.ReadBufferSize(noReadBuffer),
		experimental.BufferPool(bufPool), // see pool.go
	)
	s.RegisterService(&serviceDesc, h)
	return s
}

// Serve serves s on l until s stops.
func Serve(s *grpc.Server, l net.Listener) error { return s.Serve(l) }

func callerID(ctx context.Context) (string, error) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return "", status.Error(codes.Unauthenticated, "no peer information")
	}
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok {
		return "", status.Error(codes.Unauthenticated, "connection is not TLS")
	}
	id, ok := pki.PeerNodeID(ti.State)
	if !ok {
		return "", status.Error(codes.Unauthenticated, "a cluster certificate is required for this call")
	}
	return id, nil
}

func joinOnlyWithoutCert(ctx context.Context, info *tap.Info) (context.Context, error) {
	if info.FullMethodName == MethodJoin {
		return ctx, nil
	}
	if _, err := callerID(ctx); err != nil {
		return nil, err
	}
	return ctx, nil
}

func authorize(ctx context.Context, req any, info *grpc.UnaryServerInfo, next grpc.UnaryHandler) (any, error) {
	if info.FullMethod == MethodJoin {
		return next(ctx, req)
	}
	id, err := callerID(ctx)
	if err != nil {
		return nil, err
	}
	return next(context.WithValue(ctx, peerKey{}, id), req)
}

func authorizeStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, next grpc.StreamHandler) error {
	id, err := callerID(ss.Context())
	if err != nil {
		return err
	}
	return next(srv, &peerStream{ss, context.WithValue(ss.Context(), peerKey{}, id)})
}

// peerStream is a server stream whose context carries the caller's node ID.
type peerStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *peerStream) Context() context.Context { return s.ctx }
