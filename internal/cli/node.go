package cli

import (
	"context"
	"fmt"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ssi-cluster/ssi/internal/api"
	"github.com/ssi-cluster/ssi/internal/client"
)

func newNodeCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "node",
		Short: "One node: info, avail, leave, remove",
	}
	cmd.AddCommand(newNodeInfoCmd(g), newNodeAvailCmd(g), newNodeLeaveCmd(g), newNodeRemoveCmd(g))
	return cmd
}

func parseNodeArg(args []string) (int, error) {
	if len(args) == 0 || args[0] == "self" {
		return 0, nil
	}
	n, err := strconv.Atoi(args[0])
	if err != nil || n < 1 {
		return 0, fmt.Errorf("%q is not a node number", args[0])
	}
	return n, nil
}

func newNodeInfoCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "info [N]",
		Short: "Show node N (default: this node) (cluster_node_info)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := parseNodeArg(args)
			if err != nil {
				return err
			}
			return g.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				node, err := c.Node(ctx, n)
				if err != nil {
					return err
				}
				if g.json() {
					return g.printJSON(node)
				}
				if n == 0 {
					warnFenced(ctx, g, c)
				}
				printNodeInfo(g, node)
				return nil
			})
		},
	}
}

func printNodeInfo(g *globals, n api.Node) {
	tw := tabwriter.NewWriter(g.stdout, 0, 4, 1, ' ', 0)
	role := "member"
	switch {
	case n.Master:
		role = "master (raft leader)"
	case n.Voter:
		role = "voter"
	}
	fmt.Fprintf(tw, "number:\t%d\n", n.Number)
	fmt.Fprintf(tw, "name:\t%s\n", n.Name)
	fmt.Fprintf(tw, "id:\t%s\n", n.ID)
	fmt.Fprintf(tw, "address:\t%s\n", n.Address)
	fmt.Fprintf(tw, "state:\t%s since %s (epoch %d)\n", n.State, n.Since.Local().Format(time.RFC3339), n.Epoch)
	fmt.Fprintf(tw, "incarnation:\t%d\n", n.Incarnation)
	fmt.Fprintf(tw, "role:\t%s\n", role)
	if l := n.Load; l != nil {
		fmt.Fprintf(tw, "load:\t%.2f %.2f %.2f (run queue %d, cpu %.0f%%)\n", l.Load1, l.Load5, l.Load15, l.RunQueue, l.CPUUse*100)
		fmt.Fprintf(tw, "cores:\t%d\n", l.Cores)
		fmt.Fprintf(tw, "speed:\t%d\n", l.Speed)
		fmt.Fprintf(tw, "memory:\t%s free of %s\n", humanBytes(l.MemFree), humanBytes(l.MemTotal))
		fmt.Fprintf(tw, "processes:\t%d\n", l.Procs)
		fmt.Fprintf(tw, "load age:\t%.1fs\n", l.Age)
	}
	tw.Flush()
}

func newNodeAvailCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "avail N",
		Short: "Exit 0 if node N is up, 1 if not (cluster_node_avail)",
		Long: `Exit with status 0 if node N is up in the committed membership, 1 if it is
down, has left or does not exist; for shell scripts:

    if ssi node avail 3; then ssi onnode 3 make; fi

Nothing is printed unless -o json is given. Other errors (no agent) exit 2.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := parseNodeArg(args)
			if err != nil {
				return exitWith(g, 2, err)
			}
			c, err := g.client()
			if err != nil {
				return exitWith(g, 2, err)
			}
			defer c.Close()
			node, err := c.Node(cmdContext(cmd), n)
			up := err == nil && node.State == api.StateUp
			if err != nil && !isNotFound(err) {
				return exitWith(g, 2, err)
			}
			if g.json() {
				g.printJSON(map[string]any{"node": n, "available": up})
			}
			if !up {
				return exitError{1}
			}
			return nil
		},
	}
}

func newNodeLeaveCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "leave",
		Short: "Make this node leave the cluster (root only); its agent stops",
		Long: `Commit a 'leave' transition for this node, hand the master role over if this
node holds it, leave gossip and stop the agent. The node keeps its number:
starting the agent again later brings it back.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				t, err := c.Leave(ctx)
				if err != nil {
					return err
				}
				if g.json() {
					return g.printJSON(t)
				}
				fmt.Fprintln(g.stdout, formatTransition(t))
				return nil
			})
		},
	}
}

func newNodeRemoveCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "remove N",
		Short: "Remove node N from the cluster for good (root, on a voter)",
		Long: `Forget node N: its certificate is revoked at once (every agent refuses it at
the TLS handshake and closes the connections it holds), it is removed from
raft and from the registry, and its number is never used again. The node
cannot come back with its old state; it can only join again as a new node,
with a valid token, after its state directory is emptied.

Use it for a machine that is gone or no longer trusted. A node that is only
going away for a while leaves with 'ssi node leave' on it instead.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := parseNodeArg(args)
			if err != nil || n == 0 {
				return fmt.Errorf("%q is not a node number", args[0])
			}
			return g.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				t, err := c.RemoveNode(ctx, n)
				if err != nil {
					return err
				}
				if g.json() {
					return g.printJSON(t)
				}
				fmt.Fprintln(g.stdout, formatTransition(t))
				return nil
			})
		},
	}
}
