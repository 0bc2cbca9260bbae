package checkpoint

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// readMemory fills buf with the tracee's memory at addr. Readable ranges
// go through process_vm_readv; what it cannot read (PROT_NONE, or a short
// read for any reason) is read from /proc/PID/mem, which can.
func readMemory(pid int, mem *os.File, buf []byte, addr uint64, readable bool) error {
	done := 0
	if readable {
		for done < len(buf) {
			local := []unix.Iovec{{Base: &buf[done], Len: uint64(len(buf) - done)}}
			remote := []unix.RemoteIovec{{Base: uintptr(addr) + uintptr(done), Len: len(buf) - done}}
			n, err := unix.ProcessVMReadv(pid, local, remote, 0)
			if err != nil || n <= 0 {
				break
			}
			done += n
		}
	}
	if done < len(buf) {
		_, err := mem.ReadAt(buf[done:], int64(addr)+int64(done))
		if errors.Is(err, unix.EIO) {
			return readPages(pid, mem, buf[done:], addr+uint64(done))
		}
		return err
	}
	return nil
}

// readPages reads buf a page at a time, leaving as zeros the pages that
// read as EIO because they lie past the end of the file the mapping maps
// (a mapping longer than its file: touching them is SIGBUS, so they hold
// nothing). Any other unreadable page is an error.
func readPages(pid int, mem *os.File, buf []byte, addr uint64) error {
	for off := 0; off < len(buf); off += pageSize {
		end := min(off+pageSize, len(buf))
		_, err := mem.ReadAt(buf[off:end], int64(addr)+int64(off))
		if errors.Is(err, unix.EIO) && beyondEOF(pid, addr+uint64(off)) {
			clear(buf[off:end])
			continue
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// beyondEOF reports whether the page at addr of process pid lies in a file
// mapping past the end of its file.
func beyondEOF(pid int, addr uint64) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/maps")
	if err != nil {
		return false
	}
	maps, err := parseMaps(string(b))
	if err != nil {
		return false
	}
	for i := range maps {
		m := &maps[i]
		if addr < m.Start || addr >= m.End {
			continue
		}
		if m.Kind != KindFilePrivate && m.Kind != KindFileShared {
			return false
		}
		fi, err := os.Stat(fmt.Sprintf("/proc/%d/map_files/%x-%x", pid, m.Start, m.End))
		if err != nil {
			return false
		}
		size := (uint64(fi.Size()) + pageSize - 1) &^ (pageSize - 1)
		return m.Offset+(addr&^(pageSize-1)-m.Start) >= size
	}
	return false
}

// writeMemory writes b at addr of process pid through /proc/PID/mem
// (mem), skipping the pages of zeros past the end of a mapped file, which
// read back as EIO (readPages) and cannot be written either.
func writeMemory(pid int, mem *os.File, b []byte, addr uint64) error {
	_, err := mem.WriteAt(b, int64(addr))
	if !errors.Is(err, unix.EIO) {
		return err
	}
	var zero [pageSize]byte
	for off := 0; off < len(b); off += pageSize {
		end := min(off+pageSize, len(b))
		_, err := mem.WriteAt(b[off:end], int64(addr)+int64(off))
		if errors.Is(err, unix.EIO) && bytes.Equal(b[off:end], zero[:end-off]) && beyondEOF(pid, addr+uint64(off)) {
			continue
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// untouched reports whether private anonymous memory m has no page in
// memory or swap (PAGEMAP_SCAN on pagemap): never written, it reads as
// zeros, and a restore that maps it anew has the same. Go reserves
// gigabytes of address space this way (PROT_NONE arenas). False when it
// cannot tell.
func untouched(pagemap *os.File, m *Mapping) bool {
	switch m.Kind {
	case KindAnon, KindHeap, KindStack:
	default:
		return false
	}
	if pagemap == nil {
		return false
	}
	arg := pmScanArg{Start: m.Start, End: m.End, MaxPages: 1,
		CategoryAnyofMask: pageIsPresent | pageIsSwapped, ReturnMask: pageIsPresent | pageIsSwapped}
	var vec [1]pageRegion
	n, end, err := pagemapScanOnce(int(pagemap.Fd()), &arg, vec[:])
	return err == nil && n == 0 && end == m.End // walked it all, found none
}
