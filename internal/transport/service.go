package transport

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Handler is what an agent serves to its peers. Handlers validate every
// field of a request before use; a malformed request gets InvalidArgument.
type Handler interface {
	// Join admits a node that holds the join token (unauthenticated by
	// certificate, authenticated by the token's secret).
	Join(context.Context, *JoinRequest) (*JoinResponse, error)
	// Admit is a Join relayed by a member to the master.
	Admit(context.Context, *AdmitRequest) (*JoinResponse, error)
	// Renew signs a new certificate for the calling node; only the master
	// answers.
	Renew(context.Context, *RenewRequest) (*RenewResponse, error)
	// Forward applies a replicated-state command; only the leader answers.
	Forward(context.Context, *ForwardRequest) (*ForwardResponse, error)
	// Ping answers who this node is.
	Ping(context.Context, *PingRequest) (*PingResponse, error)
	// Procs returns this node's process table.
	Procs(context.Context, *ProcsRequest) (*ProcsResponse, error)
	// Signal delivers a signal to a local process for a user of the cluster.
	Signal(context.Context, *SignalRequest) (*SignalResponse, error)
	// Exec runs a process for a deputy on another node: a stream of frames
	// both ways (see package rexec), carried on the Bulk channel.
	Exec(Stream) error
	// Migrate receives a migrating process from the node that calls (its
	// source): a stream of messages both ways (see package migrate),
	// carried on the Bulk channel.
	Migrate(Stream) error
	// Dump streams the image of one of this node's processes to the
	// caller (ssi checkpoint), on the Bulk channel.
	Dump(Stream) error
	// Move migrates one of this node's processes for a user of the
	// cluster: this node is its source.
	Move(context.Context, *MoveRequest) (*MoveResponse, error)
	// Moved tells the origin node of a process where it runs now.
	Moved(context.Context, *MovedRequest) (*MovedResponse, error)
	// MoveOutcome tells the target of a migration whose stream broke what
	// the source decided.
	MoveOutcome(context.Context, *MoveOutcomeRequest) (*MoveOutcomeResponse, error)
	// Presence holds a node's stream to the master open until the node
	// goes (presence.go).
	Presence(Stream) error
}

// Stream is one side of a streaming call. Messages implement
// encoding.BinaryMarshaler (sent) and encoding.BinaryUnmarshaler
// (received); received bytes are the message's own (not reused).
type Stream interface {
	Context() context.Context
	SendMsg(m any) error
	RecvMsg(m any) error
}

const serviceName = "ssi.v1.Cluster"

// Full method names.
const (
	MethodJoin    = "/" + serviceName + "/Join"
	MethodForward = "/" + serviceName + "/Forward"
	MethodAdmit   = "/" + serviceName + "/Admit"
	MethodRenew   = "/" + serviceName + "/Renew"
	MethodPing    = "/" + serviceName + "/Ping"
	MethodProcs   = "/" + serviceName + "/Procs"
	MethodSignal  = "/" + serviceName + "/Signal"
	MethodExec    = "/" + serviceName + "/Exec"
	MethodMigrate = "/" + serviceName + "/Migrate"
	MethodDump    = "/" + serviceName + "/Dump"
	MethodMove    = "/" + serviceName + "/Move"
	MethodMoved   = "/" + serviceName + "/Moved"
	MethodOutcome = "/" + serviceName + "/MoveOutcome"
)

var execStream = grpc.StreamDesc{
	StreamName:    "Exec",
	ServerStreams: true,
	ClientStreams: true,
	Handler: func(srv any, ss grpc.ServerStream) error {
		return srv.(Handler).Exec(ss)
	},
}

// bidi describes a stream both ways served by call.
func bidi(name string, call func(Handler, Stream) error) grpc.StreamDesc {
	return grpc.StreamDesc{StreamName: name, ServerStreams: true, ClientStreams: true,
		Handler: func(srv any, ss grpc.ServerStream) error { return call(srv.(Handler), ss) }}
}

var (
	migrateStream = bidi("Migrate", Handler.Migrate)
	dumpStream    = bidi("Dump", Handler.Dump)
)

var serviceDesc = grpc.ServiceDesc{
	ServiceName: serviceName,
	HandlerType: (*Handler)(nil),
	Methods: []grpc.MethodDesc{
		unary("Join", Handler.Join),
		unary("Forward", Handler.Forward),
		unary("Admit", Handler.Admit),
		unary("Renew", Handler.Renew),
		unary("Ping", Handler.Ping),
		unary("Procs", Handler.Procs),
		unary("Signal", Handler.Signal),
		unary("Move", Handler.Move),
		unary("Moved", Handler.Moved),
		unary("MoveOutcome", Handler.MoveOutcome),
	},
	Streams:  []grpc.StreamDesc{execStream, migrateStream, dumpStream, presenceStream},
	Metadata: "ssi/v1/cluster",
}

// unary builds a grpc.MethodDesc for a typed handler method, standing in
// for what protoc would generate.
func unary[Req, Resp any](name string, call func(Handler, context.Context, *Req) (*Resp, error)) grpc.MethodDesc {
	full := "/" + serviceName + "/" + name
	return grpc.MethodDesc{
		MethodName: name,
		Handler: func(srv any, ctx context.Context, dec func(any) error, icpt grpc.UnaryServerInterceptor) (any, error) {
			var raw rawMessage
			if err := dec(&raw); err != nil {
				return nil, err
			}
			req := new(Req)
			if err := decodeRequest(raw, req); err != nil {
				return nil, status.Error(codes.InvalidArgument, err.Error())
			}
			h := srv.(Handler)
			if icpt == nil {
				return call(h, ctx, req)
			}
			info := &grpc.UnaryServerInfo{Server: srv, FullMethod: full}
			return icpt(ctx, req, info, func(ctx context.Context, r any) (any, error) {
				return call(h, ctx, r.(*Req))
			})
		},
	}
}
