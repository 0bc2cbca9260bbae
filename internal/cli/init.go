package cli

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/ssi-cluster/ssi/internal/agent"
	"github.com/ssi-cluster/ssi/internal/config"
	"github.com/ssi-cluster/ssi/internal/pki"
)

func newInitCmd(g *globals) *cobra.Command {
	var stateDir, cluster, name, advertise string
	var tokenTTL time.Duration
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Make a new cluster with this node as its first member",
		Long: `Make a new cluster: its name, a cluster CA and this node's certificate, the
gossip encryption key and a join token, all in the state directory. Then
start 'ssi agent' here, and on every other node
'ssi agent --join ADDR --token-file FILE' with the token in FILE (mode 0600).

The token ssi init makes admits members (they never vote nor hold the CA
key) and expires after --token-ttl; make more with 'ssi token create', and
tokens for voters with 'ssi token create --voter'.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !config.ValidName(cluster) {
				return fmt.Errorf("--cluster-name %q: use 1-63 letters, digits, '-', '_' or '.'", cluster)
			}
			if name == "" {
				h, err := os.Hostname()
				if err != nil {
					return err
				}
				name = h
			}
			if !config.ValidName(name) {
				return fmt.Errorf("--name %q: use 1-63 letters, digits, '-', '_' or '.'", name)
			}
			var ips []net.IP
			if advertise != "" {
				ip := net.ParseIP(advertise)
				if ip == nil {
					return fmt.Errorf("--advertise %q is not an IP address", advertise)
				}
				ips = append(ips, ip)
			}
			if tokenTTL < 0 {
				return fmt.Errorf("--token-ttl %v: want 0 (never expires) or more", tokenTTL)
			}
			tok, expires, err := initCluster(stateDir, cluster, name, ips, tokenTTL)
			if err != nil {
				return err
			}
			tokFile := filepath.Join(stateDir, pki.TokenFile)
			if g.json() {
				return g.printJSON(map[string]any{"cluster": cluster, "state_dir": stateDir, "token_file": tokFile,
					"token_id": tok.ID(), "token_expires": expires})
			}
			exp := "never expires"
			if !expires.IsZero() {
				exp = "expires " + expires.Local().Format(time.RFC3339)
			}
			fmt.Fprintf(g.stdout, "Cluster %q made in %s; %s is its first node.\n", cluster, stateDir, name)
			fmt.Fprintf(g.stdout, "Start this node:      ssi agent --state-dir %s\n", stateDir)
			fmt.Fprintf(g.stdout, "Join token:           %s (root only; admits members, %s)\n", tokFile, exp)
			fmt.Fprintf(g.stdout, "Join another node:    copy that file to it (mode 0600), then there\n")
			fmt.Fprintf(g.stdout, "                      ssi agent --join %s --token-file FILE\n", orPlaceholder(advertise))
			fmt.Fprintf(g.stdout, "Voters (they vote and hold the CA key): 'ssi token create --voter' once this node runs.\n")
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&stateDir, "state-dir", config.Defaults().StateDir, "state directory")
	f.StringVar(&cluster, "cluster-name", "ssi", "the cluster's name")
	f.StringVar(&name, "name", "", "this node's name (default: the hostname)")
	f.StringVar(&advertise, "advertise", "", "this node's IP address, put in its certificate")
	f.DurationVar(&tokenTTL, "token-ttl", 24*time.Hour, "how long the first join token admits nodes (0: until revoked)")
	return cmd
}

func orPlaceholder(s string) string {
	if s == "" {
		return "<this node's address>"
	}
	return s
}

// initCluster writes a new cluster's credentials, this node's identity and
// the first join token.
func initCluster(dir, cluster, name string, ips []net.IP, tokenTTL time.Duration) (pki.Token, time.Time, error) {
	var expires time.Time
	if tokenTTL > 0 {
		expires = time.Now().Add(tokenTTL).UTC()
	}
	tok, err := writeCluster(dir, cluster, name, ips, expires)
	return tok, expires, err
}

func writeCluster(dir, cluster, name string, ips []net.IP, tokenExpires time.Time) (pki.Token, error) {
	if id, err := agent.LoadIdentity(dir); err == nil {
		return pki.Token{}, fmt.Errorf("%s already holds node %s of cluster %q; remove it to start over", dir, id.Name, id.Cluster)
	} else if !errors.Is(err, os.ErrNotExist) {
		return pki.Token{}, err
	}
	if err := agent.CheckStateDir(dir); err != nil {
		return pki.Token{}, err
	}
	ca, err := pki.NewCA(cluster)
	if err != nil {
		return pki.Token{}, err
	}
	nodeID, err := agent.NewNodeID()
	if err != nil {
		return pki.Token{}, err
	}
	cert, key, err := ca.IssueVoter(nodeID, ips, 0)
	if err != nil {
		return pki.Token{}, err
	}
	gk, err := pki.NewGossipKey()
	if err != nil {
		return pki.Token{}, err
	}
	tok, err := pki.NewToken(ca)
	if err != nil {
		return pki.Token{}, err
	}
	b := &pki.Bundle{CA: ca, NodeCertPEM: cert, NodeKeyPEM: key, GossipKey: gk}
	if err := b.Save(dir); err != nil {
		return pki.Token{}, err
	}
	if err := pki.SaveToken(dir, tok); err != nil {
		return pki.Token{}, err
	}
	id := &agent.Identity{ID: nodeID, Name: name, Cluster: cluster, Bootstrap: true, InitTokenExpires: tokenExpires}
	if err := id.Save(dir); err != nil {
		return pki.Token{}, err
	}
	return tok, nil
}
