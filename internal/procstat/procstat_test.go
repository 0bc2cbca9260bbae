package procstat

import (
	"os"
	"strings"
	"testing"
)

// self is a /proc/PID/stat line of 52 fields whose command name holds
// spaces and parentheses.
const self = "4242 (a (b) c) S 1 4242 4242 34816 4242 4194560 100 0 0 0 7 3 0 0 20 -5 2 0 12345 1000000 250 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 4096 8192 16384 140000 140100 140200 140300 0\n"

func TestParse(t *testing.T) {
	t.Parallel()
	s, err := Parse([]byte(self))
	if err != nil {
		t.Fatal(err)
	}
	if s.Pid != 4242 || string(s.Comm) != "a (b) c" || s.State() != 'S' || s.Need(52) != nil || s.Need(53) == nil {
		t.Fatalf("pid %d comm %q state %c", s.Pid, s.Comm, s.State())
	}
	for _, tc := range []struct {
		k    int
		want int64
	}{{4, 1}, {5, 4242}, {14, 7}, {18, 20}, {19, -5}, {20, 2}, {22, 12345}, {24, 250}, {51, 140300}} {
		if v, err := s.Int(tc.k); err != nil || v != tc.want {
			t.Errorf("field %d: %d, %v; want %d", tc.k, v, err, tc.want)
		}
	}
	if _, err := s.Uint(19); err == nil {
		t.Error("a negative field read as unsigned")
	}
	if _, err := s.Uint(53); err == nil || s.Field(53) != nil || s.Field(2) != nil {
		t.Error("a field past the end, or the command name, read as a field")
	}
}

func TestParseRefuses(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ line, want string }{
		{"", "no parenthesised comm"},
		{"12 x) S", "no parenthesised comm"},
		{"x (a) S 1", "bad pid"},
		{"0 (a) S 1", "bad pid"},
	} {
		if _, err := Parse([]byte(tc.line)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q): %v, want %q", tc.line, err, tc.want)
		}
	}
	s, _ := Parse([]byte("12 (a) S 1 0 0"))
	if err := s.Need(22); err == nil || !strings.Contains(err.Error(), "fields after comm") {
		t.Errorf("Need(22) of 6 fields: %v", err)
	}
}

func TestParseDoesNotAllocate(t *testing.T) {
	b := []byte(self)
	if n := testing.AllocsPerRun(100, func() {
		s, _ := Parse(b)
		s.Uint(14)
		s.Int(19)
	}); n != 0 {
		t.Errorf("%v allocations", n)
	}
}

func TestReadState(t *testing.T) {
	t.Parallel()
	if c := ReadState(os.Getpid()); c != 'R' && c != 'S' {
		t.Errorf("this process's state %q", c)
	}
	if c := ReadState(1 << 30); c != 0 {
		t.Errorf("a process that does not exist: %q", c)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(self))
	f.Add([]byte("1 ()) R 0"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := Parse(b)
		if err != nil {
			return
		}
		for k := 1; k <= maxFields+1; k++ {
			s.Field(k)
			s.Int(k)
		}
	})
}
