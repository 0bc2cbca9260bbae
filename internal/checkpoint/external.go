package checkpoint

import (
	"errors"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Options change what Check and Freeze accept.
type Options struct {
	// External lists descriptors that are held for the process from
	// outside and replaced at restore: in the cluster, the deputy's stdio
	// (fds 0, 1 and 2: pipes or a pty slave of the agent). Whatever they
	// are (pipe, socket, terminal, file) they are no refusal reason, and
	// the dump records them in Image.External (number, open flags,
	// whether a terminal, whether the controlling one), not their
	// objects: RestoreWith installs the files its caller gives in their
	// place. A listed descriptor that is not open is ignored.
	External []int
	// RunsOn says the process runs on after the dump (a checkpoint that
	// does not kill it): the file locks and leases it holds are then no
	// refusal reason. No image carries them: a copy restored from it
	// runs without them (the process itself keeps them).
	RunsOn bool
}

// apply drops from v what o makes no refusal reason.
func (o Options) apply(v *procView) {
	v.Fds = dropFds(v.Fds, o.External)
	if o.RunsOn {
		v.Locks = nil
	}
}

// CheckWith is Check with options: the descriptors in o.External are no
// refusal reason.
func CheckWith(pid int, o Options) error {
	v, err := readProcView(pid)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ESRCH) {
			err = errEnded // it ended while /proc was read
		}
		return &RefusalError{Pid: pid, Reasons: []Reason{{Gone, err.Error()}}}
	}
	o.apply(&v)
	rs := refusals(v)
	rs = append(rs, inotifyPending(pid, v.Inotify, inotifyDrain)...)
	if len(rs) > 0 {
		return &RefusalError{Pid: pid, Reasons: rs}
	}
	return nil
}

// dropFds returns fds without the descriptors in ext.
func dropFds(fds []fdView, ext []int) []fdView {
	return slices.DeleteFunc(fds, func(f fdView) bool { return slices.Contains(ext, f.Fd) })
}

// ttyDriver is one line of /proc/tty/drivers: a major number and a range
// of minors that are terminals.
type ttyDriver struct {
	Major, MinorLo, MinorHi uint32
}

// parseTTYDrivers parses /proc/tty/drivers ("name node major minors
// type", minors "N" or "N-M"); lines it cannot read are skipped.
func parseTTYDrivers(text string) []ttyDriver {
	var ds []ttyDriver
	for line := range strings.Lines(text) {
		f := strings.Fields(line)
		if len(f) < 4 {
			continue
		}
		major, err := strconv.ParseUint(f[2], 10, 32)
		if err != nil {
			continue
		}
		lo, hi, ok := strings.Cut(f[3], "-")
		if !ok {
			hi = lo
		}
		l, err1 := strconv.ParseUint(lo, 10, 32)
		h, err2 := strconv.ParseUint(hi, 10, 32)
		if err1 != nil || err2 != nil {
			continue
		}
		ds = append(ds, ttyDriver{uint32(major), uint32(l), uint32(h)})
	}
	return ds
}

// isTTY reports whether the character device rdev is a terminal.
func isTTY(rdev uint64, ds []ttyDriver) bool {
	major, minor := unix.Major(rdev), unix.Minor(rdev)
	return slices.ContainsFunc(ds, func(d ttyDriver) bool {
		return d.Major == major && d.MinorLo <= minor && minor <= d.MinorHi
	})
}

// externalFile describes the descriptor f, open with flags, of a process
// whose controlling terminal is ttyNr (/proc/PID/stat field 7, 0 for
// none).
func externalFile(f fdView, flags uint32, ttyNr uint64, ds []ttyDriver) ExternalFile {
	x := ExternalFile{Fd: f.Fd, Flags: flags, Target: f.Target}
	if f.Mode&fs.ModeCharDevice != 0 && isTTY(f.Rdev, ds) {
		x.TTY = true
		devTTY := unix.Major(f.Rdev) == 5 && unix.Minor(f.Rdev) == 0 // /dev/tty: the controlling terminal itself
		x.CtlTTY = ttyNr != 0 && (devTTY || unix.Major(f.Rdev) == unix.Major(ttyNr) && unix.Minor(f.Rdev) == unix.Minor(ttyNr))
	}
	return x
}

// readTTYDrivers reads /proc/tty/drivers; without it no device is taken
// for a terminal.
func readTTYDrivers() []ttyDriver {
	b, _ := os.ReadFile("/proc/tty/drivers")
	return parseTTYDrivers(string(b))
}
