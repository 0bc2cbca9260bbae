package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ssi-cluster/ssi/internal/api"
	"github.com/ssi-cluster/ssi/internal/client"
)

// startWait is how long a command waits for a just-started agent to
// know the cluster.
const startWait = 3 * time.Second

func newNodesCmd(g *globals) *cobra.Command {
	var watch, all bool
	cmd := &cobra.Command{
		Use:   "nodes",
		Short: "List the cluster's nodes with their state and load (cluster_membership)",
		Long: `List every node ever registered: number, name, address, committed state,
and the load each node gossips (run queue, load average, cores, speed, free
memory, processes). The master (raft leader) is marked with '*'. On a node
that is fenced (cut off, or excluded and not yet back), a line on standard
error says so: the list is then what that node knew last.

With --watch, print each membership transition as it is committed, with its
epoch, until interrupted (cluster_transition).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				if watch {
					return watchTransitions(ctx, c, g)
				}
				nodes, err := c.Nodes(ctx)
				// A just-started agent has no registry for a moment:
				// wait for it rather than print an empty table.
				for wait := time.Now().Add(startWait); err == nil && len(nodes) == 0 && time.Now().Before(wait); {
					time.Sleep(100 * time.Millisecond)
					nodes, err = c.Nodes(ctx)
				}
				if err != nil {
					return err
				}
				if len(nodes) == 0 {
					return fmt.Errorf("no node is registered yet after %s: the agent is starting, or has not joined a cluster (see its log)", startWait)
				}
				shown, left := nodes, 0
				if !all {
					shown, left = withoutLeft(nodes)
				}
				if g.json() {
					return g.printJSON(shown)
				}
				warnFenced(ctx, g, c)
				printNodes(g.stdout, shown)
				if left > 0 {
					fmt.Fprintf(g.stdout, "(%d node(s) left the cluster; ssi nodes --all lists them, ssi node remove N forgets one)\n", left)
				}
				return nil
			})
		},
	}
	cmd.Flags().BoolVarP(&watch, "watch", "w", false, "print transitions as they are committed")
	cmd.Flags().BoolVarP(&all, "all", "a", false, "also list nodes that left the cluster")
	return cmd
}

// warnFenced says on standard error when the asked agent is fenced (cut
// off, or excluded and not yet back): what it lists is what it knew last.
func warnFenced(ctx context.Context, g *globals, c *client.Client) {
	if self, err := c.Self(ctx); err == nil && !self.Member {
		fmt.Fprintf(g.stderr, "ssi: node %d is fenced: %s; below is what it knew last\n", self.Number, self.Fenced)
	}
}

// withoutLeft drops the nodes that left the cluster gracefully and counts
// them.
func withoutLeft(nodes []api.Node) ([]api.Node, int) {
	kept := make([]api.Node, 0, len(nodes))
	for _, n := range nodes {
		if n.State != api.StateLeft {
			kept = append(kept, n)
		}
	}
	return kept, len(nodes) - len(kept)
}

func printNodes(w io.Writer, nodes []api.Node) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tNAME\tADDRESS\tSTATE\tLOAD\tCPU\tCORES\tSPEED\tFREE MEM\tPROCS")
	for _, n := range nodes {
		num := strconv.Itoa(n.Number)
		if n.Master {
			num += "*"
		}
		load, cpu, cores, speed, mem, procs := "-", "-", "-", "-", "-", "-"
		if l := n.Load; l != nil {
			load = fmt.Sprintf("%.2f", l.Load1)
			cpu = fmt.Sprintf("%.0f%%", l.CPUUse*100)
			cores = strconv.Itoa(int(l.Cores))
			speed = strconv.Itoa(int(l.Speed))
			mem = humanBytes(l.MemFree)
			procs = strconv.Itoa(int(l.Procs))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", num, n.Name, n.Address, n.State, load, cpu, cores, speed, mem, procs)
	}
	tw.Flush()
}

func humanBytes(b uint64) string {
	const unit = 1024
	if b < unit {
		return fmt.Sprintf("%dB", b)
	}
	div, exp := uint64(unit), 0
	for n := b / unit; n >= unit; n /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f%ci", float64(b)/float64(div), "KMGTPE"[exp])
}

func formatTransition(t api.Transition) string {
	s := fmt.Sprintf("epoch %d  %s  %-6s node %d (%s) incarnation %d", t.Epoch,
		t.Time.Local().Format("15:04:05.000"), t.Kind, t.Node, t.Name, t.Incarnation)
	if t.Reason != "" {
		s += ": " + t.Reason
	}
	return s
}

// watchTransitions follows committed transitions from the current epoch on.
func watchTransitions(ctx context.Context, c *client.Client, g *globals) error {
	cl, err := c.Cluster(ctx)
	if err != nil {
		return err
	}
	after := cl.Epoch
	if !g.json() {
		fmt.Fprintf(g.stdout, "cluster %s at epoch %d; waiting for transitions (Ctrl-C to stop)\n", cl.Name, after)
	}
	enc := json.NewEncoder(g.stdout)
	for {
		ts, err := c.Transitions(ctx, after, true)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			// The agent may be restarting: say so and keep trying.
			fmt.Fprintf(g.stderr, "ssi: %v; retrying\n", err)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(time.Second):
			}
			continue
		}
		for _, t := range ts {
			if g.json() {
				enc.Encode(t)
			} else {
				fmt.Fprintln(g.stdout, formatTransition(t))
			}
			after = t.Epoch
		}
	}
}
