package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/ssi-cluster/ssi/internal/harness"
)

func newDevCmd() *cobra.Command {
	var (
		o        harness.Options
		loopback bool
		clean    bool
	)
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run a cluster of N nodes on this machine, until Ctrl-C",
		Long: `Run a cluster of N real agents on this machine, for trying ssi out and
developing it.

As root each node is a namespace of its own: its own network namespace and
address on a private bridge, its own PID namespace and /proc, its own
hostname. Without root (or with --loopback) the agents are plain processes on
loopback addresses. Files are shared between the nodes, as a cluster file
system would share them. With --cpu-share each node's processes are held to
that share of one CPU, so that nodes look like separate, slower machines.
The agents accept 'ssi run' from root on other nodes (allow_remote_root),
which suits a playground on one machine; a real cluster keeps it off.

While it runs, 'ssi --node N ...' talks to node N's agent and 'ssi dev shell N'
opens a shell inside node N. Ctrl-C stops the cluster and removes everything;
'ssi dev --clean' removes what a crashed 'ssi dev' left behind.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if clean {
				if err := harness.Sweep(); err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), "ssi dev: removed the leftovers of earlier clusters")
				return nil
			}
			o.Namespaces = harness.Root() && !loopback
			o.AgentArgs = append(o.AgentArgs, "--allow-remote-root", "true")
			return runDev(cmdContext(cmd), cmd.OutOrStdout(), o)
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.Nodes, "nodes", 3, "number of nodes")
	f.Float64Var(&o.CPUShare, "cpu-share", 0, "share of one CPU each node may use (0: no limit)")
	f.BoolVar(&loopback, "loopback", false, "plain processes on loopback addresses, even as root")
	f.StringVar(&o.Dir, "dir", "", "directory for the nodes' state, sockets and logs, kept afterwards (default: a temporary one, removed)")
	f.BoolVar(&clean, "clean", false, "remove the namespaces, cgroups and dev file a crashed 'ssi dev' left, and exit")
	cmd.AddCommand(newDevShellCmd())
	return cmd
}

func runDev(ctx context.Context, out io.Writer, o harness.Options) error {
	if d, err := harness.LookupDev(); err == nil {
		return fmt.Errorf("an ssi dev cluster is already running (pid %d, see %s)", d.PID, harness.DevFile())
	}
	bin, err := os.Executable()
	if err != nil {
		return err
	}
	o.Binary = bin
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	c, err := harness.Start(ctx, o)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.WriteDevFile(); err != nil {
		return err
	}
	formCtx, cancel := context.WithTimeout(ctx, time.Minute)
	err = c.WaitFormed(formCtx)
	cancel()
	if err != nil {
		return err
	}
	table, err := c.CLI(ctx, 1, "nodes")
	if err != nil {
		fmt.Fprintf(out, "ssi dev: ssi nodes: %v\n", err)
	}
	out.Write(table)
	showRun(out, c)
	printDevHelp(out, c)
	<-ctx.Done()
	fmt.Fprintln(out, "\nssi dev: stopping the cluster")
	return c.Close()
}

// showRun runs `hostname` on the last node from node 1, to show remote
// execution working.
func showRun(out io.Writer, c *harness.Cluster) {
	n := len(c.Nodes)
	cmd := c.Command(1, c.Binary, "--socket", c.Nodes[0].Socket, "run", "--node", strconv.Itoa(n), "hostname")
	got, err := cmd.CombinedOutput()
	fmt.Fprintf(out, "\nssi run --node %d hostname    (from node 1)\n", n)
	if err != nil {
		fmt.Fprintf(out, "ssi dev: %v: %s", err, got)
		return
	}
	out.Write(got)
}

func printDevHelp(out io.Writer, c *harness.Cluster) {
	n := len(c.Nodes)
	last := c.Nodes[n-1]
	if c.Namespaces {
		fmt.Fprintf(out, "\nssi dev: %d nodes up (namespaces %s..n%d, bridge in %s)\n", n, c.Nodes[0].Netns, n, c.Hub)
	} else {
		fmt.Fprintf(out, "\nssi dev: %d nodes up (loopback mode: agents on %s..%s)\n", n, c.Nodes[0].Addr, last.Addr)
	}
	for _, nd := range c.Nodes {
		fmt.Fprintf(out, "  %-6s %-15s log %s\n", nd.Name, nd.Addr, nd.Log)
	}
	fmt.Fprintf(out, "  ssi --node %d nodes            # ask node %d's agent\n", n, n)
	if c.Namespaces {
		fmt.Fprintf(out, "  ssi dev shell %d               # a shell inside node %d, as if logged in there\n", n, n)
		fmt.Fprintf(out, "  ssi run --node 1 sh            # (in that shell) a shell on node 1, its deputy on node %d\n", n)
	} else {
		fmt.Fprintf(out, "  ssi dev shell %d               # a shell with SSI_SOCKET set to node %d's socket\n", n, n)
	}
	fmt.Fprintln(out, "Ctrl-C stops the cluster and removes everything.")
}

func newDevShellCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "shell N",
		Short: "Open a shell inside node N of the running dev cluster",
		Args:  cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			n, err := strconv.Atoi(args[0])
			if err != nil {
				return fmt.Errorf("node %q: want a node number", args[0])
			}
			d, err := harness.LookupDev()
			if err != nil {
				return err
			}
			sh, err := d.Shell(n)
			if err != nil {
				return err
			}
			if sh.Err != nil {
				return sh.Err
			}
			// Only 0-2 go into the node: a descriptor our caller left
			// open (a terminal program's pipe) would be inherited by
			// everything started there and make it unmovable.
			if err := closeOnExecAbove2(); err != nil {
				return err
			}
			return syscall.Exec(sh.Path, sh.Args, sh.Env)
		},
	}
}

// closeOnExecAbove2 marks every descriptor above 2 close-on-exec.
func closeOnExecAbove2() error {
	if unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC) == nil {
		return nil
	}
	ents, err := os.ReadDir("/proc/self/fd") // before Linux 5.11
	if err != nil {
		return fmt.Errorf("list open descriptors: %w", err)
	}
	for _, e := range ents {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd > 2 {
			unix.CloseOnExec(fd)
		}
	}
	return nil
}

// newNodeInitCmd is the init of a node of a namespaced harness cluster; the
// harness starts it, nobody else should.
func newNodeInitCmd() *cobra.Command {
	return &cobra.Command{
		Use:                "__nodeinit",
		Hidden:             true,
		DisableFlagParsing: true,
		RunE: func(_ *cobra.Command, args []string) error {
			return harness.NodeInit(args)
		},
	}
}
