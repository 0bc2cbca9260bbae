package agent

import (
	"os"
	"strings"
	"testing"

	"github.com/ssi-cluster/ssi/internal/state"
)

// TestMetricsDocumented: every metric the agent registers has its row in
// docs/commands.md, and every row names a metric that exists.
func TestMetricsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/commands.md")
	if err != nil {
		t.Fatal(err)
	}
	m := newMetrics()
	m.observeRegistry(&state.Registry{}, false) // a vector shows once it has a value
	families, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, f := range families {
		name := f.GetName()
		if strings.HasPrefix(name, "go_") || strings.HasPrefix(name, "process_") {
			continue
		}
		have[name] = true
		if !strings.Contains(string(doc), "| `"+name+"`") && !strings.Contains(string(doc), "| `"+name+"{") {
			t.Errorf("metric %s has no row in docs/commands.md", name)
		}
	}
	for _, l := range strings.Split(string(doc), "\n") {
		if !strings.HasPrefix(l, "| `ssi_") {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimPrefix(l, "| `"), "`")
		name, _, _ = strings.Cut(name, "{")
		if !have[name] {
			t.Errorf("docs/commands.md documents %s, which the agent does not export", name)
		}
	}
}
