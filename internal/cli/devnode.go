package cli

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/ssi-cluster/ssi/internal/harness"
)

// leadingNode takes the global --node N out of the flags before the
// command's name, where it means "ask node N of the dev cluster" even for
// commands that have a --node of their own (ssi --node 1 run --node 2).
// It returns 0 and args unchanged when there is none.
func leadingNode(args []string) (int, []string, error) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--node" || strings.HasPrefix(a, "--node="):
			v, n := strings.TrimPrefix(a, "--node="), 1
			if a == "--node" {
				if i+1 >= len(args) {
					return 0, args, fmt.Errorf("--node needs a node number")
				}
				v, n = args[i+1], 2
			}
			node, err := strconv.Atoi(v)
			if err != nil || node < 1 {
				return 0, args, fmt.Errorf("--node %q: want a node number of the dev cluster (1, 2, ...)", v)
			}
			return node, slices.Delete(slices.Clone(args), i, i+n), nil
		case takesValue(a):
			i++ // its value
		case !strings.HasPrefix(a, "-"):
			return 0, args, nil // the command's name: what follows is its own
		}
	}
	return 0, args, nil
}

// takesValue reports whether global flag a takes the next argument as its
// value (--node is handled apart).
func takesValue(a string) bool { return a == "--socket" || a == "-o" || a == "--output" }

// commandName is the first argument that is neither a global flag nor
// its value.
func commandName(args []string) string {
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case takesValue(a):
			i++
		case !strings.HasPrefix(a, "-"):
			return a
		}
	}
	return ""
}

// runsThere lists the commands that start a process as their caller: the
// agent must see the caller, so from outside a namespaced dev node they
// are run inside it.
var runsThere = []string{"run", "onnode", "fastnode"}

// runInDevNode replaces this process with `ssi args...` inside node of a
// namespaced dev cluster when args is a command that runs a process;
// otherwise (or in a loopback dev cluster, whose agents see every process
// of this machine) it returns nil and the caller asks the node's socket.
func runInDevNode(node int, args []string) error {
	if !slices.Contains(runsThere, commandName(args)) {
		return nil
	}
	d, err := harness.LookupDev()
	if err != nil {
		return fmt.Errorf("--node %d: %w", node, err)
	}
	if !d.Namespaces {
		return nil
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("--node %d: %w", node, err)
	}
	cmd, err := d.Command(node, append([]string{self}, args...)...)
	if err != nil {
		return fmt.Errorf("--node %d: %w", node, err)
	}
	if cmd.Err != nil {
		return fmt.Errorf("--node %d: %w", node, cmd.Err)
	}
	if err := closeOnExecAbove2(); err != nil {
		return err
	}
	return syscall.Exec(cmd.Path, cmd.Args, cmd.Env)
}
