package cli

import (
	"reflect"
	"testing"
)

func TestLeadingNode(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		node    int
		rest    []string
		wantErr bool
	}{
		{[]string{"--node", "1", "run", "--node", "2", "true"}, 1, []string{"run", "--node", "2", "true"}, false},
		{[]string{"--node=3", "ps"}, 3, []string{"ps"}, false},
		{[]string{"-o", "json", "--node", "2", "nodes"}, 2, []string{"-o", "json", "nodes"}, false},
		{[]string{"--socket", "--node", "ps"}, 0, []string{"--socket", "--node", "ps"}, false}, // a socket named --node
		{[]string{"run", "--node", "2", "true"}, 0, []string{"run", "--node", "2", "true"}, false},
		{[]string{"ps", "--node", "2"}, 0, []string{"ps", "--node", "2"}, false}, // cobra's persistent flag takes it
		{[]string{"--node", "0", "ps"}, 0, nil, true},
		{[]string{"--node", "x", "ps"}, 0, nil, true},
		{[]string{"--node"}, 0, nil, true},
	} {
		node, rest, err := leadingNode(tc.args)
		if (err != nil) != tc.wantErr {
			t.Errorf("%q: error %v, want error %v", tc.args, err, tc.wantErr)
			continue
		}
		if err == nil && (node != tc.node || !reflect.DeepEqual(rest, tc.rest)) {
			t.Errorf("%q: %d %q, want %d %q", tc.args, node, rest, tc.node, tc.rest)
		}
	}
}

func TestCommandName(t *testing.T) {
	for want, args := range map[string][]string{
		"run":      {"-o", "json", "run", "--node", "2"},
		"onnode":   {"--socket", "/x", "onnode", "2", "hostname"},
		"":         {"-o", "json"},
		"fastnode": {"fastnode", "true"},
	} {
		if got := commandName(args); got != want {
			t.Errorf("commandName(%q) = %q, want %q", args, got, want)
		}
	}
}
