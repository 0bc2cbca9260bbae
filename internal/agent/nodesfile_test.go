package agent

import (
	"net"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

func TestParseNodesFile(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		in   string
		want []string
		err  string // substring; "" means success
	}{
		{"empty", "", nil, ""},
		{"only comments and blanks", "# mosix.map\n\n   \n\t# more\n", nil, ""},
		{"addresses", "10.0.0.1\n10.0.0.2:7946\nnode3.example\nnode4:8000\n",
			[]string{"10.0.0.1", "10.0.0.2:7946", "node3.example", "node4:8000"}, ""},
		{"comments and spaces", "  10.0.0.1   # the first\n#10.0.0.9\n\t10.0.0.2\t\n",
			[]string{"10.0.0.1", "10.0.0.2"}, ""},
		{"CRLF", "10.0.0.1\r\n10.0.0.2:7946\r\n", []string{"10.0.0.1", "10.0.0.2:7946"}, ""},
		{"no final newline", "10.0.0.1", []string{"10.0.0.1"}, ""},
		{"ipv6", "fe80::1\n[fe80::2]:7946\n::1\n", []string{"fe80::1", "[fe80::2]:7946", "::1"}, ""},
		{"port limits", "a:1\nb:65535\n", []string{"a:1", "b:65535"}, ""},
		{"two on a line", "10.0.0.1 10.0.0.2\n", nil, `line 1: "10.0.0.1 10.0.0.2": want one address a line`},
		{"tab inside", "10.0.0.1\tx\n", nil, "want one address a line"},
		{"error names its line", "10.0.0.1\n\n# c\n10.0.0.4 x\n", nil, "line 4:"},
		{"port only", ":7946\n", nil, `":7946" is not an address`},
		{"slash", "10.0.0.0/24\n", nil, "is not an address"},
		{"url", "http://10.0.0.1/\n", nil, "line 1:"},
		{"user at host", "root@node1\n", nil, "is not an address"},
		{"backslash", `node\1` + "\n", nil, "is not an address"},
		{"empty brackets", "[]:80\n", nil, "is not an address"},
		{"port 0", "10.0.0.1:0\n", nil, "bad port"},
		{"port too big", "10.0.0.1:65536\n", nil, "bad port"},
		{"port not a number", "10.0.0.1:ssh\n", nil, "bad port"},
		{"empty port", "10.0.0.1:\n", nil, "bad port"},
		{"negative port", "10.0.0.1:-1\n", nil, "bad port"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseNodesFile([]byte(tc.in))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("ParseNodesFile(%q) = %q, %v; want an error with %q", tc.in, got, err, tc.err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("ParseNodesFile(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
		})
	}
}

// TestParseNodesFileRejectsNonAddresses: an entry that is neither host,
// host:port, an IPv6 address nor [IPv6]:port must be refused with its line,
// not accepted and turned into a dial address like "[10.0.0.1:7946:1]:7946".
func TestParseNodesFileRejectsNonAddresses(t *testing.T) {
	t.Parallel()
	for _, in := range []string{"10.0.0.1:7946:1", "node1:80:90", "[::1]", "[::1]x"} {
		if got, err := ParseNodesFile([]byte(in + "\n")); err == nil {
			t.Errorf("ParseNodesFile(%q) = %q, want an error (dial address would be %q)", in, got, withPort(got[0], 7946))
		}
	}
}

func TestWithPortAndHostOf(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, with, host string }{
		{"10.0.0.1", "10.0.0.1:7946", "10.0.0.1"},
		{"10.0.0.1:8000", "10.0.0.1:8000", "10.0.0.1"},
		{"node1", "node1:7946", "node1"},
		{"fe80::1", "[fe80::1]:7946", "fe80::1"},
		{"[fe80::1]:8000", "[fe80::1]:8000", "fe80::1"},
	} {
		if got := withPort(tc.in, 7946); got != tc.with {
			t.Errorf("withPort(%q) = %q, want %q", tc.in, got, tc.with)
		}
		if got := hostOf(tc.in); got != tc.host {
			t.Errorf("hostOf(%q) = %q, want %q", tc.in, got, tc.host)
		}
	}
}

// FuzzParseNodesFile checks that ParseNodesFile never panics, that every
// address it returns is one trimmed word with a valid port if it has one,
// and that its output, written back one a line, parses to itself.
func FuzzParseNodesFile(f *testing.F) {
	f.Add([]byte("# mosix.map\n10.0.0.1\n10.0.0.2:7946 # two\n\nnode3.example\r\n"))
	f.Add([]byte("fe80::1\n[fe80::2]:7946\n"))
	f.Add([]byte("10.0.0.1 10.0.0.2\n"))
	f.Add([]byte(":7946\n"))
	f.Add([]byte("10.0.0.1:0\n"))
	f.Add([]byte("a@b\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, b []byte) {
		list, err := ParseNodesFile(b)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "line ") {
				t.Fatalf("error %q does not name a line", err)
			}
			return
		}
		if lines := strings.Count(string(b), "\n") + 1; len(list) > lines {
			t.Fatalf("%d addresses from %d lines", len(list), lines)
		}
		for _, a := range list {
			if a == "" || a != strings.TrimSpace(a) || strings.ContainsAny(a, " \t#\n") {
				t.Fatalf("ParseNodesFile(%q) returned %q", b, a)
			}
			if hostOf(a) == "" {
				t.Fatalf("address %q has no host", a)
			}
			if _, p, err := net.SplitHostPort(a); err == nil {
				if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
					t.Fatalf("address %q has a bad port", a)
				}
			}
		}
		again, err := ParseNodesFile([]byte(strings.Join(list, "\n")))
		if err != nil || !reflect.DeepEqual(again, list) {
			t.Fatalf("re-parse of %q = %q, %v", list, again, err)
		}
	})
}
