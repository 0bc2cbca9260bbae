// Package procstat splits /proc/PID/stat. Its second field, the command
// name in parentheses, may itself hold spaces, parentheses and even
// newlines, so the fields after it are read after its last ')'. The
// packages that read the process table (vproc), the load (load), a
// caller (rexec), a process to dump (checkpoint) or a process's state
// (agent) share it. Parse does not allocate.
package procstat

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
)

// maxFields is the number of fields of /proc/PID/stat (proc(5)).
const maxFields = 52

// Stat is one /proc/PID/stat, split. Fields are numbered as in proc(5):
// 1 is the pid, 2 the command name, 3 the state.
type Stat struct {
	Pid  int
	Comm []byte // aliases what was parsed
	f    [maxFields - 2][]byte
	n    int // fields after the command name
}

// Parse splits b.
func Parse(b []byte) (Stat, error) {
	var s Stat
	open, closing := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || closing < open {
		return s, errors.New("stat: no parenthesised comm field")
	}
	pid, ok := Decimal(bytes.TrimSpace(b[:open]))
	if !ok || pid == 0 {
		return s, fmt.Errorf("stat: bad pid %q", bytes.TrimSpace(b[:open]))
	}
	s.Pid, s.Comm = int(pid), b[open+1:closing]
	for rest := b[closing+1:]; s.n < len(s.f); s.n++ {
		i := 0
		for i < len(rest) && isSpace(rest[i]) {
			i++
		}
		j := i
		for j < len(rest) && !isSpace(rest[j]) {
			j++
		}
		if i == j {
			break
		}
		s.f[s.n], rest = rest[i:j], rest[j:]
	}
	return s, nil
}

// Need says whether s has the fields up to field k.
func (s *Stat) Need(k int) error {
	if s.n+2 < k {
		return fmt.Errorf("stat: %d fields after comm, want at least %d", s.n, k-2)
	}
	return nil
}

// Field is field k (3 or more), nil if s does not have it.
func (s *Stat) Field(k int) []byte {
	if k < 3 || k-3 >= s.n {
		return nil
	}
	return s.f[k-3]
}

// State is the state letter (field 3), 0 if it is not one letter.
func (s *Stat) State() byte {
	if f := s.Field(3); len(f) == 1 {
		return f[0]
	}
	return 0
}

// Uint is field k as an unsigned number.
func (s *Stat) Uint(k int) (uint64, error) {
	v, ok := Decimal(s.Field(k))
	if !ok {
		return 0, fmt.Errorf("stat: field %d: %q is not a number", k, s.Field(k))
	}
	return v, nil
}

// Int is field k as a signed number (nice, and the fields that may be -1).
func (s *Stat) Int(k int) (int64, error) {
	f := s.Field(k)
	neg := len(f) > 0 && f[0] == '-'
	if neg {
		f = f[1:]
	}
	v, ok := Decimal(f)
	if !ok {
		return 0, fmt.Errorf("stat: field %d: %q is not a number", k, s.Field(k))
	}
	if neg {
		return -int64(v), nil
	}
	return int64(v), nil
}

// ReadState is the state letter of process pid, 0 if it cannot be read.
func ReadState(pid int) byte {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	s, err := Parse(b)
	if err != nil {
		return 0
	}
	return s.State()
}

func isSpace(c byte) bool { return c == ' ' || c == '\n' || c == '\t' }

// Decimal parses an unsigned decimal number (a field, a pid, a /proc
// directory's name) without allocating; ok is false if b is empty, holds
// anything but digits, or overflows int64.
func Decimal(b []byte) (v uint64, ok bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + uint64(c-'0')
	}
	return v, true
}
