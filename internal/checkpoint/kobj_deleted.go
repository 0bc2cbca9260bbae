package checkpoint

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// A regular file that was unlinked while open (python's
// tempfile.TemporaryFile, an O_TMPFILE file, a log deleted under its
// writer) has no path to reopen: its contents go into the image, up to
// maxDeletedBytes for all such files of a process, and a restore gives
// the process a new unlinked file with them, at the same descriptor
// number with the same flags and offset, made in the directory the old
// one was in (or the temporary directory if that is gone), owned as it
// was, with its permission bits but never set-user-ID or set-group-ID
// (an O_TMPFILE file can be linked into a directory later). The new file is the process's alone: a deleted file
// another process also had open is copied, and the two no longer share
// it. A memfd (which has seals and is meant to be shared) and a deleted
// file that still has a name elsewhere (another hard link) are refused.

// maxDeletedBytes bounds the contents of deleted files an image carries
// (they travel in its metadata, which is at most 16 MiB).
const maxDeletedBytes = 8 << 20

// deletedRefusal says why the deleted file open at f is not carried, or
// "" if it is.
func deletedRefusal(f fdView) string {
	switch {
	case strings.HasPrefix(f.Target, "/memfd:"):
		return "a memfd is not carried"
	case !f.Mode.IsRegular():
		return "not a regular file"
	case f.Nlink > 0:
		return "the file still has another name (a hard link): it is shared, not carried"
	}
	return ""
}

// readDeleted reads the deleted file at fd of the process dir into an
// object (its contents through /proc/PID/fd, not moving its offset).
func readDeleted(dir string, fd int, target string, flags uint32, pos int64) (KObject, error) {
	name := dir + "/fd/" + strconv.Itoa(fd)
	o := KObject{Fd: fd, Kind: ObjDeleted, Flags: flags, Offset: pos, Path: strings.TrimSuffix(target, " (deleted)")}
	fi, err := os.Stat(name)
	if err != nil {
		return o, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || !fi.Mode().IsRegular() || fi.Size() > maxDeletedBytes {
		return o, fmt.Errorf("fd %d: %s: not a regular file of at most %d bytes", fd, target, maxDeletedBytes)
	}
	o.Mode, o.Uid, o.Gid = uint32(fi.Mode().Perm()), st.Uid, st.Gid
	if o.Data, err = os.ReadFile(name); err != nil {
		return o, fmt.Errorf("fd %d: read %s: %w", fd, target, err)
	}
	return o, nil
}

// makeDeleted makes the file a restore gives for o: unlinked, with o's
// contents, mode and owner; the caller closes it.
func makeDeleted(o *KObject) (*os.File, error) {
	dir := filepath.Dir(o.Path)
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		dir = os.TempDir()
	}
	var f *os.File
	fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC, o.Mode&0o777) // never set-id
	if err == nil {
		f = os.NewFile(uintptr(fd), o.Path)
	} else {
		// No O_TMPFILE on this filesystem: a file made and unlinked.
		if f, err = os.CreateTemp(dir, ".ssi-deleted-"); err != nil {
			return nil, err
		}
		if err := os.Remove(f.Name()); err != nil && !errors.Is(err, fs.ErrNotExist) {
			f.Close()
			return nil, err
		}
		if err := f.Chmod(fs.FileMode(o.Mode & 0o777)); err != nil {
			f.Close()
			return nil, err
		}
	}
	if _, err := f.Write(o.Data); err == nil {
		err = f.Chown(int(o.Uid), int(o.Gid))
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("copy of deleted file %s: %w", o.Path, err)
	}
	return f, nil
}
