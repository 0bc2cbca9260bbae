package checkpoint

import (
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// PAGEMAP_SCAN and userfaultfd constants from the kernel UAPI
// (include/uapi/linux/fs.h and userfaultfd.h, Linux 6.7 and later); the
// installed headers may predate them.
const (
	pagemapScan = 0xc0606610 // _IOWR('f', 16, struct pm_scan_arg), 96 bytes

	pageIsWPAllowed = 1 << 0
	pageIsWritten   = 1 << 1
	pageIsFile      = 1 << 2
	pageIsPresent   = 1 << 3
	pageIsSwapped   = 1 << 4

	pmScanWPMatching   = 1 << 0
	pmScanCheckWPAsync = 1 << 1

	uffdAPI                   = 0xaa
	uffdioAPI                 = 0xc018aa3f // _IOWR(0xaa, 0x3f, struct uffdio_api), 24 bytes
	uffdioRegister            = 0xc020aa00 // _IOWR(0xaa, 0x00, struct uffdio_register), 32 bytes
	uffdioRegisterModeWP      = 1 << 1
	uffdioRegisterModeMissing = 1 << 0
	uffdioCopy                = 0xc028aa03 // _IOWR(0xaa, 0x03, struct uffdio_copy), 40 bytes
	uffdioCopyModeDontWake    = 1 << 0
	uffdFeatureWPUnpopul      = 1 << 13
	uffdFeatureWPAsync        = 1 << 15
	uffdUserModeOnly          = 1
	userTaskSize              = 1<<47 - pageSize // TASK_SIZE_MAX: access_ok refuses more
	pageRegionSize            = 24
	pmScanArgSize             = 96
	scanVecLen                = 4096
	pageSize                  = 4096
	uffdRegisterStructSize    = 32
)

// pmScanArg is struct pm_scan_arg.
type pmScanArg struct {
	Size, Flags, Start, End, WalkEnd, Vec, VecLen, MaxPages uint64
	CategoryInverted, CategoryMask, CategoryAnyofMask       uint64
	ReturnMask                                              uint64
}

// pageRegion is struct page_region.
type pageRegion struct{ Start, End, Categories uint64 }

var _ [pmScanArgSize]byte = [unsafe.Sizeof(pmScanArg{})]byte{}
var _ [pageRegionSize]byte = [unsafe.Sizeof(pageRegion{})]byte{}

// pagemapScanOnce runs one PAGEMAP_SCAN ioctl on fd (an open
// /proc/PID/pagemap) and returns the regions found and where the walk
// stopped.
func pagemapScanOnce(fd int, arg *pmScanArg, vec []pageRegion) (int, uint64, error) {
	arg.Size = pmScanArgSize
	arg.Vec = uint64(uintptr(unsafe.Pointer(&vec[0])))
	arg.VecLen = uint64(len(vec))
	n, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), pagemapScan, uintptr(unsafe.Pointer(arg)))
	runtime.KeepAlive(vec)
	if e != 0 {
		return 0, 0, e
	}
	return int(n), arg.WalkEnd, nil
}

// uffdioCopyArg is struct uffdio_copy.
type uffdioCopyArg struct {
	Dst, Src, Len, Mode uint64
	Copy                int64
}

// uffdCopy copies b to addr in the userfaultfd's process (UFFDIO_COPY)
// and returns the bytes copied, which may be fewer than len(b) with an
// error (EAGAIN: go on from there; EEXIST: the page at addr+n is there).
func uffdCopy(uffd int, addr uint64, b []byte) (int, error) {
	arg := uffdioCopyArg{Dst: addr, Src: uint64(uintptr(unsafe.Pointer(&b[0]))), Len: uint64(len(b)), Mode: uffdioCopyModeDontWake}
	_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(uffd), uffdioCopy, uintptr(unsafe.Pointer(&arg)))
	runtime.KeepAlive(b)
	n := 0
	if arg.Copy > 0 {
		n = int(arg.Copy)
	}
	if e != 0 {
		return n, e
	}
	return n, nil
}
