package cli

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/ssi-cluster/ssi/internal/deputy"
	"github.com/ssi-cluster/ssi/internal/rexec"
)

type runFlags struct {
	node      int
	fast      bool
	detach    bool
	out       string
	np        int
	noMigrate bool
	notifyFD  int // hidden: the detached deputy reports its start here
}

func newRunCmd(g *globals) *cobra.Command {
	var f runFlags
	cmd := &cobra.Command{
		Use:   "run [--node N | --fast] [-d [--out FILE]] [--np K] [--no-migrate] [--] CMD [ARG...]",
		Short: "Run a command on another node, as if here",
		Long: `Run CMD on node N (--node), on the best node by load, speed and free memory
(--fast), or on this node, as you: your uid, gid and groups, working
directory, environment, umask, resource limits and nice value.

This 'ssi run' process stays here as the command's deputy: stdin, stdout and
stderr are streamed; when stdin and stdout are a terminal the command gets a
pty on its node (raw mode, window size followed); Ctrl-C, Ctrl-Z, fg and bg
act on the remote command as on a local one; any signal sent to this process
is delivered to the remote process group; it exits with the command's exit
status, or dies of the same signal. A command not found exits 127, one that
cannot be run (or whose directory is missing there) 126, as from a shell.
If the command's node goes down, or the connection to it breaks, the deputy
says so and exits 255; the command's process group gets SIGHUP when its
deputy or home node goes away, as after a terminal hang-up.

The command's cluster pid is this node's number and the deputy's pid: an
unmodified 'kill' of the deputy here reaches it, and 'ssi ps', 'ssi where'
and 'ssi kill' know it from any node.

  -d         detach: print the cluster pid and return; the deputy stays in
             the background without a terminal; output goes to --out FILE
             (appended) or to the executing agent's log.
  --np K     start K instances spread over the nodes by load, each with
             SSI_RANK (0..K-1) and SSI_SIZE=K; stdin goes to rank 0; wait for
             all and exit with the worst status.`,
		Aliases: []string{"rexec"},
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runCommand(cmd, g, f, args)
		},
	}
	fs := cmd.Flags()
	fs.SetInterspersed(false) // flags end at CMD: its own flags are its own
	fs.IntVar(&f.node, "node", 0, "run on node `N`")
	fs.BoolVar(&f.fast, "fast", false, "run on the best node by load, speed and free memory")
	fs.BoolVarP(&f.detach, "detach", "d", false, "run in the background, print the cluster pid")
	fs.StringVar(&f.out, "out", "", "with -d: append the command's output to `FILE` (default: the executing agent's log)")
	fs.IntVar(&f.np, "np", 0, "start `K` instances spread by load (SSI_RANK, SSI_SIZE)")
	fs.BoolVar(&f.noMigrate, "no-migrate", false, "pin the process to its node (never migrated)")
	fs.IntVar(&f.notifyFD, "notify-fd", 0, "")
	fs.MarkHidden("notify-fd")
	return cmd
}

// newOnnodeCmd is OpenSSI's onnode: ssi onnode N CMD...
func newOnnodeCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "onnode N CMD [ARG...]",
		Short: "Run a command on node N (ssi run --node N)",
		Args:  cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := strconv.Atoi(args[0])
			if err != nil || n < 1 {
				return fmt.Errorf("onnode: %q is not a node number", args[0])
			}
			return runCommand(cmd, g, runFlags{node: n}, args[1:])
		},
	}
	cmd.Flags().SetInterspersed(false)
	return cmd
}

// newFastnodeCmd is OpenSSI's fastnode: ssi fastnode CMD...
func newFastnodeCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "fastnode CMD [ARG...]",
		Short: "Run a command on the best node by load (ssi run --fast)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runCommand(cmd, g, runFlags{fast: true}, args)
		},
	}
	cmd.Flags().SetInterspersed(false)
	return cmd
}

