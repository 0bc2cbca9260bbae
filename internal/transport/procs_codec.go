package transport

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/ssi-cluster/ssi/internal/api"
)

// ProcsResponse travels in a compact binary form (a node's whole table is
// thousands of entries: as JSON, decoding it was a quarter of the asking
// agent's work). Layout, little-endian: magic "SSIP", count u32, then per
// process: cpid i64, node u32, pid u32, ppid u32, pgid u32, pcpid i64,
// uid u32, state, user, command (u32 length + bytes each), cpu f64, rss
// u64, time f64, threads u32.

var procsMagic = [4]byte{'S', 'S', 'I', 'P'}

// maxProcs bounds the count a reply may claim (pid_max is at most 2^22).
const maxProcs = 1 << 22

// MarshalBinary encodes r.
func (r *ProcsResponse) MarshalBinary() ([]byte, error) {
	b := make([]byte, 0, 8+len(r.Procs)*96)
	b = append(b, procsMagic[:]...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(r.Procs)))
	for _, p := range r.Procs {
		b = binary.LittleEndian.AppendUint64(b, uint64(p.CPID))
		for _, v := range []int{p.Node, p.Pid, p.PPid, p.PGid} {
			b = binary.LittleEndian.AppendUint32(b, uint32(v))
		}
		b = binary.LittleEndian.AppendUint64(b, uint64(p.PCPID))
		b = binary.LittleEndian.AppendUint32(b, uint32(p.UID))
		for _, s := range []string{p.State, p.User, p.Command} {
			b = binary.LittleEndian.AppendUint32(b, uint32(len(s)))
			b = append(b, s...)
		}
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(p.CPU))
		b = binary.LittleEndian.AppendUint64(b, p.RSS)
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(p.Time))
		b = binary.LittleEndian.AppendUint32(b, uint32(p.Threads))
	}
	return b, nil
}

// UnmarshalBinary decodes what MarshalBinary made, checking every length.
func (r *ProcsResponse) UnmarshalBinary(b []byte) error {
	d := procDec{b: b}
	if len(b) < 8 || [4]byte(b[:4]) != procsMagic {
		return errors.New("process table: not a binary table")
	}
	d.b = b[4:]
	n := d.u32()
	// The smallest entry is 72 bytes: n cannot exceed what is there.
	if n > maxProcs || uint64(n)*72 > uint64(len(d.b)) {
		return fmt.Errorf("process table: %d entries claimed in %d bytes", n, len(b))
	}
	r.Procs = make([]api.Proc, n)
	for i := range r.Procs {
		p := &r.Procs[i]
		p.CPID = int64(d.u64())
		p.Node, p.Pid, p.PPid, p.PGid = int(d.u32()), int(d.u32()), int(d.u32()), int(d.u32())
		p.PCPID = int64(d.u64())
		p.UID = int(d.u32())
		p.State, p.User, p.Command = d.str(), d.str(), d.str()
		p.CPU = math.Float64frombits(d.u64())
		p.RSS = d.u64()
		p.Time = math.Float64frombits(d.u64())
		p.Threads = int(d.u32())
		if d.err != nil {
			return fmt.Errorf("process table: entry %d: %w", i, d.err)
		}
	}
	if len(d.b) != 0 {
		return fmt.Errorf("process table: %d bytes after the last entry", len(d.b))
	}
	return nil
}

// procDec reads fields; the first short read sets err and zeroes the rest.
type procDec struct {
	b   []byte
	err error
}

func (d *procDec) take(n uint64) []byte {
	if d.err != nil || n > uint64(len(d.b)) {
		if d.err == nil {
			d.err = errors.New("truncated")
		}
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *procDec) u32() uint32 {
	if v := d.take(4); v != nil {
		return binary.LittleEndian.Uint32(v)
	}
	return 0
}

func (d *procDec) u64() uint64 {
	if v := d.take(8); v != nil {
		return binary.LittleEndian.Uint64(v)
	}
	return 0
}

func (d *procDec) str() string {
	n := d.u32()
	if n > 1<<20 {
		d.err = fmt.Errorf("a string of %d bytes", n)
		return ""
	}
	return string(d.take(uint64(n)))
}
