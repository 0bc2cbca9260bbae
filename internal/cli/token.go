package cli

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ssi-cluster/ssi/internal/api"
	"github.com/ssi-cluster/ssi/internal/client"
)

func newTokenCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Join tokens: create, list, revoke (root, on a voter)",
		Long: `Join tokens admit new nodes. The cluster keeps only a hash of each token; its
text is shown once, when it is made. A token may expire (--ttl), be limited
to a number of joins (--uses) and be revoked at any time; a refused join
says which of these stopped it.

A plain token admits members: they run processes and never vote or hold the
cluster CA's key. A --voter token admits voters, which receive the CA key
and may become the master: give those only to the machines you trust to run
the cluster (up to max_voters of them vote, the rest stand by).

Hand a token to a joining node in a file (mode 0600) or on standard input,
never on a command line, which every user can read:

    ssi token create --ttl 1h --uses 1 > /root/join-token
    ssi agent --join ADDR --token-file /root/join-token`,
	}
	cmd.AddCommand(newTokenCreateCmd(g), newTokenListCmd(g), newTokenRevokeCmd(g))
	return cmd
}

func newTokenCreateCmd(g *globals) *cobra.Command {
	var req api.TokenCreate
	var ttl time.Duration
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Make a join token and print it (once)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if ttl < 0 {
				return fmt.Errorf("--ttl %v: want 0 (never expires) or more", ttl)
			}
			if req.MaxUses < 0 {
				return fmt.Errorf("--uses %d: want 0 (no limit) or more", req.MaxUses)
			}
			if ttl > 0 {
				req.TTL = ttl.String()
			}
			return g.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				t, err := c.CreateToken(ctx, req)
				if err != nil {
					return err
				}
				if g.json() {
					return g.printJSON(t)
				}
				// The token alone on stdout, so that '> file' keeps it;
				// what it is goes to stderr.
				fmt.Fprintln(g.stdout, t.Secret)
				fmt.Fprintf(g.stderr, "token %s: %s\n", t.ID, describeToken(t.Token))
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.DurationVar(&ttl, "ttl", 24*time.Hour, "how long the token admits nodes (0: until revoked)")
	f.IntVar(&req.MaxUses, "uses", 0, "how many nodes it may admit (0: no limit)")
	f.StringVar(&req.Description, "description", "", "a note shown by 'ssi token list'")
	f.BoolVar(&req.Voter, "voter", false, "admit voters (they receive the cluster CA key and may become master)")
	return cmd
}

func describeToken(t api.Token) string {
	var parts []string
	if t.Voter {
		parts = append(parts, "admits voters")
	} else {
		parts = append(parts, "admits members")
	}
	if t.Expires.IsZero() {
		parts = append(parts, "never expires")
	} else {
		parts = append(parts, "expires "+t.Expires.Local().Format(time.RFC3339))
	}
	if t.MaxUses > 0 {
		parts = append(parts, fmt.Sprintf("%d of %d uses", t.Uses, t.MaxUses))
	} else {
		parts = append(parts, fmt.Sprintf("%d uses, no limit", t.Uses))
	}
	return strings.Join(parts, ", ")
}

func newTokenListCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the join tokens (never their secrets)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				ts, err := c.Tokens(ctx)
				if err != nil {
					return err
				}
				if g.json() {
					return g.printJSON(ts)
				}
				tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tSTATUS\tROLE\tUSES\tEXPIRES\tDESCRIPTION")
				for _, t := range ts {
					role, uses, exp := "member", fmt.Sprint(t.Uses), "never"
					if t.Voter {
						role = "voter"
					}
					if t.MaxUses > 0 {
						uses = fmt.Sprintf("%d/%d", t.Uses, t.MaxUses)
					}
					if !t.Expires.IsZero() {
						exp = t.Expires.Local().Format("2006-01-02 15:04")
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Status, role, uses, exp, t.Description)
				}
				return tw.Flush()
			})
		},
	}
}

func newTokenRevokeCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke a join token: it admits no one from now on",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				t, err := c.RevokeToken(ctx, args[0])
				if err != nil {
					return err
				}
				if g.json() {
					return g.printJSON(t)
				}
				fmt.Fprintf(g.stdout, "token %s revoked (%d uses)\n", t.ID, t.Uses)
				return nil
			})
		},
	}
}
