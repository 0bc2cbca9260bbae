package cli

import (
	"bufio"
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/ssi-cluster/ssi/internal/api"
	"github.com/ssi-cluster/ssi/internal/client"
	"github.com/ssi-cluster/ssi/internal/vproc"
)

func newPsCmd(g *globals) *cobra.Command {
	var node int
	var user string
	var tree bool
	cmd := &cobra.Command{
		Use:   "ps",
		Short: "List the processes of every node, with cluster pids",
		Long: `List every process of every node that is up: cluster pid (CPID), node, local
pid, user, state, CPU, resident memory, CPU time and command. A cluster pid
is the origin node's number and the pid there (shown as NODE:PID too, which
every command accepts). Nodes that could not be asked are named on stderr.
--forest shows parents and children across nodes: a process run by 'ssi
run' sits under the parent of its deputy, on another node.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				reply, err := c.Procs(ctx, node, user)
				if err != nil {
					return err
				}
				if g.json() {
					return g.printJSON(reply)
				}
				if tree {
					printForest(g, reply.Procs)
				} else {
					printProcs(g, reply.Procs)
				}
				var down []string
				for n, why := range reply.Unreachable {
					down = append(down, fmt.Sprintf("node %s: %s", n, why))
				}
				sort.Strings(down)
				for _, d := range down {
					fmt.Fprintf(g.stderr, "ssi: not listed: %s\n", d)
				}
				return nil
			})
		},
	}
	cmd.Flags().IntVar(&node, "on", 0, "only the processes of node N")
	cmd.Flags().StringVarP(&user, "user", "u", "", "only the processes of this user (name or uid)")
	cmd.Flags().BoolVar(&tree, "forest", false, "show the process tree across nodes")
	return cmd
}

func printProcs(g *globals, procs []api.Proc) {
	printRows(g, procs, nil)
}

func printForest(g *globals, procs []api.Proc) {
	order, depth := forest(procs)
	printRows(g, order, depth)
}

// forest orders procs as a tree by parent cluster pid (children after
// their parent, by cluster pid) and returns each one's depth. A process
// whose parent is not listed is a root.
func forest(procs []api.Proc) ([]api.Proc, []int) {
	byCPID := make(map[int64]bool, len(procs))
	for _, p := range procs {
		byCPID[p.CPID] = true
	}
	children := map[int64][]api.Proc{}
	var roots []api.Proc
	for _, p := range procs {
		if p.PCPID != 0 && p.PCPID != p.CPID && byCPID[p.PCPID] {
			children[p.PCPID] = append(children[p.PCPID], p)
		} else {
			roots = append(roots, p)
		}
	}
	var order []api.Proc
	var depth []int
	seen := map[int64]bool{}
	var walk func(p api.Proc, d int)
	walk = func(p api.Proc, d int) {
		if seen[p.CPID] {
			return
		}
		seen[p.CPID] = true
		order, depth = append(order, p), append(depth, d)
		kids := children[p.CPID]
		sort.Slice(kids, func(i, j int) bool { return kids[i].CPID < kids[j].CPID })
		for _, k := range kids {
			walk(k, d+1)
		}
	}
	sort.Slice(roots, func(i, j int) bool { return roots[i].CPID < roots[j].CPID })
	for _, r := range roots {
		walk(r, 0)
	}
	for _, p := range procs { // parent loops: shown once, as roots
		walk(p, 0)
	}
	return order, depth
}

// printRows prints the table; with depth, commands are indented as a tree.
func printRows(g *globals, procs []api.Proc, depth []int) {
	// Buffered: tabwriter writes cell by cell, and 5000 rows were 40,000
	// write system calls (most of `ssi ps`'s time).
	bw := bufio.NewWriterSize(g.stdout, 64<<10)
	defer bw.Flush()
	tw := tabwriter.NewWriter(bw, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CPID\tNODE:PID\tUSER\tS\t%CPU\tRSS\tTIME\tCOMMAND")
	for i, p := range procs {
		cmdline := p.Command
		if len(cmdline) > 80 {
			cmdline = cmdline[:77] + "..."
		}
		if depth != nil && depth[i] > 0 {
			cmdline = strings.Repeat("    ", depth[i]-1) + " \\_ " + cmdline
		}
		fmt.Fprintf(tw, "%d\t%d:%d\t%s\t%s\t%.1f\t%s\t%s\t%s\n", p.CPID, p.Node, p.Pid, p.User, p.State, p.CPU,
			humanBytes(p.RSS), cpuTime(p.Time), cmdline)
	}
	tw.Flush()
}

func cpuTime(s float64) string {
	d := time.Duration(s * float64(time.Second))
	return fmt.Sprintf("%d:%02d:%02d", int(d.Hours()), int(d.Minutes())%60, int(d.Seconds())%60)
}

func newWhereCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "where CPID",
		Short: "Print the node a process runs on (where_pid)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cpid, err := vproc.Parse(args[0])
			if err != nil {
				return err
			}
			return g.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				p, err := c.Where(ctx, int64(cpid))
				if err != nil {
					return err
				}
				if g.json() {
					return g.printJSON(p)
				}
				fmt.Fprintln(g.stdout, p.Node)
				return nil
			})
		},
	}
}

// killArgs is a parsed `ssi kill` command line.
type killArgs struct {
	signal  int
	targets []api.SignalRequest
}

// parseKill parses [-SIGNAL | -s SIGNAL] [--] TARGET..., where a target is
// a CPID (or NODE:PID) or, after --, -CPGID for a process group. Global
// flags (--socket, --node, -o) may come first.
func parseKill(args []string, g *globals) (killArgs, error) {
	k := killArgs{signal: int(unix.SIGTERM)}
	opts := true
	for i := 0; i < len(args); i++ {
		a := args[i]
		next := func() (string, error) {
			if i+1 >= len(args) {
				return "", fmt.Errorf("%s needs a value", a)
			}
			i++
			return args[i], nil
		}
		switch {
		case opts && a == "--":
			opts = false
		case opts && (a == "--socket" || a == "--node" || a == "-o" || a == "--output" || a == "-s" || a == "--signal"):
			v, err := next()
			if err != nil {
				return k, err
			}
			if err := setKillOpt(a, v, g, &k); err != nil {
				return k, err
			}
		case opts && strings.HasPrefix(a, "--") && strings.Contains(a, "="):
			name, v, _ := strings.Cut(a, "=")
			if err := setKillOpt(name, v, g, &k); err != nil {
				return k, err
			}
		case opts && strings.HasPrefix(a, "-") && len(a) > 1:
			sig, err := parseSignal(a[1:])
			if err != nil {
				return k, err
			}
			k.signal = sig
		default:
			group := strings.HasPrefix(a, "-")
			cpid, err := vproc.Parse(strings.TrimPrefix(a, "-"))
			if err != nil {
				return k, err
			}
			k.targets = append(k.targets, api.SignalRequest{CPID: int64(cpid), Group: group})
		}
	}
	if len(k.targets) == 0 {
		return k, fmt.Errorf("kill: name at least one cluster pid (or -- -CPGID)")
	}
	for i := range k.targets {
		k.targets[i].Signal = k.signal
	}
	return k, nil
}

func setKillOpt(name, v string, g *globals, k *killArgs) error {
	switch name {
	case "--socket":
		g.socket = v
	case "--node":
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("--node %q is not a number", v)
		}
		g.node = n
	case "-o", "--output":
		g.output = v
	case "-s", "--signal":
		sig, err := parseSignal(v)
		if err != nil {
			return err
		}
		k.signal = sig
	default:
		return fmt.Errorf("unknown flag %s", name)
	}
	return nil
}

// parseSignal reads 9, KILL or SIGKILL.
func parseSignal(s string) (int, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n < 0 || n > 64 {
			return 0, fmt.Errorf("%d is not a signal number", n)
		}
		return n, nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if n := unix.SignalNum(name); n != 0 {
		return int(n), nil
	}
	return 0, fmt.Errorf("%q is not a signal name", s)
}

func newKillCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "kill [-SIGNAL | -s SIGNAL] CPID... | kill -SIGNAL -- -CPGID",
		Short: "Send a signal to processes anywhere in the cluster",
		Long: `Send a signal (default TERM) to processes by cluster pid, wherever they run,
as you: you may signal your own processes, root may signal all. The node
where a process runs checks its owner. -- -CPGID signals the process group
led by CPID on its node.

    ssi kill 4194433            ssi kill -9 2:1234          ssi kill -HUP -- -2:1200`,
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 && (args[0] == "-h" || args[0] == "--help") {
				return cmd.Help()
			}
			k, err := parseKill(args, g)
			if err != nil {
				return err
			}
			return g.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				var failed error
				var results []actionResult
				for _, t := range k.targets {
					err := c.Signal(ctx, t)
					target := strconv.FormatInt(t.CPID, 10)
					if t.Group {
						target = "-" + target
					}
					results = append(results, newActionResult(target, t.CPID, err))
					if err != nil {
						fmt.Fprintf(g.stderr, "ssi: %v\n", err)
						failed = exitError{1}
					}
				}
				if g.json() {
					if err := g.printJSON(results); err != nil {
						return err
					}
				}
				return failed
			})
		},
	}
	// Parsed by parseKill (flag parsing is off for -9 and -HUP); declared
	// so that --help lists it.
	cmd.Flags().StringP("signal", "s", "TERM", "the signal to send, by name (HUP, SIGHUP) or number; also -SIGNAL")
	return cmd
}
