package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/ssi-cluster/ssi/internal/api"
	"github.com/ssi-cluster/ssi/internal/client"
	"github.com/ssi-cluster/ssi/internal/vproc"
)

func newMigrateCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "migrate CPID NODE|home|fast",
		Short: "Move a running process to another node (MOSIX migrate)",
		Long: `Move a running process, wherever it runs, to node NODE, back to its home
(the node in its cluster pid) or to the best node by load (fast). Its memory
is copied while it runs, then it is frozen for the last changes, sent,
restored and let go on the target. It keeps its cluster pid (and its local
pid where that is free), its deputy, stdio and exit status. A process that
cannot move is left alone and the reasons are printed: see
docs/migration.md. You may move your own processes; root may move any.`,
		Aliases: []string{"goto"},
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			cpid, err := vproc.Parse(args[0])
			if err != nil {
				return err
			}
			return g.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				m, err := c.Migrate(ctx, int64(cpid), args[1])
				if err != nil {
					return err
				}
				if g.json() {
					return g.printJSON(m)
				}
				printMigration(g, m)
				return nil
			})
		},
	}
}

func printMigration(g *globals, m api.Migration) {
	ms := func(us int64) string { return fmt.Sprintf("%.1f ms", float64(us)/1000) }
	kept := "kept"
	if !m.PidKept {
		kept = "new"
	}
	fmt.Fprintf(g.stdout, "%d: node %d -> node %d, pid %d -> %d (%s)\n", m.CPID, m.From, m.To, m.Pid, m.NewPid, kept)
	fmt.Fprintf(g.stdout, "  frozen %s (dump %s, transfer %s, restore %s, commit agreed %s), total %s\n",
		ms(m.FreezeUS), ms(m.DumpUS), ms(m.SendUS), ms(m.RestoreUS), ms(m.DecideUS), ms(m.TotalUS))
	fmt.Fprintf(g.stdout, "  %s copied while running (%d rounds), %s sent frozen\n",
		humanBytes(uint64(m.PreCopied)), m.Rounds, humanBytes(uint64(m.Bytes)))
}

func newCheckpointCmd(g *globals) *cobra.Command {
	var kill bool
	cmd := &cobra.Command{
		Use:   "checkpoint CPID FILE",
		Short: "Save a process's image to FILE on this node",
		Long: `Dump the process CPID, wherever it runs, into FILE here (written by you, mode
0600). The process is frozen for the dump and then runs on; with --kill it is
killed once FILE is complete and synced (if FILE cannot be written it runs
on). 'ssi restore FILE' starts it again. Your own processes only; root any.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			cpid, err := vproc.Parse(args[0])
			if err != nil {
				return err
			}
			file := args[1]
			tmp, err := os.CreateTemp(filepath.Dir(file), ".ssi-checkpoint-*")
			if err != nil {
				return fmt.Errorf("checkpoint: %w", err)
			}
			defer os.Remove(tmp.Name())
			defer tmp.Close()
			save := func() error {
				if err := tmp.Sync(); err != nil {
					return err
				}
				if err := tmp.Close(); err != nil {
					return err
				}
				return os.Rename(tmp.Name(), file)
			}
			return g.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				n, err := c.Checkpoint(ctx, int64(cpid), kill, tmp, save)
				if err != nil {
					return fmt.Errorf("checkpoint %d: %w", cpid, err)
				}
				if g.json() {
					return g.printJSON(map[string]any{"cpid": int64(cpid), "file": file, "bytes": n, "killed": kill})
				}
				what := "it runs on"
				if kill {
					what = "it was killed"
				}
				fmt.Fprintf(g.stdout, "%d: %s saved to %s; %s\n", cpid, humanBytes(uint64(n)), file, what)
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&kill, "kill", false, "kill the process once FILE is saved")
	return cmd
}

func newRestoreCmd(g *globals) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "restore FILE",
		Short: "Start a process again from its image, on this node",
		Long: `Restore the process saved in FILE (by 'ssi checkpoint') on this node; it gets
a cluster pid of this node and keeps its pid where it is free. If it was run
by 'ssi run', its stdin is /dev/null and its stdout and stderr go to --out
FILE (appended) or /dev/null. Its other files are reopened by path. You may
restore an image of your own processes; root any.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := os.Open(args[0])
			if err != nil {
				return fmt.Errorf("restore: %w", err)
			}
			defer f.Close()
			if out != "" {
				if out, err = filepath.Abs(out); err != nil {
					return err
				}
			}
			return g.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				r, err := c.Restore(ctx, f, out)
				if err != nil {
					return err
				}
				if g.json() {
					return g.printJSON(r)
				}
				fmt.Fprintf(g.stdout, "%d: restored on node %d as pid %d\n", r.CPID, r.Node, r.Pid)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "append the process's stdout and stderr to `FILE`")
	return cmd
}

// actionResult is one target's outcome in -o json of freeze, continue and
// kill: an error is also printed to standard error, and the exit status is
// 1 if any failed.
type actionResult struct {
	Target string `json:"target"`         // as given
	CPID   int64  `json:"cpid,omitempty"` // 0 if the target did not parse
	OK     bool   `json:"ok"`
	Error  string `json:"error,omitempty"`
}

func newActionResult(target string, cpid int64, err error) actionResult {
	r := actionResult{Target: target, CPID: cpid, OK: err == nil}
	if err != nil {
		r.Error = err.Error()
	}
	return r
}

// newStopCmd makes freeze (SIGSTOP) and continue (SIGCONT).
func newStopCmd(g *globals, use, short, long, done string, sig unix.Signal) *cobra.Command {
	return &cobra.Command{
		Use:   use + " CPID...",
		Short: short,
		Long:  long,
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				var failed error
				var results []actionResult
				for _, a := range args {
					cpid, err := vproc.Parse(a)
					if err == nil {
						err = c.Signal(ctx, api.SignalRequest{CPID: int64(cpid), Signal: int(sig)})
					}
					results = append(results, newActionResult(a, int64(cpid), err))
					if err != nil {
						fmt.Fprintf(g.stderr, "ssi: %s %s: %v\n", use, a, err)
						failed = exitError{1}
						continue
					}
					if !g.json() {
						fmt.Fprintf(g.stdout, "%d: %s\n", cpid, done)
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
}

func newFreezeCmd(g *globals) *cobra.Command {
	return newStopCmd(g, "freeze", "Stop processes wherever they run (SIGSTOP)",
		`Stop processes by cluster pid, wherever they run, with SIGSTOP through the
cluster's signal routing (as 'ssi kill -STOP'). A frozen process keeps its
memory and node; it can be migrated, checkpointed, or continued with 'ssi
continue'. The deputy of a process run by 'ssi run' shows it stopped, as a
shell job. Your own processes only; root any.`, "frozen", unix.SIGSTOP)
}

func newContinueCmd(g *globals) *cobra.Command {
	return newStopCmd(g, "continue", "Continue frozen processes (SIGCONT)",
		`Continue processes stopped by 'ssi freeze' (or any stop), wherever they run,
with SIGCONT. The deputy of a process run by 'ssi run' goes on with it.`, "continued", unix.SIGCONT)
}
