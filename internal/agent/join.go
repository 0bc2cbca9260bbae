package agent

import (
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ssi-cluster/ssi/internal/pki"
	"github.com/ssi-cluster/ssi/internal/statedir"
	"github.com/ssi-cluster/ssi/internal/transport"
)

// PeersFile lists gossip addresses of known members, for rejoining.
const PeersFile = "peers.json"

// TokenEnv is the environment variable that may carry a join token. No
// command line does: every user can read every command line (ps).
const TokenEnv = "SSI_TOKEN"

// token returns the join token from the token file (- for standard input)
// or the environment; "" when none is given.
func (a *Agent) token() (string, error) {
	switch f := a.cfg.TokenFile; {
	case f == "-":
		b, err := io.ReadAll(io.LimitReader(os.Stdin, 4096))
		if err != nil {
			return "", fmt.Errorf("token from standard input: %w", err)
		}
		return strings.TrimSpace(string(b)), nil
	case f != "":
		b, err := os.ReadFile(f)
		if err != nil {
			return "", fmt.Errorf("token file: %w", err)
		}
		if fi, err := os.Stat(f); err == nil && fi.Mode().Perm()&0o077 != 0 {
			a.log.Warn("the token file can be read by other users; make it mode 0600", "file", f, "mode", fi.Mode().Perm())
		}
		return strings.TrimSpace(string(b)), nil
	}
	return strings.TrimSpace(os.Getenv(TokenEnv)), nil
}

// joinHosts lists the addresses to contact for joining: --join and the
// static node list.
func (a *Agent) joinHosts() ([]string, error) {
	hosts := append([]string(nil), a.cfg.Join...)
	if a.cfg.NodesFile != "" {
		b, err := os.ReadFile(a.cfg.NodesFile)
		if err != nil {
			return nil, fmt.Errorf("nodes file: %w", err)
		}
		list, err := ParseNodesFile(b)
		if err != nil {
			return nil, fmt.Errorf("nodes file %s: %w", a.cfg.NodesFile, err)
		}
		hosts = append(hosts, list...)
	}
	return hosts, nil
}

// withPort returns host:port, keeping a port that is already there.
func withPort(addr string, port int) string {
	if _, _, err := net.SplitHostPort(addr); err == nil {
		return addr
	}
	return net.JoinHostPort(addr, strconv.Itoa(port))
}

func hostOf(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}

// joinCluster runs the join handshake for a node that has no identity yet,
// or (old and oldBundle set) one whose certificate expired while it was
// away: it pins
// the CA by the token, proves the token's secret, has its certificate
// signed and receives the cluster's keys. A node that joins again keeps its
// node ID, and so its number.
func (a *Agent) joinCluster(ctx context.Context, old *Identity, oldBundle *pki.Bundle) (*Identity, error) {
	tokStr, err := a.token()
	if err != nil {
		return nil, err
	}
	hosts, err := a.joinHosts()
	if err != nil {
		return nil, err
	}
	if tokStr == "" || len(hosts) == 0 {
		if old != nil {
			return nil, fmt.Errorf("to join again, give --join ADDR and a join token (--token-file FILE, --token-file - for standard input, or %s)", TokenEnv)
		}
		return nil, fmt.Errorf("this node is not in a cluster (no %s in %s): run 'ssi init' to make a new cluster, or give --join ADDR and a join token (--token-file FILE, --token-file - for standard input, or %s) to join one", IdentityFile, a.cfg.StateDir, TokenEnv)
	}
	tok, err := pki.ParseToken(tokStr)
	if err != nil {
		return nil, err
	}
	name := a.cfg.Name
	if old != nil {
		name = old.Name
	}
	if name == "" {
		if name, err = os.Hostname(); err != nil {
			return nil, fmt.Errorf("node name: %w", err)
		}
	}
	nodeID := ""
	if old != nil {
		nodeID = old.ID
	} else if nodeID, err = NewNodeID(); err != nil {
		return nil, err
	}
	// A node coming back keeps its key: the registry binds its ID to it.
	var key *ecdsa.PrivateKey
	if oldBundle != nil {
		key, err = oldBundle.NodeKey()
	} else {
		key, err = pki.NewNodeKey()
	}
	if err != nil {
		return nil, err
	}
	csr, err := pki.CreateCSR(key, nodeID)
	if err != nil {
		return nil, err
	}
	req := &transport.JoinRequest{Secret: tok.Secret[:], NodeID: nodeID, Name: name, Addr: a.advertise,
		GossipPort: a.cfg.GossipPort, RPCPort: a.cfg.RPCPort, RaftPort: a.cfg.RaftPort, CSR: csr}
	// A member that answers but is busy (its join limits, a master being
	// elected) is tried again for a while; refusals and addresses nobody
	// answers on end the join at once.
	deadline := time.Now().Add(joinRetryFor)
	for wait := 500 * time.Millisecond; ; wait = min(2*wait, 4*time.Second) {
		var errs []string
		busy := false
		for _, h := range hosts {
			addr := withPort(h, a.cfg.RPCPort)
			resp, err := joinVia(ctx, addr, tok, req, transport.FromIP(a.cfg.Bind))
			if err == nil {
				return a.saveJoin(resp, tok, key, nodeID, name, old)
			}
			if c := status.Code(err); c == codes.PermissionDenied || c == codes.AlreadyExists || c == codes.InvalidArgument {
				return nil, fmt.Errorf("join via %s refused: %s", addr, status.Convert(err).Message())
			}
			errs = append(errs, fmt.Sprintf("%s: %s", addr, status.Convert(err).Message()))
			busy = busy || joinBusy(err)
		}
		if !busy || time.Now().Add(wait).After(deadline) {
			return nil, fmt.Errorf("could not join the cluster through any address: %s", strings.Join(errs, "; "))
		}
		// Said once per round that is tried again; the last round's
		// failure is the error, printed once.
		a.log.Warn("join failed; trying again", "in", wait, "err", strings.Join(errs, "; "))
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
	}
}