func runCommand(cmd *cobra.Command, g *globals, f runFlags, argv []string) error {
	switch {
	case f.node < 0:
		return fmt.Errorf("run: --node %d is not a node number", f.node)
	case f.node != 0 && f.fast:
		return errors.New("run: --node and --fast are exclusive")
	case f.np < 0 || f.np > 4096:
		return fmt.Errorf("run: --np %d: want 1 to 4096", f.np)
	case f.np != 0 && (f.node != 0 || f.detach):
		return errors.New("run: --np places its instances itself (no --node, no -d)")
	case f.out != "" && !f.detach:
		return errors.New("run: --out goes with -d")
	}
	if f.detach {
		return detach(cmd, g, f, argv)
	}
	c, err := g.client()
	if err != nil {
		return err
	}
	defer c.Close()
	ctx := cmdContext(cmd)
	if f.np > 0 {
		deputy.Exit(deputy.RunMany(ctx, c, f.np, deputy.Options{Argv: argv, NoMigrate: f.noMigrate,
			Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}))
	}
	o := deputy.Options{Argv: argv, Node: f.node, Fast: f.fast, NoMigrate: f.noMigrate,
		Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}
	if f.notifyFD > 0 {
		o.LogOutput = os.Getenv("SSI_RUN_LOG_OUTPUT") == "1"
		o.Started = notifier(f.notifyFD)
	}
	deputy.Exit(deputy.Run(ctx, c, o))
	return nil
}

// notifier returns the detached deputy's report of its start: the Started
// frame as JSON on fd, then fd closed.
func notifier(fd int) func(rexec.Started) {
	return func(st rexec.Started) {
		f := os.NewFile(uintptr(fd), "notify")
		json.NewEncoder(f).Encode(st)
		f.Close()
	}
}

// detach starts this command again without -d, as a background deputy in
// its own session with no terminal, and prints the cluster pid it reports.
func detach(cmd *cobra.Command, g *globals, f runFlags, argv []string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	args := []string{"--socket", g.socket, "run", "--notify-fd", "3"}
	if g.node != 0 {
		args = []string{"--node", strconv.Itoa(g.node), "run", "--notify-fd", "3"}
	}
	if f.node != 0 {
		args = append(args, "--node", strconv.Itoa(f.node))
	}
	if f.fast {
		args = append(args, "--fast")
	}
	if f.noMigrate {
		args = append(args, "--no-migrate")
	}
	args = append(append(args, "--"), argv...)
	path, flag := os.DevNull, os.O_WRONLY
	if f.out != "" {
		path, flag = f.out, os.O_WRONLY|os.O_CREATE|os.O_APPEND
	}
	out, err := os.OpenFile(path, flag, 0o644)
	if err != nil {
		return fmt.Errorf("run -d: %w", err)
	}
	defer out.Close()
	null, err := os.Open(os.DevNull)
	if err != nil {
		return err
	}
	defer null.Close()
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	child := exec.Command(self, args...)
	child.Stdin, child.Stdout, child.Stderr = null, out, out
	child.ExtraFiles = []*os.File{w}
	child.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	child.Env = os.Environ()
	if f.out == "" {
		child.Env = append(child.Env, "SSI_RUN_LOG_OUTPUT=1")
	}
	if err := child.Start(); err != nil {
		w.Close()
		return fmt.Errorf("run -d: %w", err)
	}
	w.Close()
	child.Process.Release()
	line, _ := bufio.NewReader(r).ReadString('\n')
	var st rexec.Started
	if json.Unmarshal([]byte(line), &st) != nil {
		where := "the executing agent's log"
		if f.out != "" {
			where = f.out
		}
		return fmt.Errorf("run -d: the command did not start (see %s)", where)
	}
	if g.json() {
		return g.printJSON(map[string]any{"cpid": st.CPID, "node": st.Node, "pid": st.Pid, "command": argv})
	}
	fmt.Fprintf(g.stdout, "%d\t%s\n", st.CPID, strings.Join(argv, " "))
	return nil
}
