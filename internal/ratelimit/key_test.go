package ratelimit

import "testing"

func TestKeyOf(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"10.0.0.5", "10.0.0.5"},
		{"10.0.0.5:43210", "10.0.0.5"},
		{"[::ffff:10.0.0.5]:7947", "10.0.0.5"},
		{"[2001:db8:1:2:a:b:c:d]:7947", "2001:db8:1:2::/64"},
		{"2001:db8:1:2::1", "2001:db8:1:2::/64"},
		{"[fe80::1%eth0]:7947", "fe80::/64"},
		{"node1.example:7947", "node1.example"},
		{"@", "@"},
		{"", ""},
	} {
		if got := KeyOf(tt.in); got != tt.want {
			t.Errorf("KeyOf(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
