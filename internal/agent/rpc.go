package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ssi-cluster/ssi/internal/api"
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

func (h *rpcHandler) Forward(ctx context.Context, r *transport.ForwardRequest) (*transport.ForwardResponse, error) {
	a := h.agent()
	if !a.isLeader() {
		return nil, status.Error(codes.FailedPrecondition, "not the master")
	}
	// A node is trusted only for what it is: check what it asks for.
	c, err := state.DecodeCommand(r.Command)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	caller, _ := transport.PeerFrom(ctx)
	var rec *state.NodeRec
	a.store.FSM.Read(func(reg *state.Registry) {
		if n := reg.ByID(caller); n != nil {
			cp := *n
			rec = &cp
		}
	})
	if err := state.MayForward(c, rec); err != nil {
		a.log.Warn("refused a forwarded command", "from", caller, "op", c.Op, "err", err)
		return nil, status.Error(codes.PermissionDenied, err.Error())
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
