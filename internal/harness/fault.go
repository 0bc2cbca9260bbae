package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"syscall"
)

// ErrNeedNamespaces is returned by the network faults in loopback mode.
var ErrNeedNamespaces = errors.New("needs namespace mode (root)")

// faultState is what network faults a node's nftables table enforces.
type faultState struct {
	isolated bool     // drop everything but loopback
	blocked  []string // addresses the node neither sends to nor receives from
}

// faultRuleset renders the nft script that replaces the node's ssi_fault
// table with one enforcing f. Declaring the table before deleting it makes
// the script work whether or not the table exists; with no fault, it only
// deletes. The script is applied as one transaction.
func faultRuleset(f faultState) string {
	var b strings.Builder
	b.WriteString("table inet ssi_fault\ndelete table inet ssi_fault\n")
	if !f.isolated && len(f.blocked) == 0 {
		return b.String()
	}
	var in, out string
	if f.isolated {
		in, out = `iifname "lo" accept; drop`, `oifname "lo" accept; drop`
	} else {
		set := strings.Join(f.blocked, ", ")
		in, out = "ip saddr { "+set+" } drop", "ip daddr { "+set+" } drop"
	}
	fmt.Fprintf(&b, "table inet ssi_fault {\n"+
		"\tchain input { type filter hook input priority -10; %s; }\n"+
		"\tchain output { type filter hook output priority -10; %s; }\n"+
		"}\n", in, out)
	return b.String()
}

// LinkDown takes node i's link down as a pulled cable would: its port on the
// bridge goes down and the node's eth0 loses carrier.
func (c *Cluster) LinkDown(i int) error { return c.setLink(i, "down") }

// LinkUp undoes LinkDown.
func (c *Cluster) LinkUp(i int) error { return c.setLink(i, "up") }

func (c *Cluster) setLink(i int, state string) error {
	if err := c.faultable(i, "link "+state); err != nil {
		return err
	}
	return ip(context.Background(), "-n", hubNetns(c.ID), "link", "set", bridgePort(i), state)
}

// Isolate drops all of node i's traffic but its loopback, in and out.
func (c *Cluster) Isolate(i int) error {
	return c.changeFault("isolate", []int{i}, func(_ int, f *faultState) { f.isolated = true })
}

// Heal undoes Isolate of node i; a partition stays.
func (c *Cluster) Heal(i int) error {
	return c.changeFault("heal", []int{i}, func(_ int, f *faultState) { f.isolated = false })
}

// Partition cuts the nodes of groupA off from the others: each node drops
// traffic to and from the addresses of the nodes on the other side. It
// replaces any earlier partition.
func (c *Cluster) Partition(groupA []int) error {
	for _, i := range groupA {
		if err := c.faultable(i, "partition"); err != nil {
			return err
		}
	}
	var a, b []string
	for _, n := range c.Nodes {
		if slices.Contains(groupA, n.Index) {
			a = append(a, n.Addr)
		} else {
			b = append(b, n.Addr)
		}
	}
	return c.changeFault("partition", c.indexes(), func(i int, f *faultState) {
		if slices.Contains(groupA, i) {
			f.blocked = b
		} else {
			f.blocked = a
		}
	})
}

// HealAll removes every isolation and partition.
func (c *Cluster) HealAll() error {
	return c.changeFault("heal all", c.indexes(), func(_ int, f *faultState) { *f = faultState{} })
}

// changeFault applies change to the fault state of the nodes and loads the
// resulting rulesets.
func (c *Cluster) changeFault(what string, nodes []int, change func(i int, f *faultState)) error {
	for _, i := range nodes {
		if err := c.faultable(i, what); err != nil {
			return err
		}
	}
	if _, err := exec.LookPath("nft"); err != nil {
		return fmt.Errorf("%s: nft not found: install nftables (apt-get install -y nftables)", what)
	}
	var errs []error
	for _, i := range nodes {
		c.mu.Lock()
		f := &c.run[i-1].fault
		change(i, f)
		rules := faultRuleset(*f)
		c.mu.Unlock()
		cmd := exec.Command("ip", "netns", "exec", nodeNetns(c.ID, i), "nft", "-f", "-")
		cmd.Stdin = strings.NewReader(rules)
		if out, err := cmd.CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("%s node %d: nft: %v: %s", what, i, err, bytes.TrimSpace(out)))
		}
	}
	return errors.Join(errs...)
}

// faultable checks that node i exists and can take network faults.
func (c *Cluster) faultable(i int, what string) error {
	if _, err := c.node(i); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if !c.Namespaces {
		return fmt.Errorf("%s node %d: %w", what, i, ErrNeedNamespaces)
	}
	return nil
}

// PauseAgent stops node i's agent (SIGSTOP), as a long stall would: it
// stays a member until the cluster notices. ResumeAgent undoes it.
func (c *Cluster) PauseAgent(i int) error {
	_, pid, err := c.agentPID(i)
	if err != nil {
		return err
	}
	return syscall.Kill(pid, syscall.SIGSTOP)
}

// ResumeAgent continues node i's agent and, in namespace mode, the
// nsenter that forked it (it stops itself when its child stops, and a
// stopped nsenter could not reap the agent when the node is torn down).
func (c *Cluster) ResumeAgent(i int) error {
	p, pid, err := c.agentPID(i)
	if err != nil {
		return err
	}
	if c.Namespaces {
		syscall.Kill(p.pid(), syscall.SIGCONT)
	}
	return syscall.Kill(pid, syscall.SIGCONT)
}