// joinRetryFor bounds how long a join is tried again on busy members.
const joinRetryFor = 30 * time.Second

// joinBusy reports whether a failed join reached a member that could not
// take it now: its limits, no master yet, or its TLS allowance for
// joiners taken.
func joinBusy(err error) bool {
	switch status.Code(err) {
	case codes.ResourceExhausted, codes.FailedPrecondition:
		return true
	case codes.Unavailable:
		msg := status.Convert(err).Message()
		return !strings.Contains(msg, "connection refused") && !strings.Contains(msg, "no route to host") &&
			!strings.Contains(msg, "no such host") && !strings.Contains(msg, "i/o timeout") &&
			!strings.Contains(msg, "CA does not match")
	}
	return false
}

func joinVia(ctx context.Context, addr string, tok pki.Token, req *transport.JoinRequest, from transport.DialOption) (*transport.JoinResponse, error) {
	c, err := transport.DialJoin(addr, pki.JoinClientTLS(tok.CASum), from)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return c.Join(ctx, req)
}

func (a *Agent) saveJoin(resp *transport.JoinResponse, tok pki.Token, key *ecdsa.PrivateKey, nodeID, name string, old *Identity) (*Identity, error) {
	var ca *pki.CA
	var err error
	if len(resp.CAKeyPEM) > 0 {
		ca, err = pki.ParseCA(resp.CACertPEM, resp.CAKeyPEM)
	} else {
		ca, err = pki.ParseCACert(resp.CACertPEM)
	}
	if err != nil {
		return nil, fmt.Errorf("join response: %w", err)
	}
	if ca.Sum() != tok.CASum {
		return nil, errors.New("join response: the CA sent does not match the join token")
	}
	keyPEM, err := pki.KeyPEM(key)
	if err != nil {
		return nil, err
	}
	b := &pki.Bundle{CA: ca, NodeCertPEM: resp.CertPEM, NodeKeyPEM: keyPEM, GossipKey: resp.GossipKey}
	if err := b.Save(a.cfg.StateDir); err != nil {
		return nil, err
	}
	if err := savePeers(a.cfg.StateDir, resp.Peers); err != nil {
		return nil, err
	}
	id := &Identity{ID: nodeID, Name: name, Cluster: resp.Cluster, Number: resp.Number}
	if old != nil {
		id.Incarnation, id.Bootstrap = old.Incarnation, old.Bootstrap
	}
	if err := id.Save(a.cfg.StateDir); err != nil {
		return nil, err
	}
	a.log.Info("joined the cluster", "cluster", resp.Cluster, "number", resp.Number, "name", name, "voter", resp.Voter)
	return id, nil
}

func savePeers(dir string, peers []string) error {
	b, err := json.Marshal(peers)
	if err != nil {
		return err
	}
	return statedir.WriteFile(dir, PeersFile, b, 0o600)
}

func loadPeers(dir string) []string {
	b, err := os.ReadFile(filepath.Join(dir, PeersFile))
	if err != nil {
		return nil
	}
	var peers []string
	if json.Unmarshal(b, &peers) != nil {
		return nil
	}
	return peers
}

// ParseNodesFile parses a static node list (like openMosix's mosix.map): one
// address (IP or host, optionally :port) a line; blank lines and text after
// '#' are ignored.
func ParseNodesFile(b []byte) ([]string, error) {
	var out []string
	for i, line := range strings.Split(string(b), "\n") {
		if j := strings.IndexByte(line, '#'); j >= 0 {
			line = line[:j]
		}
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if strings.ContainsAny(line, " \t") {
			return nil, fmt.Errorf("line %d: %q: want one address a line", i+1, line)
		}
		if err := checkAddr(line); err != nil {
			return nil, fmt.Errorf("line %d: %q %v", i+1, line, err)
		}
		out = append(out, line)
	}
	return out, nil
}

// checkAddr accepts a host name, an IP, or either with :port ([v6]:port).
func checkAddr(s string) error {
	host := s
	if h, p, err := net.SplitHostPort(s); err == nil {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return errors.New("has a bad port")
		}
		host = h
	} else if strings.Contains(s, ":") && net.ParseIP(s) == nil {
		return errors.New("is not an address (write an IPv6 address with a port as [addr]:port)")
	}
	if host == "" || strings.ContainsAny(host, "/\\@[]:") && net.ParseIP(host) == nil {
		return errors.New("is not an address")
	}
	return nil
}
