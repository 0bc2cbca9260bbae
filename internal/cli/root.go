// Package cli holds ssi's subcommands, one file each, built with cobra. Every
// subcommand but `agent`, `init` and `dev` is a client of the local agent over
// its Unix socket (package client).
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/ssi-cluster/ssi/internal/client"
	"github.com/ssi-cluster/ssi/internal/harness"
	"github.com/ssi-cluster/ssi/internal/hold"
	"github.com/ssi-cluster/ssi/internal/rexec"
)

// globals are the flags every subcommand shares.
type globals struct {
	socket string
	node   int
	output string
	stdout io.Writer
	stderr io.Writer
}

// exitError carries an exit status without a message (e.g. `node avail`).
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// Run runs the ssi command line and returns the process exit status.
func Run(args []string) int {
	if len(args) > 0 && args[0] == rexec.ShimArg {
		rexec.Shim() // the exec helper: never returns
	}
	if len(args) > 0 && args[0] == hold.Arg {
		hold.Main(args[1:]) // a process's holder: never returns
	}
	return run(args, os.Stdout, os.Stderr)
}

func run(args []string, stdout, stderr io.Writer) int {
	g := &globals{stdout: stdout, stderr: stderr}
	root := newRoot(g)
	node, rest, err := leadingNode(args)
	if err != nil {
		fmt.Fprintf(stderr, "ssi: %v\n", err)
		return 1
	}
	if node != 0 {
		if err := runInDevNode(node, rest); err != nil {
			fmt.Fprintf(stderr, "ssi: %v\n", err)
			return 1
		}
		args, g.node = rest, node
	}
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err = root.Execute()
	var ee exitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.code
	default:
		fmt.Fprintf(stderr, "ssi: %v\n", err)
		return 1
	}
}

func newRoot(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:   "ssi",
		Short: "ssi makes a set of Linux machines one single system image",
		Long: `ssi makes a set of Linux machines behave as one machine.

'ssi agent' is the daemon on every node; every other command talks to the
local agent over its Unix socket. Start with 'ssi dev --nodes 3' for a local
cluster, or see docs/install.md for real machines.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	def := os.Getenv("SSI_SOCKET")
	if def == "" {
		def = "/run/ssi/agent.sock"
	}
	pf := root.PersistentFlags()
	pf.StringVar(&g.socket, "socket", def, "the local agent's Unix socket (env SSI_SOCKET)")
	pf.IntVar(&g.node, "node", 0, "talk to node N of the running 'ssi dev' cluster")
	pf.StringVarP(&g.output, "output", "o", "table", "output format: table or json")
	root.AddCommand(
		newAgentCmd(), newInitCmd(g), newClusterCmd(g), newNodesCmd(g), newNodeCmd(g),
		newPsCmd(g), newWhereCmd(g), newKillCmd(g), newRunCmd(g), newOnnodeCmd(g), newFastnodeCmd(g),
		newVersionCmd(g), newDevCmd(), newNodeInitCmd(),
		newMigrateCmd(g), newCheckpointCmd(g), newRestoreCmd(g), newFreezeCmd(g), newContinueCmd(g),
		newTokenCmd(g), newBalanceCmd(g),
	)
	g.wireCompletion(root)
	return root
}

// client returns a client of the agent chosen by --socket or --node.
func (g *globals) client() (*client.Client, error) {
	if g.output != "table" && g.output != "json" {
		return nil, fmt.Errorf("--output %q: want table or json", g.output)
	}
	if g.node == 0 {
		return client.New(g.socket), nil
	}
	dev, err := harness.LookupDev()
	if err != nil {
		return nil, fmt.Errorf("--node %d: %w", g.node, err)
	}
	sock, err := dev.Socket(g.node)
	if err != nil {
		return nil, fmt.Errorf("--node %d: %w", g.node, err)
	}
	return client.New(sock), nil
}

func (g *globals) json() bool { return g.output == "json" }

func (g *globals) printJSON(v any) error {
	enc := json.NewEncoder(g.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func cmdContext(cmd *cobra.Command) context.Context {
	if ctx := cmd.Context(); ctx != nil {
		return ctx
	}
	return context.Background()
}

// withClient runs fn with a client of the agent chosen by --socket or
// --node, and closes it.
func (g *globals) withClient(cmd *cobra.Command, fn func(ctx context.Context, c *client.Client) error) error {
	c, err := g.client()
	if err != nil {
		return err
	}
	defer c.Close()
	return fn(cmdContext(cmd), c)
}
