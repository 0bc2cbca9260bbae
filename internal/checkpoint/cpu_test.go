package checkpoint

import (
	"encoding/binary"
	"errors"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestCheckCPU(t *testing.T) {
	avx512 := CPU{XFeatures: 0x2e7, XStateSize: 2696,
		Flags: []string{"avx", "avx2", "avx512bw", "avx512f", "erms", "hypervisor", "sse", "sse2"}}
	avx2 := CPU{XFeatures: 0x207, XStateSize: 1088, Flags: []string{"avx", "avx2", "erms", "sse", "sse2"}}
	with := func(c CPU, f func(c *CPU)) CPU {
		c.Flags = append([]string(nil), c.Flags...)
		f(&c)
		return c
	}
	tests := []struct {
		name      string
		src, here CPU
		want      []string // what the error must name; nil: no error
	}{
		{"same", avx512, avx512, nil},
		{"more here", avx2, with(avx2, func(c *CPU) { c.Flags = append(c.Flags, "avx512f") }), nil},
		{"perf and vm flags do not matter", avx512, with(avx512, func(c *CPU) { c.Flags = c.Flags[2:] }),
			[]string{"avx", "avx2"}},
		{"hint only", with(avx2, func(c *CPU) { c.Flags = append(c.Flags, "fsrm", "hypervisor") }), avx2, nil},
		{"no avx-512 here", avx512, avx2, []string{"avx512bw avx512f", "AVX-512 opmask, AVX-512 ZMM_Hi256, AVX-512 Hi16_ZMM",
			"image XCR0 0x2e7, here 0x207", "2696 bytes in the image, 1088 here"}},
		{"xstate size only", avx2, with(avx2, func(c *CPU) { c.XStateSize = 2440 }), []string{"xstate layout differs: 1088 bytes in the image, 2440 here"}},
		{"xfeatures only", with(avx2, func(c *CPU) { c.XFeatures |= 1 << 3 }), avx2, []string{"XSAVE features missing here: MPX bounds"}},
		{"old image, no flags", CPU{XFeatures: 0x2e7, XStateSize: 2696}, avx512, nil},
		{"amx", with(avx512, func(c *CPU) { c.Flags = append(c.Flags, "amx_tile"); c.XFeatures |= 3 << 17 }), avx512,
			[]string{"amx_tile", "AMX TILECFG, AMX TILEDATA"}},
	}
	for _, tt := range tests {
		err := checkCPU(tt.src, tt.here)
		if tt.want == nil {
			if err != nil {
				t.Errorf("%s: %v", tt.name, err)
			}
			continue
		}
		if !errors.Is(err, ErrCPUMismatch) {
			t.Errorf("%s: %v, want ErrCPUMismatch", tt.name, err)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %q does not say %q", tt.name, err, w)
			}
		}
	}
}

func TestCPUFromXState(t *testing.T) {
	xs := make([]byte, 2696)
	binary.LittleEndian.PutUint64(xs[xsaveSWOffset:], 0x2e7)
	if got := cpuFromXState(xs); !reflect.DeepEqual(got, CPU{XFeatures: 0x2e7, XStateSize: 2696}) {
		t.Errorf("got %+v", got)
	}
	if got := cpuFromXState(nil); !reflect.DeepEqual(got, CPU{}) {
		t.Errorf("empty: %+v", got)
	}
	flags := cpuFlags("processor\t: 0\nflags\t\t: sse2 fpu avx sse2\n\nprocessor\t: 1\nflags\t\t: fpu\n")
	if !reflect.DeepEqual(flags, []string{"avx", "fpu", "sse2"}) {
		t.Errorf("flags %q", flags)
	}
}

// TestRestoreRefusesOtherCPU dumps a process, gives its image a CPU flag
// and an XSAVE feature this machine lacks, and checks that Restore
// refuses it, naming both, and leaves nothing behind.
func TestRestoreRefusesOtherCPU(t *testing.T) {
	needTracing(t)
	stub := buildC(t, "stub")
	cmd, _ := start(t, buildC(t, "counter"), filepath.Join(t.TempDir(), "out"))
	img := dumpResume(t, cmd.Process.Pid)
	if img.CPU.XFeatures&3 != 3 || int(img.CPU.XStateSize) != len(img.XState) || !slices.Contains(img.CPU.Flags, "sse2") {
		t.Fatalf("dumped CPU %#x %d %d flags, want x87, SSE and sse2", img.CPU.XFeatures, img.CPU.XStateSize, len(img.CPU.Flags))
	}
	var lack string
	for f := range userFlags {
		if !slices.Contains(img.CPU.Flags, f) {
			lack = f
			break
		}
	}
	if lack == "" {
		t.Skip("this CPU has every flag")
	}
	img.CPU.Flags = append(img.CPU.Flags, lack)
	img.CPU.XFeatures |= 1 << 3 // MPX bounds: gone from kernels since 5.6
	np, err := Restore(img, stub)
	if !errors.Is(err, ErrCPUMismatch) || !strings.Contains(err.Error(), lack) || !strings.Contains(err.Error(), "MPX bounds") {
		t.Fatalf("Restore = %v, %v; want ErrCPUMismatch naming %s and MPX bounds", np, err, lack)
	}
	t.Log(err)
	noChildLeft(t, cmd.Process.Pid)
}
