package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// netnsDir is where `ip netns add` pins named network namespaces.
const netnsDir = "/run/netns"

func hubNetns(id string) string         { return "ssi" + id + "hub" }
func nodeNetns(id string, i int) string { return fmt.Sprintf("ssi%sn%d", id, i) }
func bridgePort(i int) string           { return fmt.Sprintf("n%d", i) }
func nodeName(i int) string             { return fmt.Sprintf("node%d", i) }
func cgroupName(id string) string       { return "ssi-" + id }
func nodeNetnsPrefix(id string) string  { return "ssi" + id + "n" }

// validID keeps IDs short enough for interface and namespace names and
// free of characters that would make names ambiguous: 1 to 8 of [0-9a-z].
// (No regexp: this package is in every ssi binary, and a regexp compiled
// at start-up costs every command.)
func validID(id string) bool {
	if len(id) == 0 || len(id) > 8 {
		return false
	}
	for _, c := range []byte(id) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z') {
			return false
		}
	}
	return true
}

// hubID is the cluster ID in the name of a cluster's hub namespace
// (hubNetns), if name is one.
func hubID(name string) (string, bool) {
	id, pre := strings.CutPrefix(name, "ssi")
	id, suf := strings.CutSuffix(id, "hub")
	if pre && suf && validID(id) {
		return id, true
	}
	return "", false
}

// loopbackAddr is node i's address in loopback mode: 127.<a>.<b>.<i> with a
// in 100..199 and b in 0..255 derived from the cluster ID, so that clusters
// running at once on one host (tests of several packages) rarely share a
// /24: 1 in 25600 for two random IDs.
func loopbackAddr(id string, i int) string {
	h := idHash(id)
	return fmt.Sprintf("127.%d.%d.%d", 100+h%100, h/100%256, i)
}

// bridgeAddr is node i's address in namespace mode. Every cluster has its
// own bridge, so addresses cannot clash; the ID-derived third byte only
// tells clusters apart in logs.
func bridgeAddr(id string, i int) string { return fmt.Sprintf("10.77.%d.%d", idHash(id)%256, i) }

func idHash(id string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(id))
	return h.Sum32()
}

// ip runs iproute2's ip with args.
func ip(ctx context.Context, args ...string) error {
	out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// setupNetwork makes the bridge in the hub namespace, which the caller has
// made, and the n node namespaces wired to it. On error the caller tears
// down what exists.
func setupNetwork(ctx context.Context, id string, n int) error {
	hub := hubNetns(id)
	steps := [][]string{
		{"-n", hub, "link", "add", "br0", "type", "bridge"},
		{"-n", hub, "link", "set", "br0", "up"},
	}
	for i := 1; i <= n; i++ {
		ns := nodeNetns(id, i)
		steps = append(steps,
			[]string{"netns", "add", ns},
			[]string{"-n", ns, "link", "set", "lo", "up"},
			[]string{"-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", bridgePort(i), "netns", hub},
			[]string{"-n", hub, "link", "set", bridgePort(i), "master", "br0", "up"},
			[]string{"-n", ns, "addr", "add", bridgeAddr(id, i) + "/24", "dev", "eth0"},
			[]string{"-n", ns, "link", "set", "eth0", "up"},
		)
	}
	for _, s := range steps {
		if err := ip(ctx, s...); err != nil {
			return err
		}
	}
	return nil
}

// deleteNetns deletes the named namespaces that exist. Their interfaces, the
// bridge and any nftables tables go with them.
func deleteNetns(names ...string) error {
	var errs []error
	for _, name := range names {
		if _, err := os.Stat(filepath.Join(netnsDir, name)); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		errs = append(errs, ip(context.Background(), "netns", "delete", name))
	}
	return errors.Join(errs...)
}

// clusterNetns lists the namespaces of cluster id that exist: every
// ssi<id>n<digits>, whatever the number of nodes, then the hub.
func clusterNetns(id string) ([]string, error) {
	all, err := listNetns()
	if err != nil {
		return nil, err
	}
	var names []string
	for _, name := range all {
		if isNodeNetnsOf(name, id) {
			names = append(names, name)
		}
	}
	if slices.Contains(all, hubNetns(id)) {
		names = append(names, hubNetns(id))
	}
	return names, nil
}

func isNodeNetnsOf(name, id string) bool {
	rest, ok := strings.CutPrefix(name, nodeNetnsPrefix(id))
	return ok && rest != "" && strings.Trim(rest, "0123456789") == ""
}

func listNetns() ([]string, error) {
	entries, err := os.ReadDir(netnsDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names, nil
}

// netnsBusy reports whether any process is in the named namespace.
func netnsBusy(name string) (bool, error) {
	out, err := exec.Command("ip", "netns", "pids", name).Output()
	if err != nil {
		return false, fmt.Errorf("ip netns pids %s: %v", name, err)
	}
	return len(bytes.TrimSpace(out)) > 0, nil
}

// sweepNetns deletes the namespaces of every harness cluster none of whose
// node namespaces holds a process.
func sweepNetns() error {
	all, err := listNetns()
	if err != nil {
		return err
	}
	var errs []error
	for _, name := range all {
		if id, ok := hubID(name); ok {
			errs = append(errs, sweepCluster(id))
		}
	}
	return errors.Join(errs...)
}

// sweepCluster deletes the namespaces of cluster id if none holds a process.
func sweepCluster(id string) error {
	names, err := clusterNetns(id)
	if err != nil {
		return err
	}
	for _, name := range names {
		if busy, err := netnsBusy(name); err != nil || busy {
			return err
		}
	}
	return deleteNetns(names...)
}
