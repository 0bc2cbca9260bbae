package agent

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/ssi-cluster/ssi/internal/config"
	"github.com/ssi-cluster/ssi/internal/pki"
	"github.com/ssi-cluster/ssi/internal/state"
	"github.com/ssi-cluster/ssi/internal/transport"
)

// Admission. A joiner may reach any member; only the master admits: it
// checks the token against the registry (hashed tokens, their expiry, uses
// and revocation), commits the registration and the token's use in one log
// entry, and signs the joiner's certificate request. A member that is not
// the master relays the join to it (Admit), so the CA key stays on voters:
// the master is always one. The CA key goes to the joiner only when its
// token admits voters.

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
	if err := pki.CheckNodeID(r.NodeID); err != nil {
		return err
	}
	return pki.CheckCSR(r.CSR)
}

// sourceOf returns the IP address a call came from.
func sourceOf(ctx context.Context) string {
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		if h, _, err := net.SplitHostPort(p.Addr.String()); err == nil {
			return h
		}
		return p.Addr.String()
	}
	return "unknown"
}

func (h *rpcHandler) Join(ctx context.Context, r *transport.JoinRequest) (*transport.JoinResponse, error) {
	a := h.agent()
	src := sourceOf(ctx)
	now := time.Now()
	if ok, wait := a.joins.allow(src, now); !ok {
		return nil, status.Errorf(codes.ResourceExhausted, "too many failed joins from %s; retry in %s", src, max(time.Second, wait.Round(time.Second)))
	}
	resp, err := a.join(ctx, r, src)
	a.joins.done(src, time.Now(), status.Code(err), status.Convert(err).Message(), a.log)
	return resp, err
}

// Admit is a join relayed by a member. The relaying member is known by its
// certificate; its relays go through the same gate as joins (keyed on the
// member), and the token is checked before anything is committed.
func (h *rpcHandler) Admit(ctx context.Context, r *transport.AdmitRequest) (*transport.JoinResponse, error) {
	a := h.agent()
	if !a.isLeader() {
		return nil, status.Error(codes.FailedPrecondition, "not the master")
	}
	caller, _ := transport.PeerFrom(ctx)
	key := "node " + caller
	if ok, wait := a.joins.allow(key, time.Now()); !ok {
		return nil, status.Errorf(codes.ResourceExhausted, "too many failed joins relayed by %s; retry in %s", caller, max(time.Second, wait.Round(time.Second)))
	}
	resp, err := a.admitChecked(ctx, &r.Join, fmt.Sprintf("%s (relayed by %s)", r.Source, caller))
	a.joins.done(key, time.Now(), status.Code(err), status.Convert(err).Message(), a.log)
	return resp, err
}

// checkJoinToken checks a join's token against this node's copy of the
// registry, without counting a use.
func (a *Agent) checkJoinToken(secret []byte) error {
	if len(secret) != 16 {
		return status.Error(codes.InvalidArgument, "join request: secret must be 16 bytes")
	}
	hash := pki.HashSecret(secret)
	var err error
	a.store.FSM.Read(func(reg *state.Registry) { err = reg.CheckToken(hex.EncodeToString(hash[:]), time.Now()) })
	if err != nil {
		return status.Error(codes.PermissionDenied, err.Error())
	}
	return nil
}

// admitChecked is admit after the token's check.
func (a *Agent) admitChecked(ctx context.Context, r *transport.JoinRequest, src string) (*transport.JoinResponse, error) {
	if err := a.checkJoinToken(r.Secret); err != nil {
		return nil, err
	}
	return a.admit(ctx, r, src)
}

