package checkpoint

import (
	"os"

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
		return err
	}
	return nil
}
