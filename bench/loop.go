package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/ssi-cluster/ssi/internal/harness"
)

// loopCmd is the hidden subcommand the benchmarks run inside a node: it
// runs a command n times and reports each run's wall time, so that
// entering the node's namespaces is paid once, not per run.
const loopCmd = "__loop"

// loopResult is what __loop prints (JSON).
type loopResult struct {
	Runs  []time.Duration `json:"runs"`
	Bytes int64           `json:"bytes"` // output bytes of the last run
	Err   string          `json:"err,omitempty"`
}

// loop: __loop N STDIN_BYTES CMD ARGS... runs CMD N times; with
// STDIN_BYTES > 0 it feeds that many bytes to its stdin and counts its
// stdout.
func loop(args []string) error {
	var n int
	var in int64
	if len(args) < 3 {
		return errors.New("__loop N STDIN_BYTES CMD...")
	}
	fmt.Sscan(args[0], &n)
	fmt.Sscan(args[1], &in)
	var r loopResult
	chunk := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	for range n {
		cmd := exec.Command(args[2], args[3:]...)
		var out countWriter
		cmd.Stdout = &out
		cmd.Stderr = os.Stderr
		var feed io.WriteCloser
		var err error
		if in > 0 {
			if feed, err = cmd.StdinPipe(); err != nil {
				return err
			}
		}
		t := time.Now()
		if err := cmd.Start(); err != nil {
			r.Err = err.Error()
			break
		}
		if feed != nil {
			go func() {
				for left := in; left > 0; left -= int64(len(chunk)) {
					b := chunk
					if left < int64(len(b)) {
						b = b[:left]
					}
					if _, err := feed.Write(b); err != nil {
						break
					}
				}
				feed.Close()
			}()
		}
		err = cmd.Wait()
		r.Runs = append(r.Runs, time.Since(t))
		r.Bytes = out.n
		if err != nil {
			r.Err = fmt.Sprintf("%s: %v", strings.Join(cmd.Args, " "), err)
			break
		}
	}
	return json.NewEncoder(os.Stdout).Encode(r)
}

type countWriter struct{ n int64 }

func (w *countWriter) Write(p []byte) (int, error) { w.n += int64(len(p)); return len(p), nil }

// inNode runs `self __loop n stdinBytes argv...` inside node i and returns
// the runs' times. ctx ending (Ctrl-C) kills the loop and what it runs: it
// has a process group of its own (nsenter forks it, so killing nsenter
// alone would leave it running).
func inNode(ctx context.Context, c *harness.Cluster, i, n int, stdinBytes int64, argv ...string) (loopResult, error) {
	if err := ctx.Err(); err != nil {
		return loopResult{}, err
	}
	self, err := os.Executable()
	if err != nil {
		return loopResult{}, err
	}
	args := append([]string{loopCmd, fmt.Sprint(n), fmt.Sprint(stdinBytes)}, argv...)
	cmd := c.Command(i, self, args...)
	var stderr, stdout bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return loopResult{}, err
	}
	stop := context.AfterFunc(ctx, func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
	err = cmd.Wait()
	stop()
	if ctx.Err() != nil {
		return loopResult{}, ctx.Err()
	}
	out := stdout.Bytes()
	if err != nil {
		return loopResult{}, fmt.Errorf("%s: %v: %s", strings.Join(argv, " "), err, stderr.String())
	}
	var r loopResult
	if err := json.Unmarshal(out, &r); err != nil {
		return r, err
	}
	if r.Err != "" {
		return r, fmt.Errorf("%s (stderr: %s)", r.Err, strings.TrimSpace(stderr.String()))
	}
	return r, nil
}
