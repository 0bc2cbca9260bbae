// Package statedir holds the few file operations every part that keeps
// state on disk shares: atomic replacement of a file (write a temporary file,
// sync, rename, sync the directory: a crash or a full disk never leaves a
// half-written file) and a check that a state directory can be written,
// naming the cause (read-only file system, no space left) when it cannot.
package statedir

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// Check makes sure dir exists (creating it 0700) and that a file can be
// written and synced in it.
func Check(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("state directory %s: %w", dir, Cause(err))
	}
	if err := WriteFile(dir, ".probe", make([]byte, 64<<10), 0o600); err != nil {
		return fmt.Errorf("state directory %s is not writable: %w", dir, Cause(errors.Unwrap(err)))
	}
	os.Remove(filepath.Join(dir, ".probe"))
	return nil
}

// WriteFile replaces dir/name with data: it writes a temporary file in
// dir, syncs it, renames it over dir/name and syncs dir. On error the old
// file is untouched and the temporary file removed.
func WriteFile(dir, name string, data []byte, perm fs.FileMode) (err error) {
	path := filepath.Join(dir, name)
	defer func() {
		if err != nil {
			err = fmt.Errorf("write %s: %w", path, Cause(err))
		}
	}()
	tmp, err := os.CreateTemp(dir, "."+name+".tmp*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	// CreateTemp makes the file 0600, so a key is never readable by others.
	if err = tmp.Chmod(perm); err != nil {
		return err
	}
	if _, err = tmp.Write(data); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	return syncDir(dir)
}

// syncDir makes a rename in dir durable. File systems that cannot sync a
// directory are tolerated.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, errors.ErrUnsupported) {
		return err
	}
	return nil
}

// Cause strips the operation and (temporary) path from an
// *fs.PathError or *os.LinkError so that the message names the file once,
// while errors.Is still sees the cause (e.g. fs.ErrPermission).
func Cause(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		return le.Err
	}
	return err
}
