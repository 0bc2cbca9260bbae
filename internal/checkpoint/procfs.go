package checkpoint

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/ssi-cluster/ssi/internal/procstat"
)

// The parsers in this file are pure: they take the text of a /proc file.

// parseMapsLine parses one line of /proc/PID/maps.
func parseMapsLine(line string) (Mapping, error) {
	var m Mapping
	bad := func(what string) (Mapping, error) {
		return Mapping{}, fmt.Errorf("maps line %q: bad %s", line, what)
	}
	f := strings.Fields(line)
	if len(f) < 5 {
		return bad("field count")
	}
	lo, hi, ok := strings.Cut(f[0], "-")
	if !ok {
		return bad("range")
	}
	var err1, err2, err3 error
	m.Start, err1 = strconv.ParseUint(lo, 16, 64)
	m.End, err2 = strconv.ParseUint(hi, 16, 64)
	m.Offset, err3 = strconv.ParseUint(f[2], 16, 64)
	if err1 != nil || err2 != nil || m.Start >= m.End {
		return bad("range")
	}
	if err3 != nil {
		return bad("offset")
	}
	p := f[1]
	if len(p) != 4 || !strings.ContainsRune("r-", rune(p[0])) || !strings.ContainsRune("w-", rune(p[1])) ||
		!strings.ContainsRune("x-", rune(p[2])) || !strings.ContainsRune("ps", rune(p[3])) {
		return bad("permissions")
	}
	if p[0] == 'r' {
		m.Prot |= ProtRead
	}
	if p[1] == 'w' {
		m.Prot |= ProtWrite
	}
	if p[2] == 'x' {
		m.Prot |= ProtExec
	}
	if p[3] == 's' {
		m.Flags |= MapShared
	}
	m.Dev = f[3]
	if !strings.Contains(m.Dev, ":") {
		return bad("device")
	}
	var err error
	if m.Inode, err = strconv.ParseUint(f[4], 10, 64); err != nil {
		return bad("inode")
	}
	if len(f) > 5 {
		// The path is the rest of the line after the inode column; it
		// may contain spaces.
		rest := line
		for i := 0; i < 5; i++ {
			rest = strings.TrimLeft(rest, " \t")
			rest = rest[strings.IndexAny(rest+" ", " \t"):]
		}
		m.Path = strings.TrimLeft(rest, " \t")
	}
	m.Kind = classify(m.Path, m.Flags)
	return m, nil
}

func classify(path string, flags uint8) Kind {
	switch path {
	case "[heap]":
		return KindHeap
	case "[stack]":
		return KindStack
	case "[vdso]":
		return KindVDSO
	case "[vvar]", "[vvar_vclock]":
		return KindVVAR
	case "[vsyscall]":
		return KindVsyscall
	}
	if flags&MapShared != 0 && (path == "/dev/zero (deleted)" || strings.HasPrefix(path, "[anon_shmem:") || goneShmem(path)) {
		return KindAnonShared // MAP_SHARED|MAP_ANONYMOUS (a shmem object of its own), or one whose name is gone
	}
	if strings.HasPrefix(path, "/") {
		if flags&MapShared != 0 {
			return KindFileShared
		}
		return KindFilePrivate
	}
	return KindAnon
}

// parseMaps parses a whole /proc/PID/maps file.
func parseMaps(text string) ([]Mapping, error) {
	var ms []Mapping
	for line := range strings.Lines(text) {
		line = strings.TrimRight(line, "\n")
		if line == "" {
			continue
		}
		m, err := parseMapsLine(line)
		if err != nil {
			return nil, err
		}
		ms = append(ms, m)
	}
	return ms, nil
}

// statInfo holds the fields of /proc/PID/stat that a dump needs.
type statInfo struct {
	Comm    string
	State   byte
	TTYNr   uint64 // controlling terminal (encoded device number), 0 for none
	Threads int
	MM      MM // all but Brk, which stat does not show
}

// parseStat parses /proc/PID/stat (all 52 fields).
func parseStat(s string) (statInfo, error) {
	var st statInfo
	ps, err := procstat.Parse([]byte(s))
	if err == nil {
		err = ps.Need(51)
	}
	if err != nil {
		return st, err
	}
	st.Comm = string(ps.Comm)
	if st.State = ps.State(); st.State == 0 {
		return st, fmt.Errorf("stat: bad state %q", ps.Field(3))
	}
	num := func(k int) uint64 {
		v, e := ps.Uint(k)
		if e != nil {
			var n int64 // a few fields may be -1
			if n, e = ps.Int(k); e != nil && err == nil {
				err = e
			}
			v = uint64(n)
		}
		return v
	}
	st.TTYNr = num(7)
	st.Threads = int(num(20))
	st.MM = MM{StartCode: num(26), EndCode: num(27), StartStack: num(28),
		StartData: num(45), EndData: num(46), StartBrk: num(47),
		ArgStart: num(48), ArgEnd: num(49), EnvStart: num(50), EnvEnd: num(51)}
	return st, err
}

