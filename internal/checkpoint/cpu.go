package checkpoint

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
)

// CPU is what a process may use of the CPU it runs on: the XSAVE features
// the kernel enables for user space (XCR0), the size of the extended
// register state in the standard format that ptrace exchanges, and the
// flags of /proc/cpuinfo. A process picks code paths from CPUID once
// (glibc's string functions, its lazy-binding trampoline, JIT compilers),
// so a CPU that lacks one of them may fault with SIGILL long after a
// restore; and PTRACE_SETREGSET takes only an xstate of this kernel's size.
type CPU struct {
	XFeatures  uint64   // XCR0 as the kernel reports it in the xstate regset
	XStateSize uint32   // bytes of the NT_X86_XSTATE regset
	Flags      []string // /proc/cpuinfo "flags" of the first processor, sorted
}

// ErrCPUMismatch is wrapped by Restore when this machine's CPU lacks a
// feature the image's process may use, or its extended register state has
// another layout. The message names what is missing.
var ErrCPUMismatch = errors.New("checkpoint: this CPU cannot run the image's process")

// xsaveSWOffset is where, in the legacy FXSAVE part of an xstate regset,
// the kernel puts its software-defined bytes; for ptrace the first 8 are
// XCR0 (arch/x86/include/asm/user.h, USER_XSTATE_XCR0_WORD).
const xsaveSWOffset = 464

// cpuFromXState returns the XSAVE features and size that an xstate regset
// shows (no flags).
func cpuFromXState(xs []byte) CPU {
	c := CPU{XStateSize: uint32(len(xs))}
	if len(xs) >= xsaveSWOffset+8 {
		c.XFeatures = binary.LittleEndian.Uint64(xs[xsaveSWOffset:])
	}
	return c
}

// cpuFlags returns the flags of the first processor in /proc/cpuinfo
// text, sorted.
func cpuFlags(cpuinfo string) []string {
	for line := range strings.Lines(cpuinfo) {
		k, v, ok := strings.Cut(line, ":")
		if ok && strings.TrimSpace(k) == "flags" {
			f := strings.Fields(v)
			slices.Sort(f)
			return slices.Compact(f)
		}
	}
	return nil
}

// thisCPU describes this machine's CPU from an xstate regset read here
// (any process's: the features and size are the kernel's) and
// /proc/cpuinfo.
func thisCPU(xs []byte) (CPU, error) {
	c := cpuFromXState(xs)
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return c, err
	}
	c.Flags = cpuFlags(string(b))
	return c, nil
}

// imageCPU is the CPU recorded in img; an image from before version 4
// has none, and gets what its xstate shows (no flags to compare).
func imageCPU(img *Image) CPU {
	if img.CPU.XStateSize != 0 {
		return img.CPU
	}
	return cpuFromXState(img.XState)
}

// userFlags are the /proc/cpuinfo flags that name instructions or
// registers a user-space program may have chosen to use. The other flags
// (performance hints such as erms or fsrm, kernel-only features, bugs,
// hypervisor details) are recorded but never refuse a restore.
var userFlags = map[string]bool{}

func init() {
	for _, f := range strings.Fields(`fpu cx8 cmov mmx fxsr sse sse2 pni pclmulqdq ssse3 fma cx16
		sse4_1 sse4_2 movbe popcnt aes xsave avx f16c rdrand lahf_lm abm sse4a 3dnowprefetch
		xop fma4 tbm mmxext 3dnowext 3dnow rdtscp lm syscall fsgsbase bmi1 hle avx2 bmi2 rtm mpx
		rdseed adx clflushopt clwb sha_ni avx512f avx512dq avx512ifma avx512pf avx512er
		avx512cd avx512bw avx512vl avx512vbmi pku ospke waitpkg avx512_vbmi2 gfni vaes
		vpclmulqdq avx512_vnni avx512_bitalg avx512_vpopcntdq rdpid movdiri movdir64b
		enqcmd cldemote avx512_4vnniw avx512_4fmaps avx512_vp2intersect serialize tsxldtrk
		amx_bf16 avx512_fp16 amx_tile amx_int8 avx_vnni avx512_bf16 cmpccxadd amx_fp16
		avx_ifma avx_vnni_int8 avx_ne_convert avx_vnni_int16 sha512 sm3 sm4 prefetchiti
		xsaveopt xsavec xgetbv1 clzero rdpru`) {
		userFlags[f] = true
	}
}

// xfeatureNames name the XCR0 bits.
var xfeatureNames = [...]string{"x87", "SSE", "AVX", "MPX bounds", "MPX CSR", "AVX-512 opmask",
	"AVX-512 ZMM_Hi256", "AVX-512 Hi16_ZMM", "PT", "PKRU", "PASID", "CET user", "CET supervisor",
	"HDC", "UINTR", "LBR", "HWP", "AMX TILECFG", "AMX TILEDATA", "APX"}

func xfeatureName(bit int) string {
	if bit < len(xfeatureNames) {
		return xfeatureNames[bit]
	}
	return fmt.Sprintf("bit %d", bit)
}

// checkCPU reports, wrapping ErrCPUMismatch, what a process dumped on
// src would miss on here: user-visible CPU flags, XSAVE features, or an
// xstate of another size (PTRACE_SETREGSET takes only this kernel's). A
// CPU with more is fine. Flags are compared only when both sides have
// them (images before version 4 have none).
func checkCPU(src, here CPU) error {
	var why []string
	if len(src.Flags) > 0 && len(here.Flags) > 0 {
		var lack []string
		for _, f := range src.Flags {
			if userFlags[f] && !slices.Contains(here.Flags, f) {
				lack = append(lack, f)
			}
		}
		if len(lack) > 0 {
			why = append(why, "CPU flags missing here: "+strings.Join(lack, " "))
		}
	}
	if miss := src.XFeatures &^ here.XFeatures; miss != 0 {
		var names []string
		for bit := range 64 {
			if miss&(1<<bit) != 0 {
				names = append(names, xfeatureName(bit))
			}
		}
		why = append(why, fmt.Sprintf("XSAVE features missing here: %s (image XCR0 %#x, here %#x)",
			strings.Join(names, ", "), src.XFeatures, here.XFeatures))
	}
	if src.XStateSize != here.XStateSize {
		why = append(why, fmt.Sprintf("xstate layout differs: %d bytes in the image, %d here", src.XStateSize, here.XStateSize))
	}
	if len(why) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrCPUMismatch, strings.Join(why, "; "))
}
