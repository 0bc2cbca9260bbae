package itest

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRunSlowReader: a reader that stops reading for longer than the
// agent's output grace (2 s) while the process ends still gets all of its
// output. The node's pumps, held back by flow control (the home does not
// acknowledge what it cannot write), closed the pipes 2 s after the exit:
// the last pipe's worth of output was lost with exit status 0.
func TestRunSlowReader(t *testing.T) {
	c, _ := startCluster(t, 2, "--allow-remote-root", "true")
	dir := shortTemp(t)
	os.Chmod(dir, 0o755)
	// Sizes around what the node keeps unacknowledged (relink.Window)
	// plus the pipes: the process must end while its pipe still holds
	// output that the held-back pumps have not read.
	for _, mib := range []int{0, 8, 9, 10} {
		big := filepath.Join(dir, fmt.Sprintf("big%d", mib))
		data := bytes.Repeat([]byte("0123456789abcdef\n"), (mib<<20+512<<10)/17)
		if err := os.WriteFile(big, data, 0o644); err != nil {
			t.Fatal(err)
		}
		script := fmt.Sprintf("%s --socket %s run --node 2 cat %s | { sleep 4; wc -c; }", c.Binary, c.Nodes[0].Socket, big)
		out, err := c.Command(1, "sh", "-c", script).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v: %s", script, err, out)
		}
		if got, want := strings.TrimSpace(string(out)), fmt.Sprint(len(data)); got != want {
			t.Errorf("%d bytes: the reader got %s", len(data), got)
		}
	}
}