// statusInfo holds the fields of /proc/PID/status that a dump or a refusal
// check needs.
type statusInfo struct {
	Umask                                  uint32
	TracerPid, Threads                     int
	SigPnd, ShdPnd, SigBlk, SigIgn, SigCgt uint64
}

func (st *statusInfo) sigField(k string) *uint64 {
	switch k {
	case "SigPnd":
		return &st.SigPnd
	case "ShdPnd":
		return &st.ShdPnd
	case "SigBlk":
		return &st.SigBlk
	case "SigIgn":
		return &st.SigIgn
	}
	return &st.SigCgt
}

// errEnded is why a process that ended (or is a zombie) cannot move.
var errEnded = errors.New("it exited")

// exitedStatus reports whether /proc/PID/status is a zombie's or a dead
// process's: such a status lacks fields a live one has.
func exitedStatus(s string) bool {
	for line := range strings.Lines(s) {
		if v, ok := strings.CutPrefix(line, "State:"); ok {
			v = strings.TrimSpace(v)
			return strings.HasPrefix(v, "Z") || strings.HasPrefix(v, "X")
		}
	}
	return false
}

// parseStatus parses /proc/PID/status; every field it needs must be there.
func parseStatus(s string) (statusInfo, error) {
	var st statusInfo
	seen := 0
	for line := range strings.Lines(s) {
		k, v, ok := strings.Cut(strings.TrimRight(line, "\n"), ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		var err error
		var n uint64
		switch k {
		case "Umask":
			n, err = strconv.ParseUint(v, 8, 32)
			st.Umask = uint32(n)
		case "TracerPid", "Threads":
			n, err = strconv.ParseUint(v, 10, 31)
			if k == "TracerPid" {
				st.TracerPid = int(n)
			} else {
				st.Threads = int(n)
			}
		case "SigPnd", "ShdPnd", "SigBlk", "SigIgn", "SigCgt":
			n, err = strconv.ParseUint(v, 16, 64)
			*st.sigField(k) = n
		default:
			continue
		}
		if err != nil {
			return statusInfo{}, fmt.Errorf("status: %s: %v", k, err)
		}
		seen++
	}
	if seen != 8 {
		return statusInfo{}, fmt.Errorf("status: %d of 8 needed fields", seen)
	}
	return st, nil
}

// parseFdinfo returns the pos and flags of /proc/PID/fdinfo/N.
func parseFdinfo(s string) (pos int64, flags uint32, err error) {
	seen := 0
	for line := range strings.Lines(s) {
		k, v, ok := strings.Cut(strings.TrimRight(line, "\n"), ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch k {
		case "pos":
			pos, err = strconv.ParseInt(v, 10, 64)
			seen++
		case "flags":
			var n uint64
			n, err = strconv.ParseUint(v, 8, 32)
			flags = uint32(n)
			seen++
		}
		if err != nil {
			return 0, 0, fmt.Errorf("fdinfo: %s: %v", k, err)
		}
	}
	if seen != 2 {
		return 0, 0, fmt.Errorf("fdinfo: pos or flags missing")
	}
	return pos, flags, nil
}

// parseCreds reads the Uid, Gid and Groups lines of /proc/PID/status.
func parseCreds(s string) (*Creds, error) {
	c := &Creds{}
	seen := 0
	for line := range strings.Lines(s) {
		k, v, ok := strings.Cut(strings.TrimRight(line, "\n"), ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		var dst []uint32
		switch k {
		case "Uid", "Gid":
			if len(f) < 3 {
				return nil, fmt.Errorf("status: %s: %q", k, v)
			}
			f = f[:3]
			dst = c.Uid[:]
			if k == "Gid" {
				dst = c.Gid[:]
			}
		case "Groups":
		default:
			continue
		}
		seen++
		for i, w := range f {
			n, err := strconv.ParseUint(w, 10, 32)
			if err != nil {
				return nil, fmt.Errorf("status: %s: %v", k, err)
			}
			if dst != nil {
				dst[i] = uint32(n)
			} else {
				c.Groups = append(c.Groups, uint32(n))
			}
		}
	}
	if seen != 3 {
		return nil, fmt.Errorf("status: %d of 3 credential lines", seen)
	}
	return c, nil
}
