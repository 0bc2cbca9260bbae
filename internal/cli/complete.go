package cli

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ssi-cluster/ssi/internal/api"
	"github.com/ssi-cluster/ssi/internal/client"
)

// Shell completion (cobra's: `ssi completion bash|zsh|fish|powershell`)
// of what only the agent knows: node numbers and cluster pids, each with
// a word of description. The agent is asked with a short timeout; if it
// does not answer, nothing is offered (and no file names either).

// completeTimeout bounds a completion's question to the agent.
const completeTimeout = 2 * time.Second

// ask asks the agent fn, within completeTimeout.
func (g *globals) ask(fn func(ctx context.Context, c *client.Client) error) error {
	c, err := g.client()
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), completeTimeout)
	defer cancel()
	return fn(ctx, c)
}

// nodeCompletions are the registered nodes, "N\tname state", and extra.
func (g *globals) nodeCompletions(extra ...string) []cobra.Completion {
	var nodes []api.Node
	if g.ask(func(ctx context.Context, c *client.Client) (err error) { nodes, err = c.Nodes(ctx); return err }) != nil {
		return nil
	}
	out := make([]cobra.Completion, 0, len(nodes)+len(extra))
	for _, n := range nodes {
		out = append(out, cobra.CompletionWithDesc(strconv.Itoa(n.Number), n.Name+" "+n.State))
	}
	return append(out, extra...)
}

// cpidCompletions are the processes ps lists (yours, or all for root),
// "CPID\tnode: command".
func (g *globals) cpidCompletions() []cobra.Completion {
	user := ""
	if os.Geteuid() != 0 {
		user = strconv.Itoa(os.Geteuid())
	}
	var reply api.ProcsReply
	if g.ask(func(ctx context.Context, c *client.Client) (err error) {
		reply, err = c.Procs(ctx, 0, user)
		return err
	}) != nil {
		return nil
	}
	out := make([]cobra.Completion, 0, len(reply.Procs))
	for _, p := range reply.Procs {
		cmd := p.Command
		if len(cmd) > 40 {
			cmd = cmd[:40] + "..."
		}
		out = append(out, cobra.CompletionWithDesc(strconv.FormatInt(p.CPID, 10), fmt.Sprintf("node %d: %s", p.Node, strings.ReplaceAll(cmd, "\t", " "))))
	}
	return out
}

// completeArgs completes the i-th argument with kinds[i] ("cpid",
// "node", "target": a node, home or fast), the last kind for any after;
// "" completes file names (cobra's default).
func (g *globals) completeArgs(kinds ...string) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		kind := kinds[min(len(args), len(kinds)-1)]
		switch kind {
		case "cpid":
			return g.cpidCompletions(), cobra.ShellCompDirectiveNoFileComp
		case "node":
			return g.nodeCompletions(), cobra.ShellCompDirectiveNoFileComp
		case "target":
			return g.nodeCompletions("home\tthe process's home node", "fast\tthe best node by load"), cobra.ShellCompDirectiveNoFileComp
		case "none":
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return nil, cobra.ShellCompDirectiveDefault
	}
}

// completeNodeFlag completes a flag that takes a node number.
func (g *globals) completeNodeFlag(cmd *cobra.Command, name string) {
	cmd.RegisterFlagCompletionFunc(name, func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
		return g.nodeCompletions(), cobra.ShellCompDirectiveNoFileComp
	})
}

// wireCompletion gives the commands that take nodes or cluster pids
// their completions.
func (g *globals) wireCompletion(root *cobra.Command) {
	for path, kinds := range map[string][]string{
		"migrate":     {"cpid", "target", "none"},
		"checkpoint":  {"cpid", "", "none"},
		"where":       {"cpid", "none"},
		"kill":        {"cpid"},
		"freeze":      {"cpid"},
		"continue":    {"cpid"},
		"node info":   {"node", "none"},
		"node avail":  {"node", "none"},
		"node remove": {"node", "none"},
		"onnode":      {"node", ""},
	} {
		if cmd, _, err := root.Find(strings.Fields(path)); err == nil && cmd != root {
			cmd.ValidArgsFunction = g.completeArgs(kinds...)
		}
	}
	if run, _, err := root.Find([]string{"run"}); err == nil {
		g.completeNodeFlag(run, "node")
	}
}
