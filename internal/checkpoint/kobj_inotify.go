package checkpoint

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// An inotify watch is kept by the kernel on an inode, not a path. The dump
// finds the path of each by the file handle fdinfo shows
// (open_by_handle_at, which needs CAP_DAC_READ_SEARCH, on a mount of the
// watched file's filesystem), and the restore adds the watches again by
// path, in order of their numbers, checking that each gets its number and
// the same file.

// inotifyPaths sets the Path of every watch of o, and checks that the
// path leads to the watched file now.
func inotifyPaths(o *KObject) error {
	for i := range o.Inotify {
		w := &o.Inotify[i]
		p, err := handlePath(w)
		if err != nil {
			return fmt.Errorf("fd %d: inotify watch %d: %w", o.Fd, w.WD, err)
		}
		var st unix.Stat_t
		if err := unix.Stat(p, &st); err != nil {
			return fmt.Errorf("fd %d: inotify watch %d: %s: %w", o.Fd, w.WD, p, err)
		}
		if st.Ino != w.Ino || st.Dev != w.Dev {
			return fmt.Errorf("fd %d: inotify watch %d: %s is no longer the watched file", o.Fd, w.WD, p)
		}
		w.Path = p
	}
	return nil
}

// handlePath opens w's file by its handle and returns its path.
func handlePath(w *InotifyWatch) (string, error) {
	mnt, err := mountOf(w.Dev)
	if err != nil {
		return "", err
	}
	mfd, err := unix.Open(mnt, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", fmt.Errorf("open the mount %s: %w", mnt, err)
	}
	defer unix.Close(mfd)
	fd, err := unix.OpenByHandleAt(mfd, unix.NewFileHandle(w.htype, w.handle), unix.O_PATH|unix.O_CLOEXEC)
	if err != nil {
		return "", fmt.Errorf("open by handle: %w", err)
	}
	defer unix.Close(fd)
	p, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
	if err != nil {
		return "", err
	}
	if strings.HasSuffix(p, " (deleted)") || !strings.HasPrefix(p, "/") {
		return "", fmt.Errorf("the watched file has no path (%s)", p)
	}
	return p, nil
}

// mountOf returns a mount point of the filesystem on dev, one that mounts
// its root if there is one.
func mountOf(dev uint64) (string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	defer f.Close()
	want := fmt.Sprintf("%d:%d", unix.Major(dev), unix.Minor(dev))
	found := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 5 || fs[2] != want {
			continue
		}
		if fs[3] == "/" {
			return unescapeMount(fs[4]), nil
		}
		if found == "" {
			found = unescapeMount(fs[4])
		}
	}
	if found == "" {
		return "", fmt.Errorf("no mount of device %s", want)
	}
	return found, nil
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space...).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// unreadBytes returns how many bytes of events wait in the inotify
// instance at fd of pid (FIONREAD on a copy of the descriptor).
func unreadBytes(pid, fd int) (int, error) {
	c, err := fdOf(pid, fd)
	if err != nil {
		return 0, err
	}
	defer unix.Close(c)
	return unix.IoctlGetInt(c, unix.TIOCINQ) // FIONREAD
}

// inotifyRefusals says why the inotify instances ins could not move: a
// watch whose file has no path that leads to it.
func inotifyRefusals(ins []KObject) []Reason {
	var rs []Reason
	for i := range ins {
		if err := inotifyPaths(&ins[i]); err != nil {
			rs = append(rs, Reason{Unsupported, err.Error()})
		}
	}
	return rs
}

// inotifyDrain is how long a check waits for a program to read the
// events its inotify instances hold.
const inotifyDrain = 500 * time.Millisecond

// inotifyPending refuses an inotify instance of pid that still holds
// events after wait: a restore starts with an empty queue, and an event
// cannot be put back into one. A program that reads its events (tail -f
// reads each at once) has none left by the time it is checked; the
// events that come between the check and the dump, during the freeze,
// are not carried (docs/migration.md).
func inotifyPending(pid int, ins []KObject, wait time.Duration) []Reason {
	var rs []Reason
	deadline := time.Now().Add(wait)
	for _, o := range ins {
		for {
			n, err := unreadBytes(pid, o.Fd)
			switch {
			case errors.Is(err, unix.ESRCH) || errors.Is(err, unix.EBADF):
			case err != nil:
				rs = append(rs, Reason{Unsupported, fmt.Sprintf("fd %d: inotify: %v", o.Fd, err)})
			case n > 0 && time.Now().Before(deadline):
				time.Sleep(5 * time.Millisecond)
				continue
			case n > 0:
				rs = append(rs, Reason{Unsupported, fmt.Sprintf("fd %d: inotify has %d bytes of events not yet read (a restore starts with none: the program does not read them)", o.Fd, n)})
			}
			break
		}
	}
	return rs
}
