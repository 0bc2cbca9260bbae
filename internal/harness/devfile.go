package harness

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
)

// DevInfo describes a running `ssi dev` cluster to other ssi invocations.
// It is the JSON content of DevFile().
type DevInfo struct {
	PID        int       `json:"pid"` // the `ssi dev` process
	ID         string    `json:"id"`
	Dir        string    `json:"dir"`
	Namespaces bool      `json:"namespaces"`
	Hub        string    `json:"hub,omitempty"` // namespace mode: the hub network namespace
	Nodes      []DevNode `json:"nodes"`
}

// DevNode is one node of a dev cluster.
type DevNode struct {
	Node
	InitPID int `json:"init_pid,omitempty"` // namespace mode: host pid of the node's init
}

// DevFile is where `ssi dev` describes its cluster: $SSI_DEV_FILE if set,
// else /run/ssi/dev.json for root, else $XDG_RUNTIME_DIR/ssi-dev.json or
// /tmp/ssi-dev-<uid>.json.
func DevFile() string { return devFilePath(os.Getenv, os.Geteuid()) }

func devFilePath(getenv func(string) string, uid int) string {
	switch {
	case getenv("SSI_DEV_FILE") != "":
		return getenv("SSI_DEV_FILE")
	case uid == 0:
		return "/run/ssi/dev.json"
	case getenv("XDG_RUNTIME_DIR") != "":
		return filepath.Join(getenv("XDG_RUNTIME_DIR"), "ssi-dev.json")
	default:
		return fmt.Sprintf("/tmp/ssi-dev-%d.json", uid)
	}
}

// LookupDev reads the description of the running dev cluster.
func LookupDev() (*DevInfo, error) {
	path := DevFile()
	d, err := readDevFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("no ssi dev cluster is running (no %s)", path)
	}
	if err != nil {
		return nil, err
	}
	if !alive(d.PID) {
		return nil, fmt.Errorf("no ssi dev cluster is running (%s is left from pid %d; `ssi dev --clean` removes it)", path, d.PID)
	}
	return d, nil
}

func readDevFile(path string) (*DevInfo, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var d DevInfo
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &d, nil
}

func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return pid > 0 && (err == nil || errors.Is(err, syscall.EPERM))
}

func (d *DevInfo) node(i int) (*DevNode, error) {
	if i < 1 || i > len(d.Nodes) {
		return nil, fmt.Errorf("dev cluster has %d nodes; no node %d", len(d.Nodes), i)
	}
	return &d.Nodes[i-1], nil
}

// Socket is node i's agent socket.
func (d *DevInfo) Socket(i int) (string, error) {
	n, err := d.node(i)
	if err != nil {
		return "", err
	}
	return n.Socket, nil
}

// Shell is Cluster.Shell for node i of the dev cluster.
func (d *DevInfo) Shell(i int) (*exec.Cmd, error) {
	n, err := d.node(i)
	if err != nil {
		return nil, err
	}
	return shellCommand(&n.Node, n.InitPID), nil
}

// Command runs argv inside node i of the dev cluster (in its namespaces
// when it has them) with SSI_SOCKET set to the node's agent.
func (d *DevInfo) Command(i int, argv ...string) (*exec.Cmd, error) {
	n, err := d.node(i)
	if err != nil {
		return nil, err
	}
	cmd := nodeCommand(&n.Node, n.InitPID, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "SSI_SOCKET="+n.Socket)
	return cmd, nil
}

// WriteDevFile describes the cluster in DevFile(), for `ssi dev`; Close
// removes the file.
func (c *Cluster) WriteDevFile() (string, error) {
	path := DevFile()
	c.mu.Lock()
	c.devFile = path
	c.mu.Unlock()
	return path, c.writeDevFile(path)
}

// rewriteDevFile updates the dev file, if any, after a node rebooted.
func (c *Cluster) rewriteDevFile() {
	c.mu.Lock()
	path := c.devFile
	c.mu.Unlock()
	if path != "" {
		c.writeDevFile(path)
	}
}

func (c *Cluster) writeDevFile(path string) error {
	d := DevInfo{PID: os.Getpid(), ID: c.ID, Dir: c.Dir, Namespaces: c.Namespaces, Hub: c.Hub}
	for _, n := range c.Nodes {
		d.Nodes = append(d.Nodes, DevNode{Node: *n, InitPID: c.initPID(n.Index)})
	}
	b, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// Sweep removes what crashed harnesses left: the namespaces of clusters
// with no process left in them, ssi-* cgroups with no process, and a dev
// file whose `ssi dev` is gone. Run it when no harness is starting a
// cluster: one being set up has namespaces without processes yet.
func Sweep() error {
	errs := []error{sweepNetns(), sweepCgroups()}
	path := DevFile()
	if d, err := readDevFile(path); err == nil && !alive(d.PID) || err != nil && !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, os.Remove(path))
	}
	return errors.Join(errs...)
}
