package load

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"unsafe"

	"github.com/ssi-cluster/ssi/internal/procstat"
)

// procStat holds the fields of /proc/[pid]/stat (or
// /proc/[pid]/task/[tid]/stat) that the sampler uses. Times are in clock
// ticks (USER_HZ), startTime in ticks since boot.
type procStat struct {
	pid        int
	comm       string
	state      byte
	ppid       int
	utime      uint64 // field 14: user time of the process (all its threads, live and dead)
	stime      uint64 // field 15: system time
	cutime     uint64 // field 16: user time of waited-for children (recursively)
	cstime     uint64 // field 17: system time of waited-for children
	numThreads int    // field 20
	startTime  uint64 // field 22: identifies the process across pid reuse
}

// parseStat parses the contents of a /proc/[pid]/stat file (fields up
// to starttime, 22).
func parseStat(b []byte) (procStat, error) {
	var st procStat
	s, err := procstat.Parse(b)
	if err == nil {
		err = s.Need(22)
	}
	if err != nil {
		return st, err
	}
	st.pid, st.comm = s.Pid, string(s.Comm)
	if st.state = s.State(); st.state == 0 {
		return st, fmt.Errorf("stat: bad state %q", s.Field(3))
	}
	ppid, err := s.Uint(4)
	if err != nil {
		return st, fmt.Errorf("stat: bad ppid %q", s.Field(4))
	}
	st.ppid = int(ppid)
	for _, u := range []struct {
		dst  *uint64
		k    int
		name string
	}{
		{&st.utime, 14, "utime"},
		{&st.stime, 15, "stime"},
		{&st.cutime, 16, "cutime"},
		{&st.cstime, 17, "cstime"},
		{&st.startTime, 22, "starttime"},
	} {
		if *u.dst, err = s.Uint(u.k); err != nil {
			return st, fmt.Errorf("stat: bad %s %q", u.name, s.Field(u.k))
		}
	}
	threads, err := s.Uint(20)
	if err != nil {
		return st, fmt.Errorf("stat: bad num_threads %q", s.Field(20))
	}
	st.numThreads = int(threads)
	return st, nil
}

// meminfo holds the /proc/meminfo figures the sampler uses, in bytes.
type meminfo struct {
	total     uint64 // MemTotal
	available uint64 // MemAvailable, or an estimate on kernels before 3.14
}

// parseMeminfo parses the contents of /proc/meminfo. MemTotal is required.
// MemAvailable is used when present; otherwise (kernels older than 3.14)
// it is estimated as MemFree+Buffers+Cached. The result never has
// available > total.
func parseMeminfo(b []byte) (meminfo, error) {
	var m meminfo
	var haveTotal, haveAvail bool
	var free, buffers, cached uint64
	for len(b) > 0 {
		var line []byte
		line, b, _ = bytes.Cut(b, []byte{'\n'})
		key, rest, ok := bytes.Cut(line, []byte{':'})
		if !ok {
			continue
		}
		var dst *uint64
		switch string(key) {
		case "MemTotal":
			dst, haveTotal = &m.total, true
		case "MemAvailable":
			dst, haveAvail = &m.available, true
		case "MemFree":
			dst = &free
		case "Buffers":
			dst = &buffers
		case "Cached":
			dst = &cached
		default:
			continue
		}
		v, err := parseKB(rest)
		if err != nil {
			return meminfo{}, fmt.Errorf("meminfo: %s: %w", key, err)
		}
		*dst = v
	}
	if !haveTotal {
		return meminfo{}, errors.New("meminfo: no MemTotal")
	}
	if !haveAvail {
		m.available = satAdd(satAdd(free, buffers), cached)
	}
	m.available = min(m.available, m.total)
	return m, nil
}

// parseKB parses a meminfo value such as "   16307664 kB" into bytes.
func parseKB(b []byte) (uint64, error) {
	f := bytes.Fields(b)
	if len(f) == 0 || len(f) > 2 {
		return 0, fmt.Errorf("bad value %q", b)
	}
	mult := uint64(1)
	if len(f) == 2 {
		if string(f[1]) != "kB" {
			return 0, fmt.Errorf("unknown unit %q", f[1])
		}
		mult = 1024
	}
	v, err := strconv.ParseUint(string(f[0]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("bad value %q", f[0])
	}
	if v > math.MaxUint64/mult {
		return 0, fmt.Errorf("value %d kB overflows", v)
	}
	return v * mult, nil
}

// satAdd adds without wrapping around.
func satAdd(a, b uint64) uint64 {
	if a+b < a {
		return math.MaxUint64
	}
	return a + b
}

// satSub subtracts, stopping at zero.
func satSub(a, b uint64) uint64 {
	if b > a {
		return 0
	}
	return a - b
}

// readFileInto reads the whole of a (small, procfs or cgroupfs) file into
// buf, growing it if needed, and returns the filled slice. procfs files
// report size 0, so os.ReadFile's size hint is useless and this saves an
// allocation per file in the hot loop of Sample.
func readFileInto(path string, buf []byte) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return buf[:0], err
	}
	defer f.Close()
	buf = buf[:0]
	for {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, max(512, cap(buf)))
		}
		n, err := f.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// clockTicks returns USER_HZ, the unit of the times in /proc/[pid]/stat,
// from the AT_CLKTCK entry of the auxiliary vector (there is no sysconf
// without cgo). It falls back to 100, the value on every mainstream Linux
// architecture.
func clockTicks() uint64 {
	const atClkTck = 17
	b, err := os.ReadFile("/proc/self/auxv")
	if err != nil {
		return 100
	}
	if hz := auxvLookup(b, atClkTck); hz > 0 {
		return hz
	}
	return 100
}

// auxvLookup returns the value of tag in a native-endian auxiliary vector,
// or 0 when absent.
func auxvLookup(b []byte, tag uint64) uint64 {
	word := int(unsafe.Sizeof(uintptr(0)))
	get := func(p []byte) uint64 {
		if word == 8 {
			return binary.NativeEndian.Uint64(p)
		}
		return uint64(binary.NativeEndian.Uint32(p))
	}
	for ; len(b) >= 2*word; b = b[2*word:] {
		if get(b) == tag {
			return get(b[word:])
		}
	}
	return 0
}
