package checkpoint

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// uffdSpec is a userfaultfd to make inside a stopped process: the API
// features to ask for, the registration mode and the ranges to register.
type uffdSpec struct {
	features uint64
	mode     uint64
	ranges   []Range
	// userOnly: handle faults from user mode only, from the start (else
	// only when the process may not have more: vm.unprivileged_userfaultfd=0).
	userOnly bool
}

// injectUffd makes the userfaultfd of spec inside the stopped process
// in.pid by injected calls (userfaultfd, UFFDIO_API, UFFDIO_REGISTER per
// range), takes it into our process (pidfd_getfd, close-on-exec) and
// closes it in the process, so that only we hold it. mem is the process's
// /proc/PID/mem and buf the address of 32 writable bytes in it, for the
// calls' arguments. It returns the descriptor and the ranges that could
// be registered (a range that cannot is left out, not an error). Runs on
// the tracer thread.
func injectUffd(in *injector, mem *os.File, buf uint64, spec uffdSpec) (int, []Range, error) {
	pid := in.pid
	flags := uint64(unix.O_CLOEXEC | unix.O_NONBLOCK)
	if spec.userOnly {
		flags |= uffdUserModeOnly
	}
	rfd, err := in.callOK(unix.SYS_USERFAULTFD, flags)
	if errors.Is(err, unix.EPERM) && !spec.userOnly {
		// vm.unprivileged_userfaultfd=0 and the process is not
		// privileged: user-mode-only faults are all WP_ASYNC needs.
		rfd, err = in.callOK(unix.SYS_USERFAULTFD, flags|uffdUserModeOnly)
	}
	if err != nil {
		return -1, nil, fmt.Errorf("userfaultfd in %d: %w", pid, err)
	}
	defer in.call(unix.SYS_CLOSE, rfd)
	le := binary.LittleEndian
	api := make([]byte, 24)
	le.PutUint64(api, uffdAPI)
	le.PutUint64(api[8:], spec.features)
	if _, err := mem.WriteAt(api, int64(buf)); err != nil {
		return -1, nil, err
	}
	if _, err := in.callOK(unix.SYS_IOCTL, rfd, uffdioAPI, buf); err != nil {
		return -1, nil, fmt.Errorf("UFFDIO_API (features %#x): %w", spec.features, err)
	}
	var registered []Range
	reg := make([]byte, uffdRegisterStructSize)
	for _, g := range spec.ranges {
		le.PutUint64(reg, g.Start)
		le.PutUint64(reg[8:], g.Size())
		le.PutUint64(reg[16:], spec.mode)
		le.PutUint64(reg[24:], 0)
		if _, err := mem.WriteAt(reg, int64(buf)); err != nil {
			return -1, nil, err
		}
		if _, err := in.callOK(unix.SYS_IOCTL, rfd, uffdioRegister, buf); err == nil {
			registered = append(registered, g)
		}
	}
	uffd, err := fdOf(pid, int(rfd)) // close-on-exec, as pidfd_getfd makes it
	if err != nil {
		return -1, nil, fmt.Errorf("pidfd_getfd %d/%d: %w", pid, rfd, err)
	}
	return uffd, registered, nil
}
