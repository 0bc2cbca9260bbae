package cli

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"runtime/debug"

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
		Short: "Print ssi's version, the commit it was built from and the Go it was built with",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v := buildVersion()
			if g.json() {
				return g.printJSON(v)
			}
			fmt.Fprintln(g.stdout, v)
			return nil
		},
	}
}

// version is what `ssi version` says.
type version struct {
	Version  string `json:"version"`
	Commit   string `json:"commit,omitempty"` // "" when built without VCS stamping
	Time     string `json:"commit_time,omitempty"`
	Modified bool   `json:"modified,omitempty"` // built from a tree with changes
	Go       string `json:"go"`
	Platform string `json:"platform"`
}

func (v version) String() string {
	s := "ssi " + v.Version
	if v.Commit != "" {
		c := v.Commit[:min(12, len(v.Commit))]
		if v.Modified {
			c += "+changes"
		}
		s += " (commit " + c
		if v.Time != "" {
			s += " of " + v.Time
		}
		s += ")"
	}
	return s + ", " + v.Go + " " + v.Platform
}

// buildVersion reads the commit from the binary's build information.
func buildVersion() version {
	v := version{Version: agent.Version, Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				v.Commit = s.Value
			case "vcs.time":
				v.Time = s.Value
			case "vcs.modified":
				v.Modified = s.Value == "true"
			}
		}
	}
	return v
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
