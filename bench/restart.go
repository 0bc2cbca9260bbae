package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ssi-cluster/ssi/internal/harness"
)

// counterCmd is the hidden subcommand the restart benchmark runs as each
// `ssi run` process: it prints 0, 1, 2, ... a line every interval until
// the file stop exists, then "end".
const counterCmd = "__counter"

// counter: __counter INTERVAL STOPFILE.
func counter(args []string) error {
	if len(args) != 2 {
		return errors.New("__counter INTERVAL STOPFILE")
	}
	every, err := time.ParseDuration(args[0])
	if err != nil {
		return err
	}
	w := bufio.NewWriter(os.Stdout)
	for i := 0; ; i++ {
		if _, err := os.Stat(args[1]); err == nil {
			fmt.Fprintln(w, "end")
			return w.Flush()
		}
		fmt.Fprintln(w, i)
		if err := w.Flush(); err != nil {
			return err
		}
		time.Sleep(every)
	}
}

// restartRun is one counter run: its deputy on home, its process on node.
type restartRun struct {
	home, node int
	out        string // the deputy's stdout (a file)
	cmd        *exec.Cmd
	done       chan error
	lostAt     int // the restart step during which its deputy ended (-1: it did not)
}

// restartBench starts counter runs spread over a 3-node cluster, their
// homes on every node and each run executing on another node than its
// home, restarts every agent in turn twice (SIGTERM, then SIGKILL), and
// reports processes lost, output lost or repeated, and how long the homes
// took to re-attach.
func restartBench(ctx context.Context, args []string) error {
	fs := newFlags("restart")
	n := fs.Int("procs", 200, "ssi run processes")
	every := fs.Duration("interval", 100*time.Millisecond, "a counter line every")
	settle := fs.Duration("settle", 3*time.Second, "running time between restarts")
	homesFlag := fs.String("homes", "1,2,3", "the nodes the deputies run on (each process runs on another)")
	restartFlag := fs.String("restart", "1,2,3", "the agents restarted, in turn")
	fs.Parse(args)
	homes, err := nodeList(*homesFlag)
	if err != nil {
		return err
	}
	restarts, err := nodeList(*restartFlag)
	if err != nil {
		return err
	}
	if !harness.Root() {
		return errors.New("restart needs root (namespace cluster)")
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	c, stop, err := startCluster(ctx, 3, "--allow-remote-root", "true")
	if err != nil {
		return err
	}
	defer stop()
	dir, err := os.MkdirTemp("", "ssi-bench-restart")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	stopFile := filepath.Join(dir, "stop")
	runs := make([]*restartRun, *n)
	for i := range runs {
		home := homes[i%len(homes)]
		node := (home+i/len(homes)%2)%3 + 1 // the two other nodes in turn
		r := &restartRun{home: home, node: node, out: filepath.Join(dir, fmt.Sprintf("out%d", i)), done: make(chan error, 1), lostAt: -1}
		if err := r.start(c, self, *every, stopFile, filepath.Join(dir, fmt.Sprintf("err%d", i))); err != nil {
			return err
		}
		runs[i] = r
	}
	defer func() {
		for _, r := range runs {
			if r != nil && r.cmd.Process != nil {
				r.cmd.Process.Kill()
			}
		}
	}()
	if err := waitLines(ctx, runs, 2, 2*time.Minute); err != nil {
		return err
	}
	fmt.Printf("%d `ssi run` processes (a counter line every %s), homes on nodes %s, each executing on another node; agents %s restarted in turn, SIGTERM then SIGKILL\n\n",
		*n, *every, *homesFlag, *restartFlag)
	fmt.Println("| step | agent | signal | runs executing there | re-attached | reconnect p50 / p99 | runs homed there | deputies rejoined | rejoin p50 / p99 | deputies ended |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|")
	var all, allRejoins []time.Duration
	step := 0
	for _, node := range restarts {
		for _, sig := range []string{"SIGTERM", "SIGKILL"} {
			step++
			live, homed := 0, 0
			for _, r := range runs {
				if r.lostAt < 0 && r.node == node {
					live++
				}
				if r.lostAt < 0 && r.home == node {
					homed++
				}
			}
			t0 := time.Now()
			if sig == "SIGTERM" {
				err = c.StopAgent(ctx, node)
			} else {
				err = c.KillAgent(node)
			}
			if err != nil {
				return err
			}
			if err := c.StartAgent(ctx, node); err != nil {
				return err
			}
			// The homes re-attach to the processes executing there.
			// and its deputies rejoin it (deputy_rejoin.go).
			var times, rejoins []time.Duration
			deadline := time.Now().Add(90 * time.Second)
			for time.Now().Before(deadline) {
				if times, err = reattachTimes(c, node, t0); err != nil {
					return err
				}
				if rejoins, err = rejoinTimes(c, node, t0); err != nil {
					return err
				}
				if len(times) >= live-endedNow(runs, node, execNode) && len(rejoins) >= homed-endedNow(runs, node, homeNode) {
					break
				}
				time.Sleep(250 * time.Millisecond)
			}
			if err := c.WaitFormed(ctx); err != nil {
				return err
			}
			time.Sleep(*settle)
			ended := 0
			for _, r := range runs {
				if r.lostAt < 0 && r.exited() {
					r.lostAt = step
					ended++
				}
			}
			all, allRejoins = append(all, times...), append(allRejoins, rejoins...)
			fmt.Printf("| %d | node %d | %s | %d | %d | %s / %s | %d | %d | %s / %s | %d |\n", step, node, sig, live, len(times),
				ms(quantile(times, 0.5)), ms(quantile(times, 0.99)), homed, len(rejoins),
				ms(quantile(rejoins, 0.5)), ms(quantile(rejoins, 0.99)), ended)
		}
	}
	if err := os.WriteFile(stopFile, nil, 0o644); err != nil {
		return err
	}
	lost, linesOK, missing, repeated, lostBytes, repBytes := 0, 0, 0, 0, 0, 0
	for _, r := range runs {
		select {
		case <-r.done:
		case <-time.After(60 * time.Second):
			return fmt.Errorf("a deputy did not end within 60 s of the stop file")
		}
		b, _ := os.ReadFile(r.out)
		chk := checkCounter(string(b))
		if r.lostAt >= 0 || !chk.ended || r.cmd.ProcessState.ExitCode() != 0 {
			lost++
		}
		linesOK += chk.lines
		missing += chk.missing
		repeated += chk.repeated
		lostBytes += chk.missingBytes
		repBytes += chk.repeatedBytes
	}
	fmt.Printf("\n| processes | lost (want 0) | counter lines checked | lines lost / bytes (want 0) | lines repeated / bytes (want 0) | reconnect p50 / p99 | rejoin p50 / p99 |\n")
	fmt.Printf("|---|---|---|---|---|---|---|\n")
	fmt.Printf("| %d | %d | %d | %d / %d | %d / %d | %s / %s | %s / %s |\n", *n, lost, linesOK, missing, lostBytes, repeated, repBytes,
		ms(quantile(all, 0.5)), ms(quantile(all, 0.99)), ms(quantile(allRejoins, 0.5)), ms(quantile(allRejoins, 0.99)))
	fmt.Println("\nreconnect: from the agent's stop (SIGTERM sent, or SIGKILL) to the home's log line \"run re-attached to its process\"")
	fmt.Println("rejoin: from a home agent's stop to its successor's log line \"deputy re-attached to its process\"")
	return nil
}

// start starts the run's deputy in its home node.
func (r *restartRun) start(c *harness.Cluster, self string, every time.Duration, stopFile, errFile string) error {
	out, err := os.Create(r.out)
	if err != nil {
		return err
	}
	defer out.Close()
	errw, err := os.Create(errFile)
	if err != nil {
		return err
	}
	defer errw.Close()
	r.cmd = c.Command(r.home, c.Binary, "--socket", c.Nodes[r.home-1].Socket, "run", "--node", strconv.Itoa(r.node),
		"--", self, counterCmd, every.String(), stopFile)
	r.cmd.Stdout, r.cmd.Stderr = out, errw
	if err := r.cmd.Start(); err != nil {
		return err
	}
	go func() { r.done <- r.cmd.Wait() }()
	return nil
}

// exited reports whether the deputy has ended (it is then done).
func (r *restartRun) exited() bool {
	select {
	case err := <-r.done:
		r.done <- err
		return true
	default:
		return false
	}
}

// endedNow counts the runs with which(r) on node whose deputy ended and
// that are not yet counted lost (during the current step).
func endedNow(runs []*restartRun, node int, which func(*restartRun) int) int {
	n := 0
	for _, r := range runs {
		if which(r) == node && r.lostAt < 0 && r.exited() {
			n++
		}
	}
	return n
}

func execNode(r *restartRun) int { return r.node }
func homeNode(r *restartRun) int { return r.home }

// waitLines waits until every run has printed k lines.
func waitLines(ctx context.Context, runs []*restartRun, k int, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		short := 0
		for _, r := range runs {
			b, _ := os.ReadFile(r.out)
			if strings.Count(string(b), "\n") < k {
				short++
			}
		}
		if short == 0 {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%d of %d runs did not print %d lines within %s", short, len(runs), k, within)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// reattachTimes reads every node's log for the homes' re-attachments to
// processes on node after t0, and returns how long after t0 each was.
func reattachTimes(c *harness.Cluster, node int, t0 time.Time) ([]time.Duration, error) {
	return logTimes(c.Nodes, `msg="run re-attached to its process"`, fmt.Sprintf(" node=%d ", node), t0)
}

// rejoinTimes reads node's log for its deputies' rejoins after t0.
func rejoinTimes(c *harness.Cluster, node int, t0 time.Time) ([]time.Duration, error) {
	return logTimes(c.Nodes[node-1:node], `msg="deputy re-attached to its process"`, "", t0)
}

// logTimes returns how long after t0 each line of the nodes' logs that
// holds msg and also was logged.
func logTimes(nodes []*harness.Node, msg, also string, t0 time.Time) ([]time.Duration, error) {
	var ds []time.Duration
	for _, nd := range nodes {
		b, err := os.ReadFile(nd.Log)
		if err != nil {
			return nil, err
		}
		for _, l := range strings.Split(string(b), "\n") {
			if !strings.Contains(l, msg) || !strings.Contains(l, also) {
				continue
			}
			ts, ok := strings.CutPrefix(l, "time=")
			if !ok {
				continue
			}
			ts, _, _ = strings.Cut(ts, " ")
			t, err := time.Parse(time.RFC3339Nano, ts)
			if err == nil && t.After(t0) {
				ds = append(ds, t.Sub(t0))
			}
		}
	}
	return ds, nil
}

// counterCheck is what a run's output holds against 0, 1, 2, ... "end".
type counterCheck struct {
	lines, missing, repeated    int
	missingBytes, repeatedBytes int
	ended                       bool
}

// checkCounter counts the lines in out, the numbers missing between them
// and those repeated.
func checkCounter(out string) counterCheck {
	var c counterCheck
	next := 0
	for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if l == "end" {
			c.ended = true
			continue
		}
		v, err := strconv.Atoi(l)
		if err != nil {
			continue
		}
		c.lines++
		switch {
		case v == next:
			next++
		case v > next:
			for m := next; m < v; m++ {
				c.missing++
				c.missingBytes += len(strconv.Itoa(m)) + 1
			}
			next = v + 1
		default:
			c.repeated++
			c.repeatedBytes += len(l) + 1
		}
	}
	return c
}

// nodeList parses "1,2,3" (nodes of the 3-node cluster).
func nodeList(s string) ([]int, error) {
	var ns []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 3 {
			return nil, fmt.Errorf("%q: nodes are 1, 2 and 3", s)
		}
		ns = append(ns, n)
	}
	return ns, nil
}