// join serves a join that reached this node: the master admits it, any
// other member relays it to the master. The token is checked first, against
// this node's copy of the registry, so nothing else of an unauthenticated
// request is read before the caller has shown a valid token.
func (a *Agent) join(ctx context.Context, r *transport.JoinRequest, src string) (*transport.JoinResponse, error) {
	if err := a.checkJoinToken(r.Secret); err != nil {
		return nil, err
	}
	if err := validJoin(r); err != nil {
		return nil, status.Error(codes.InvalidArgument, "join request: "+err.Error())
	}
	if why := a.fenceReason(); why != "" {
		return nil, status.Error(codes.Unavailable, "this node is fenced ("+why+"); try another member")
	}
	if a.isLeader() {
		return a.admit(ctx, r, src)
	}
	rec, id := a.leaderRec()
	if rec == nil {
		return nil, status.Errorf(codes.Unavailable, "no master known here (%q); try again", id)
	}
	c, err := a.pool.Client(rec.RPCAddr(), transport.Control)
	if err != nil {
		return nil, status.Error(codes.Unavailable, "cannot reach the cluster master: "+err.Error())
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return c.Admit(cctx, &transport.AdmitRequest{Join: *r, Source: src})
}

// admit is the master's half: token, registration, certificate.
func (a *Agent) admit(ctx context.Context, r *transport.JoinRequest, src string) (*transport.JoinResponse, error) {
	if err := validJoin(r); err != nil {
		return nil, status.Error(codes.InvalidArgument, "join request: "+err.Error())
	}
	hash := pki.HashSecret(r.Secret)
	keyHash, err := pki.CSRKeyHash(r.CSR)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, "join request: "+err.Error())
	}
	cmd := &state.Command{Op: state.OpRegister, TokenHash: hex.EncodeToString(hash[:]),
		Node: &state.NodeRec{ID: r.NodeID, Name: r.Name, Addr: r.Addr, KeyHash: keyHash,
			GossipPort: r.GossipPort, RPCPort: r.RPCPort, RaftPort: r.RaftPort}}
	res, err := a.apply(ctx, cmd)
	if err != nil {
		return nil, status.Error(codes.Unavailable, "cannot commit the registration: "+err.Error())
	}
	if err := res.Err(); err != nil {
		a.log.Debug("refused a join", "name", r.Name, "addr", r.Addr, "source", src, "err", err)
		switch {
		case errors.Is(err, state.ErrDuplicateName):
			return nil, status.Error(codes.AlreadyExists, err.Error())
		case errors.Is(err, state.ErrTokenUnknown), errors.Is(err, state.ErrTokenExpired),
			errors.Is(err, state.ErrTokenUsedUp), errors.Is(err, state.ErrTokenRevoked), errors.Is(err, state.ErrRemoved):
			return nil, status.Error(codes.PermissionDenied, err.Error())
		}
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	var number int
	if err := json.Unmarshal(res.Value, &number); err != nil {
		return nil, status.Error(codes.Internal, "register result: "+err.Error())
	}
	var voter bool
	a.store.FSM.Read(func(reg *state.Registry) {
		if n := reg.ByID(r.NodeID); n != nil {
			voter = n.Voter
		}
	})
	sign := a.bundle.CA.SignCSR
	if voter {
		sign = a.bundle.CA.SignVoterCSR
	}
	cert, err := sign(r.CSR, r.NodeID, []net.IP{net.ParseIP(r.Addr)}, time.Duration(a.cfg.CertTTL))
	if err != nil {
		return nil, status.Error(codes.Internal, "signing the certificate: "+err.Error())
	}
	resp := &transport.JoinResponse{Cluster: a.Identity().Cluster, Number: number, CertPEM: cert,
		CACertPEM: a.bundle.CA.CertPEM, GossipKey: a.gossip.PrimaryKey(), Peers: a.peerAddrs(), Voter: voter}
	if voter {
		if resp.CAKeyPEM, err = a.bundle.CA.KeyPEM(); err != nil {
			return nil, status.Error(codes.Internal, err.Error())
		}
	}
	a.log.Info("admitted a node", "name", r.Name, "number", number, "addr", r.Addr, "source", src, "voter", voter)
	return resp, nil
}

// Renew signs a fresh certificate for the calling member: the node ID
// comes from the caller's certificate, the address from the registry.
func (h *rpcHandler) Renew(ctx context.Context, r *transport.RenewRequest) (*transport.RenewResponse, error) {
	a := h.agent()
	if !a.isLeader() {
		return nil, status.Error(codes.FailedPrecondition, "not the master")
	}
	caller, _ := transport.PeerFrom(ctx)
	var rec *state.NodeRec
	a.store.FSM.Read(func(reg *state.Registry) {
		if n := reg.ByID(caller); n != nil {
			cp := *n
			rec = &cp
		}
	})
	if rec == nil {
		return nil, status.Errorf(codes.PermissionDenied, "node %s is not a member", caller)
	}
	if len(r.CSR) == 0 || len(r.CSR) > 8192 {
		return nil, status.Error(codes.InvalidArgument, "bad certificate request")
	}
	if kh, err := pki.CSRKeyHash(r.CSR); err != nil {
		return nil, status.Error(codes.InvalidArgument, "renewal: "+err.Error())
	} else if rec.KeyHash != "" && kh != rec.KeyHash {
		return nil, status.Errorf(codes.PermissionDenied, "renewal: node %d must keep its key", rec.Number)
	}
	sign := a.bundle.CA.SignCSR
	if rec.Voter {
		sign = a.bundle.CA.SignVoterCSR
	}
	cert, err := sign(r.CSR, caller, []net.IP{net.ParseIP(rec.Addr)}, time.Duration(a.cfg.CertTTL))
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, "renewal: "+err.Error())
	}
	a.log.Info("renewed a node certificate", "node", rec.Number, "name", rec.Name)
	return &transport.RenewResponse{CertPEM: cert}, nil
}
