package itest

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// TestLogFormatJSON: with log_format = "json" every line an agent writes is
// a JSON object, raft's included (a joining node's raft warns as it
// catches up).
func TestLogFormatJSON(t *testing.T) {
	c, _ := startCluster(t, 2, "--log-format", "json")
	raftLines := 0
	for _, n := range c.Nodes {
		b, err := os.ReadFile(n.Log)
		if err != nil {
			t.Fatal(err)
		}
		for line := range strings.Lines(string(b)) {
			line = strings.TrimSpace(line)
			if line == "" || strings.HasPrefix(line, "harness: ") {
				continue
			}
			var obj map[string]any
			if err := json.Unmarshal([]byte(line), &obj); err != nil {
				t.Errorf("%s: not JSON: %s", n.Name, line)
				continue
			}
			if obj["@module"] == "raft" {
				raftLines++
			}
		}
	}
	if raftLines == 0 {
		t.Errorf("no raft line as JSON (a joining node's raft always warns as it catches up)")
	}
}
