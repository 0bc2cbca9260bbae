package cli

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/ssi-cluster/ssi/internal/agent"
	"github.com/ssi-cluster/ssi/internal/config"
	"github.com/ssi-cluster/ssi/internal/pki"
)

func newInitCmd(g *globals) *cobra.Command {
	var stateDir, cluster, name, advertise string
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Make a new cluster with this node as its first member",
		Long: `Make a new cluster: its name, a cluster CA and this node's certificate, the
gossip encryption key and a join token, all in the state directory. Then
start 'ssi agent' here, and on every other node
'ssi agent --join ADDR --token TOKEN'.`,
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
			tok, err := initCluster(stateDir, cluster, name, ips)
			if err != nil {
				return err
			}
			if g.json() {
				return g.printJSON(map[string]string{"cluster": cluster, "state_dir": stateDir, "token": tok})
			}
			fmt.Fprintf(g.stdout, "Cluster %q made in %s; %s is its first node.\n", cluster, stateDir, name)
			fmt.Fprintf(g.stdout, "Start this node:      ssi agent --state-dir %s\n", stateDir)
			fmt.Fprintf(g.stdout, "Join another node:    ssi agent --join %s --token %s\n", orPlaceholder(advertise), tok)
			fmt.Fprintf(g.stdout, "The token is kept in %s (root only).\n", filepath.Join(stateDir, pki.TokenFile))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&stateDir, "state-dir", config.Defaults().StateDir, "state directory")
	f.StringVar(&cluster, "cluster-name", "ssi", "the cluster's name")
	f.StringVar(&name, "name", "", "this node's name (default: the hostname)")
	f.StringVar(&advertise, "advertise", "", "this node's IP address, put in its certificate")
	return cmd
}

func orPlaceholder(s string) string {
	if s == "" {
		return "<this node's address>"
	}
	return s
}

// initCluster writes a new cluster's credentials and this node's identity.
func initCluster(dir, cluster, name string, ips []net.IP) (string, error) {
	if id, err := agent.LoadIdentity(dir); err == nil {
		return "", fmt.Errorf("%s already holds node %s of cluster %q; remove it to start over", dir, id.Name, id.Cluster)
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	if err := agent.CheckStateDir(dir); err != nil {
		return "", err
	}
	ca, err := pki.NewCA(cluster)
	if err != nil {
		return "", err
	}
	nodeID, err := agent.NewNodeID()
	if err != nil {
		return "", err
	}
	cert, key, err := ca.IssueNode(nodeID, ips)
	if err != nil {
		return "", err
	}
	gk, err := pki.NewGossipKey()
	if err != nil {
		return "", err
	}
	tok, err := pki.NewToken(ca)
	if err != nil {
		return "", err
	}
	b := &pki.Bundle{CA: ca, NodeCertPEM: cert, NodeKeyPEM: key, GossipKey: gk, Token: tok}
	if err := b.Save(dir); err != nil {
		return "", err
	}
	id := &agent.Identity{ID: nodeID, Name: name, Cluster: cluster, Bootstrap: true}
	if err := id.Save(dir); err != nil {
		return "", err
	}
	return tok.String(), nil
}
