package cli

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/spf13/cobra"

	"github.com/ssi-cluster/ssi/internal/agent"
	"github.com/ssi-cluster/ssi/internal/client"
)

func newClusterCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "cluster", Short: "The cluster as a whole"}
	cmd.AddCommand(&cobra.Command{
		Use:   "name",
		Short: "Print the cluster's name (cluster_name)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				cl, err := c.Cluster(ctx)
				if err != nil {
					return err
				}
				if g.json() {
					return g.printJSON(cl)
				}
				fmt.Fprintln(g.stdout, cl.Name)
				return nil
			})
		},
	})
	return cmd
}

func newVersionCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print ssi's version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintln(g.stdout, "ssi", agent.Version)
		},
	}
}

func isNotFound(err error) bool {
	var ce *client.Error
	return errors.As(err, &ce) && ce.Status == http.StatusNotFound
}

// exitWith prints err and returns an exit status other than 1.
func exitWith(g *globals, code int, err error) error {
	fmt.Fprintf(g.stderr, "ssi: %v\n", err)
	return exitError{code}
}
