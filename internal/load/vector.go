package load

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Vector is one node's load, gossiped every second.
type Vector struct {
	// RunQueue is the number of tasks (threads) in state R at the time of
	// the sample, among the counted processes, not counting the sampler's
	// own thread.
	RunQueue uint32
	// Load1, Load5 and Load15 are exponentially damped averages of
	// RunQueue over 1, 5 and 15 minutes, computed like the kernel's load
	// average but updated once per Sample with the actual elapsed time.
	Load1, Load5, Load15 float64
	// CPUUse is the fraction (0..1) of all Cores kept busy by the counted
	// processes over the interval since the previous sample.
	CPUUse float64
	// Cores is the number of CPUs available: runtime.NumCPU(), lowered to
	// the cgroup CPU quota (rounded up) when one is set. At least 1.
	Cores uint32
	// Speed is the relative speed of one core; 1000 is the reference
	// machine. See Calibrate.
	Speed uint32
	// MemTotal and MemFree are in bytes. MemFree is MemAvailable, and both
	// are lowered to a cgroup memory limit when one applies.
	MemTotal, MemFree uint64
	// Procs is the number of counted processes.
	Procs uint32
	// Stamp is when the vector was sampled, in Unix nanoseconds.
	Stamp int64
}

// Wire format of a Vector: 73 bytes, all integers and IEEE-754 float64
// bits little-endian.
//
//	offset size field
//	     0    1 version (vectorVersion = 1)
//	     1    4 RunQueue  uint32
//	     5    8 Load1     float64
//	    13    8 Load5     float64
//	    21    8 Load15    float64
//	    29    8 CPUUse    float64
//	    37    4 Cores     uint32
//	    41    4 Speed     uint32
//	    45    8 MemTotal  uint64
//	    53    8 MemFree   uint64
//	    61    4 Procs     uint32
//	    65    8 Stamp     int64
const (
	vectorVersion = 1
	vectorSize    = 73
)

// MarshalBinary encodes v in the fixed layout documented above. It fails,
// with the same errors as UnmarshalBinary, for a vector that a peer would
// reject.
func (v Vector) MarshalBinary() ([]byte, error) {
	if err := v.validate(); err != nil {
		return nil, err
	}
	b := make([]byte, 0, vectorSize)
	b = append(b, vectorVersion)
	b = binary.LittleEndian.AppendUint32(b, v.RunQueue)
	for _, f := range [...]float64{v.Load1, v.Load5, v.Load15, v.CPUUse} {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(f))
	}
	b = binary.LittleEndian.AppendUint32(b, v.Cores)
	b = binary.LittleEndian.AppendUint32(b, v.Speed)
	b = binary.LittleEndian.AppendUint64(b, v.MemTotal)
	b = binary.LittleEndian.AppendUint64(b, v.MemFree)
	b = binary.LittleEndian.AppendUint32(b, v.Procs)
	b = binary.LittleEndian.AppendUint64(b, uint64(v.Stamp))
	return b, nil
}

// UnmarshalBinary decodes b, written by MarshalBinary, into v. It rejects
// a wrong length, an unknown version and any field out of range; v is left
// unchanged on error.
func (v *Vector) UnmarshalBinary(b []byte) error {
	if len(b) != vectorSize {
		return fmt.Errorf("load vector: length %d, want %d", len(b), vectorSize)
	}
	if b[0] != vectorVersion {
		return fmt.Errorf("load vector: unknown version %d", b[0])
	}
	le := binary.LittleEndian
	f64 := func(off int) float64 { return math.Float64frombits(le.Uint64(b[off:])) }
	d := Vector{
		RunQueue: le.Uint32(b[1:]),
		Load1:    f64(5),
		Load5:    f64(13),
		Load15:   f64(21),
		CPUUse:   f64(29),
		Cores:    le.Uint32(b[37:]),
		Speed:    le.Uint32(b[41:]),
		MemTotal: le.Uint64(b[45:]),
		MemFree:  le.Uint64(b[53:]),
		Procs:    le.Uint32(b[61:]),
		Stamp:    int64(le.Uint64(b[65:])),
	}
	if err := d.validate(); err != nil {
		return err
	}
	*v = d
	return nil
}

// validate reports the first field of v that is out of range.
func (v Vector) validate() error {
	for _, f := range [...]struct {
		name string
		x    float64
	}{{"load1", v.Load1}, {"load5", v.Load5}, {"load15", v.Load15}, {"cpu use", v.CPUUse}} {
		if math.IsNaN(f.x) || math.IsInf(f.x, 0) || f.x < 0 {
			return fmt.Errorf("load vector: %s %v is not a finite non-negative number", f.name, f.x)
		}
	}
	if v.CPUUse > 1 {
		return fmt.Errorf("load vector: cpu use %v out of range [0,1]", v.CPUUse)
	}
	if v.Cores == 0 {
		return fmt.Errorf("load vector: cores 0, want at least 1")
	}
	if v.Speed == 0 {
		return fmt.Errorf("load vector: speed 0, want at least 1")
	}
	if v.MemFree > v.MemTotal {
		return fmt.Errorf("load vector: mem free %d exceeds mem total %d", v.MemFree, v.MemTotal)
	}
	return nil
}
