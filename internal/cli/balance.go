package cli

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ssi-cluster/ssi/internal/api"
	"github.com/ssi-cluster/ssi/internal/client"
)

func newBalanceCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "balance",
		Short: "The automatic load balancer: what it moved and why",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "log",
		Short: "List the automatic moves this node made (the last 256): when, which process, from, to, why and the expected gain",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				l, err := c.BalanceLog(ctx)
				if err != nil {
					return err
				}
				if g.json() {
					return g.printJSON(l)
				}
				printBalanceLog(g, l)
				return nil
			})
		},
	})
	return cmd
}

func printBalanceLog(g *globals, l api.BalanceLog) {
	if !l.On {
		fmt.Fprintln(g.stdout, "automatic balancing is off on this node (balance = false in its configuration)")
	}
	if len(l.Moves) == 0 {
		fmt.Fprintln(g.stdout, "no automatic moves")
		return
	}
	tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tCPID\tFROM\tTO\tREASON\tGAIN\tFREEZE\tRESULT")
	for _, m := range l.Moves {
		gain := fmt.Sprintf("%.1fs", m.Gain)
		if m.Reason == "memory" {
			gain = fmt.Sprintf("%.0fMiB", m.Gain/(1<<20))
		}
		result, freeze := "moved: "+m.Detail, fmt.Sprintf("%.0fms", m.FreezeMS)
		if m.Error != "" {
			result, freeze = "not made: "+m.Error, "-"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\t%s\t%s\t%s\n", m.Time.Local().Format(time.TimeOnly), m.CPID, m.From, m.To, m.Reason, gain, freeze, result)
	}
	tw.Flush()
}
