package checkpoint

import (
	"fmt"
	"math"
	"os"

	"golang.org/x/sys/unix"
)

// stubExternal is what the stub is started with for the image's external
// descriptors: the replacement files sit at their numbers from the exec
// on, and prepare keeps them open.
type stubExternal struct {
	files []uintptr    // syscall.ProcAttr.Files: a replacement at each external number, -1 elsewhere
	keep  []int        // the external numbers, ascending
	tty   map[int]bool // the replacements that are terminals
}

// prepareExternal checks that files has, for every external descriptor, a
// file open for what the process did with it, and lays them out for the
// stub. The raw descriptors stay valid while files is alive.
func prepareExternal(ext []ExternalFile, files map[int]*os.File) (*stubExternal, error) {
	x := &stubExternal{files: []uintptr{}, tty: map[int]bool{}}
	for _, e := range ext {
		f := files[e.Fd]
		if f == nil {
			return nil, fmt.Errorf("checkpoint: external fd %d (%s) has no file to install (RestoreOptions.Files)", e.Fd, e.Target)
		}
		fd, err := rawFd(f)
		if err != nil {
			return nil, fmt.Errorf("checkpoint: external fd %d: %w", e.Fd, err)
		}
		fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
		if err != nil {
			return nil, fmt.Errorf("checkpoint: external fd %d: %s: %w", e.Fd, f.Name(), err)
		}
		if !accessCovers(uint32(fl), e.Flags) {
			return nil, fmt.Errorf("checkpoint: external fd %d (%s) was open %s, but %s is open %s",
				e.Fd, e.Target, accessName(e.Flags), f.Name(), accessName(uint32(fl)))
		}
		if _, err := unix.IoctlGetTermios(fd, unix.TCGETS); err == nil {
			x.tty[e.Fd] = true
		}
		for len(x.files) <= e.Fd {
			x.files = append(x.files, ^uintptr(0))
		}
		x.files[e.Fd] = uintptr(fd)
		x.keep = append(x.keep, e.Fd)
	}
	return x, nil
}

// rawFd returns f's descriptor without putting it in blocking mode, as
// f.Fd would.
func rawFd(f *os.File) (int, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	err = rc.Control(func(u uintptr) { fd = int(u) })
	return fd, err
}

// accessCovers reports whether a file open with flags have allows what
// one open with flags need did.
func accessCovers(have, need uint32) bool {
	h, n := have&unix.O_ACCMODE, need&unix.O_ACCMODE
	return h == n || h == unix.O_RDWR
}

func accessName(flags uint32) string {
	switch flags & unix.O_ACCMODE {
	case unix.O_RDONLY:
		return "O_RDONLY"
	case unix.O_WRONLY:
		return "O_WRONLY"
	case unix.O_RDWR:
		return "O_RDWR"
	}
	return fmt.Sprintf("access mode %d", flags&unix.O_ACCMODE)
}

// closeRanges returns the ranges [lo, hi] of descriptors to close so that
// only keep (ascending) stays open.
func closeRanges(keep []int) [][2]uint64 {
	var rs [][2]uint64
	lo := uint64(0)
	for _, fd := range keep {
		if uint64(fd) > lo {
			rs = append(rs, [2]uint64{lo, uint64(fd) - 1})
		}
		lo = uint64(fd) + 1
	}
	return append(rs, [2]uint64{lo, math.MaxUint32})
}

// setflFlags are the status flags F_SETFL can change.
const setflFlags = unix.O_APPEND | unix.O_ASYNC | unix.O_DIRECT | unix.O_NOATIME | unix.O_NONBLOCK

// external gives the installed external descriptors the image's status
// flags and close-on-exec flag; if one was the controlling terminal and
// its replacement is a terminal, the process becomes the leader of a new
// session (setsid) with that terminal as its controlling one (TIOCSCTTY);
// otherwise, with newGroup, the leader of a new process group.
func (r *restorer) external(ext []ExternalFile, tty map[int]bool, newGroup bool) error {
	in := r.in
	ctty := -1
	for _, x := range ext {
		fd := uint64(x.Fd)
		if _, err := in.callOK(unix.SYS_FCNTL, fd, unix.F_SETFL, uint64(x.Flags&setflFlags)); err != nil {
			return fmt.Errorf("checkpoint: external fd %d: F_SETFL: %w", x.Fd, err)
		}
		if x.Flags&unix.O_CLOEXEC != 0 {
			if _, err := in.callOK(unix.SYS_FCNTL, fd, unix.F_SETFD, unix.FD_CLOEXEC); err != nil {
				return fmt.Errorf("checkpoint: external fd %d: F_SETFD: %w", x.Fd, err)
			}
		}
		if x.CtlTTY && tty[x.Fd] && ctty < 0 {
			ctty = x.Fd
		}
	}
	if ctty < 0 {
		if newGroup {
			if _, err := in.callOK(unix.SYS_SETPGID, 0, 0); err != nil {
				return fmt.Errorf("checkpoint: setpgid: %w", err)
			}
		}
		return nil
	}
	if _, err := in.callOK(unix.SYS_SETSID); err != nil {
		return fmt.Errorf("checkpoint: setsid for the terminal on fd %d: %w", ctty, err)
	}
	if _, err := in.callOK(unix.SYS_IOCTL, uint64(ctty), unix.TIOCSCTTY, 0); err != nil {
		return fmt.Errorf("checkpoint: fd %d as the controlling terminal (TIOCSCTTY): %w", ctty, err)
	}
	return nil
}
