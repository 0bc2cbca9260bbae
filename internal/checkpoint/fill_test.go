package checkpoint

import "testing"

func TestFillerSpan(t *testing.T) {
	f := &filler{ranges: []Range{{0x1000, 0x3000}, {0x5000, 0x6000}}}
	for _, tc := range []struct {
		addr uint64
		n    int
		k    int
		in   bool
	}{
		{0x0, 0x1000, 0x1000, false},   // before every range
		{0x0, 0x4000, 0x1000, false},   // up to the first
		{0x1000, 0x1000, 0x1000, true}, // inside
		{0x2000, 0x3000, 0x1000, true}, // out of the first
		{0x3000, 0x3000, 0x2000, false},
		{0x5000, 0x1000, 0x1000, true},
		{0x6000, 0x1000, 0x1000, false}, // after every range
	} {
		if k, in := f.span(tc.addr, tc.n); k != tc.k || in != tc.in {
			t.Errorf("span(%#x, %#x) = %#x, %v; want %#x, %v", tc.addr, tc.n, k, in, tc.k, tc.in)
		}
	}
}
