package agent

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ssi-cluster/ssi/internal/api"
	"github.com/ssi-cluster/ssi/internal/config"
	"github.com/ssi-cluster/ssi/internal/state"
	"github.com/ssi-cluster/ssi/internal/transport"
)

// rpcHandler serves peers (transport.Handler).
type rpcHandler Agent

func (h *rpcHandler) agent() *Agent { return (*Agent)(h) }

func (h *rpcHandler) Ping(ctx context.Context, _ *transport.PingRequest) (*transport.PingResponse, error) {
	id := h.agent().Identity()
	return &transport.PingResponse{NodeID: id.ID, Number: id.Number}, nil
}

// validJoin checks every field of a join request from an unauthenticated
// caller.
func validJoin(r *transport.JoinRequest) error {
	switch {
	case len(r.Secret) != 16:
		return errors.New("secret must be 16 bytes")
	case len(r.NodeID) < 8 || len(r.NodeID) > 64:
		return errors.New("bad node id")
	case !config.ValidName(r.Name):
		return fmt.Errorf("node name %q must be 1-63 letters, digits, '-', '_' or '.'", r.Name)
	case net.ParseIP(r.Addr) == nil:
		return fmt.Errorf("address %q is not an IP", r.Addr)
	case len(r.CSR) == 0 || len(r.CSR) > 8192:
		return errors.New("bad certificate request")
	}
	for _, p := range []int{r.GossipPort, r.RPCPort, r.RaftPort} {
		if p < 1 || p > 65535 {
			return fmt.Errorf("bad port %d", p)
		}
	}
	return nil
}

func (h *rpcHandler) Join(ctx context.Context, r *transport.JoinRequest) (*transport.JoinResponse, error) {
	a := h.agent()
	if err := validJoin(r); err != nil {
		return nil, status.Error(codes.InvalidArgument, "join request: "+err.Error())
	}
	if subtle.ConstantTimeCompare(r.Secret, a.bundle.Token.Secret[:]) != 1 {
		a.log.Warn("refused a join with a wrong token", "name", r.Name, "addr", r.Addr)
		return nil, status.Error(codes.PermissionDenied, "the join token's secret is not this cluster's")
	}
	if why := a.fenceReason(); why != "" {
		return nil, status.Error(codes.Unavailable, "this node is fenced ("+why+"); try another member")
	}
	// Sign first: a request that cannot be signed must not register anything.
	cert, err := a.bundle.CA.SignCSR(r.CSR, r.NodeID, []net.IP{net.ParseIP(r.Addr)})
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, "join request: "+err.Error())
	}
	cmd := &state.Command{Op: state.OpRegister, Node: &state.NodeRec{ID: r.NodeID, Name: r.Name, Addr: r.Addr,
		GossipPort: r.GossipPort, RPCPort: r.RPCPort, RaftPort: r.RaftPort}}
	res, err := a.apply(ctx, cmd)
	if err != nil {
		return nil, status.Error(codes.Unavailable, "cannot reach the cluster master: "+err.Error())
	}
	if err := res.Err(); err != nil {
		if errors.Is(err, state.ErrDuplicateName) {
			return nil, status.Error(codes.AlreadyExists, err.Error())
		}
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	var number int
	if err := json.Unmarshal(res.Value, &number); err != nil {
		return nil, status.Error(codes.Internal, "register result: "+err.Error())
	}
	caKey, err := a.bundle.CA.KeyPEM()
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	a.log.Info("admitted a node", "name", r.Name, "number", number, "addr", r.Addr)
	return &transport.JoinResponse{Cluster: a.Identity().Cluster, Number: number, CertPEM: cert,
		CACertPEM: a.bundle.CA.CertPEM, CAKeyPEM: caKey, GossipKey: a.bundle.GossipKey,
		Token: a.bundle.Token.String(), Peers: a.peerAddrs()}, nil
}

func (h *rpcHandler) Forward(ctx context.Context, r *transport.ForwardRequest) (*transport.ForwardResponse, error) {
	a := h.agent()
	if !a.isLeader() {
		return nil, status.Error(codes.FailedPrecondition, "not the master")
	}
	res, err := a.store.ApplyRaw(ctx, r.Command)
	if errors.Is(err, state.ErrBadCommand) {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	if err != nil {
		return nil, status.Error(codes.Unavailable, err.Error())
	}
	b, err := json.Marshal(res)
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	return &transport.ForwardResponse{Result: b}, nil
}

// peerAddrs lists the gossip addresses of members that are up.
func (a *Agent) peerAddrs() []string {
	var out []string
	a.store.FSM.Read(func(reg *state.Registry) {
		for _, n := range reg.Sorted() {
			if n.State == api.StateUp {
				out = append(out, n.GossipAddr())
			}
		}
	})
	return out
}

// apply commits a command through the leader, wherever it is, retrying
// while there is no leader until ctx ends (default 10 s).
func (a *Agent) apply(ctx context.Context, c *state.Command) (*state.Result, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
	}
	c.Time = time.Now().UTC()
	b, err := c.Encode()
	if err != nil {
		return nil, err
	}
	var last error
	for {
		res, err := a.applyOnce(ctx, b)
		if err == nil {
			return res, nil
		}
		last = err
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w (last: %v)", ctx.Err(), last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (a *Agent) applyOnce(ctx context.Context, b []byte) (*state.Result, error) {
	if a.isLeader() {
		return a.store.ApplyRaw(ctx, b)
	}
	rec, id := a.leaderRec()
	if rec == nil {
		if id == "" {
			return nil, errors.New("no master elected")
		}
		return nil, fmt.Errorf("master %s not in the registry yet", id)
	}
	c, err := a.pool.Client(rec.RPCAddr(), transport.Control)
	if err != nil {
		return nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	resp, err := c.Forward(cctx, &transport.ForwardRequest{Command: b})
	if err != nil {
		return nil, err
	}
	res := new(state.Result)
	if err := json.Unmarshal(resp.Result, res); err != nil {
		return nil, fmt.Errorf("master's answer: %w", err)
	}
	return res, nil
}
