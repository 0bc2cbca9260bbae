package cli

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ssi-cluster/ssi/internal/api"
)

// fakeAgent answers /v1/nodes and /v1/procs on a Unix socket.
func fakeAgent(t *testing.T) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "agent.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/nodes", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode([]api.Node{{Number: 1, Name: "alpha", State: "up"}, {Number: 2, Name: "beta", State: "down"}})
	})
	mux.HandleFunc("/v1/procs", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(api.ProcsReply{Procs: []api.Proc{{CPID: 4194401, Node: 2, Command: "python3 train.py"}}})
	})
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return sock
}

// TestCompletion: node numbers and cluster pids come from the agent, each
// with a description, where the commands take them; nothing (not file
// names) where no argument is left.
func TestCompletion(t *testing.T) {
	sock := fakeAgent(t)
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"migrate", ""}, []string{"4194401\tnode 2: python3 train.py"}},
		{[]string{"migrate", "4194401", ""}, []string{"1\talpha up", "2\tbeta down", "home\tthe process's home node", "fast\tthe best node by load"}},
		{[]string{"migrate", "4194401", "2", ""}, nil},
		{[]string{"where", ""}, []string{"4194401\tnode 2: python3 train.py"}},
		{[]string{"freeze", "4194401", ""}, []string{"4194401\tnode 2: python3 train.py"}},
		{[]string{"node", "info", ""}, []string{"1\talpha up", "2\tbeta down"}},
		{[]string{"run", "--node", ""}, []string{"1\talpha up", "2\tbeta down"}},
		{[]string{"onnode", ""}, []string{"1\talpha up", "2\tbeta down"}},
	} {
		var out, errb bytes.Buffer
		run(append([]string{"--socket", sock, "__complete"}, tc.args...), &out, &errb)
		var got []string
		for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
			if !strings.HasPrefix(l, ":") {
				got = append(got, l)
			}
		}
		if strings.Join(got, "|") != strings.Join(tc.want, "|") {
			t.Errorf("ssi __complete %q:\n got %q\nwant %q", tc.args, got, tc.want)
		}
	}
}
