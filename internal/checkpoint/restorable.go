package checkpoint

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Restorable at dump time: a restore reopens by path the working
// directory, the executable, the files of the descriptors and the files
// mapped, and keeps no root directory of its own. A process for which one
// of these no longer leads to what it has (deleted, replaced by another
// file, in a /proc directory of a process that ended, out of reach) would
// be dumped into an image that cannot be restored: it is refused (reason
// Unrestorable) before anything is frozen, and so never killed by
// `checkpoint --kill` nor frozen by a migration.

// maxRestorePath is the longest path a restore can open: it is written,
// NUL-terminated, into the scratch page between scratchPath and
// scratchStruct.
const maxRestorePath = scratchStruct - scratchPath - 1

// fileID is a file's identity: its device (unix.Mkdev form) and inode.
type fileID struct{ Dev, Ino uint64 }

func idOf(fi fs.FileInfo) fileID {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return fileID{unix.Mkdev(unix.Major(st.Dev), unix.Minor(st.Dev)), st.Ino}
	}
	return fileID{}
}

// pathNow is what a path leads to now, in the checker's view (which is
// the restorer's: the agent restores by the same paths): its file, or why
// there is none.
type pathNow struct {
	ID  fileID
	Err string // "" if the path leads to a file
}

// restoreView is what the restorability decision looks at.
type restoreView struct {
	Cwd, Root, Exe       string // the /proc/PID links
	CwdID, RootID, ExeID fileID // what the links lead to (stat through them)
	OurRoot              fileID // the checker's root directory, "/"
	// Now holds, for every path the restore opens, what it leads to now.
	Now map[string]pathNow
	// MapIDs holds, for a file mapping (by start) whose /proc/PID/maps
	// device and inode are not the path's, the file its map_files link
	// leads to (an overlay or btrfs shows another device in maps).
	MapIDs map[uint64]fileID
}

// mapID is a mapping's file as /proc/PID/maps has it ("fe:00" and inode).
func mapID(m *Mapping) (fileID, bool) {
	ma, mi, ok := strings.Cut(m.Dev, ":")
	if !ok {
		return fileID{}, false
	}
	major, err1 := strconv.ParseUint(ma, 16, 32)
	minor, err2 := strconv.ParseUint(mi, 16, 32)
	if err1 != nil || err2 != nil {
		return fileID{}, false
	}
	return fileID{unix.Mkdev(uint32(major), uint32(minor)), m.Inode}, true
}

// procPid returns N if path is /proc/N or under it: a process of this
// node, which does not move.
func procPid(path string) (int, bool) {
	rest, ok := strings.CutPrefix(path, "/proc/")
	if !ok {
		return 0, false
	}
	n, _, _ := strings.Cut(rest, "/")
	n, _, _ = strings.Cut(n, " ")
	pid, err := strconv.Atoi(n)
	return pid, err == nil && pid > 0
}

// reopenable adds, for one path that restore opens (what: "its working
// directory", "fd 3", ...) whose file is want, the reason it would not
// be restored, if any. Paths that end in " (deleted)" are other reasons'
// (DeletedFile) except for the working directory and the executable.
func (r *restoreView) reopenable(add func(string, ...any), what, path string, want fileID, deletedToo bool) {
	if pid, ok := procPid(path); ok {
		if strings.HasSuffix(path, " (deleted)") {
			add("%s %s was deleted (process %d ended)", what, strings.TrimSuffix(path, " (deleted)"), pid)
		} else {
			add("%s %s is in the /proc directory of process %d, which stays on this node", what, path, pid)
		}
		return
	}
	if len(path) > maxRestorePath {
		add("%s %.60s... has a path of %d bytes, longer than a restore opens (%d)", what, path, len(path), maxRestorePath)
		return
	}
	now, ok := r.Now[path]
	switch {
	case ok && now.Err == "" && now.ID == want:
		return // the same file (a name that really ends in " (deleted)" too)
	case strings.HasSuffix(path, " (deleted)"):
		if deletedToo {
			add("%s %s was deleted", what, strings.TrimSuffix(path, " (deleted)"))
		}
	case !ok:
		add("%s %s was not looked at", what, path) // a bug of the reader: say it, do not pass it
	case now.Err != "":
		add("%s %s cannot be opened here: %s", what, path, now.Err)
	default:
		add("%s %s is no longer the file it has open: another file is at that path now", what, path)
	}
}

// unrestorable is the pure decision: every reason the process of v could
// not be restored from its image (code Unrestorable). fds and maps are
// those the image would reopen (external descriptors left out).
func unrestorable(r restoreView, fds []fdView, maps []Mapping) []Reason {
	var rs []Reason
	add := func(f string, a ...any) { rs = append(rs, Reason{Unrestorable, fmt.Sprintf(f, a...)}) }
	if r.Root != "/" || r.RootID != r.OurRoot {
		add("its root directory is %s, not this node's / (chroot or another mount namespace): a restore does not keep it", r.Root)
	}
	r.reopenable(add, "its working directory", r.Cwd, r.CwdID, true)
	exeMapped := false
	for i := range maps {
		if maps[i].Path == r.Exe {
			exeMapped = true // a deleted one is said by DeletedFile
		}
	}
	r.reopenable(add, "its executable", r.Exe, r.ExeID, !exeMapped)
	for _, f := range fds {
		if !restoreOpens(f) {
			continue
		}
		r.reopenable(add, fmt.Sprintf("fd %d:", f.Fd), f.Target, f.ID, false)
	}
	for i := range maps {
		m := &maps[i]
		if m.Kind != KindFilePrivate && m.Kind != KindFileShared || !strings.HasPrefix(m.Path, "/") ||
			strings.HasPrefix(m.Path, "/dev/") || strings.HasPrefix(m.Path, "/SYSV") || strings.HasPrefix(m.Path, "/memfd:") {
			continue // not reopened, or refused for another reason
		}
		want, ok := r.MapIDs[m.Start]
		if !ok {
			if want, ok = mapID(m); !ok {
				continue
			}
		}
		r.reopenable(add, "mapped file", m.Path, want, false)
	}
	return dedupe(rs)
}

// restoreOpens reports whether a restore reopens f by its path: a
// regular file or a directory (the rest is refused for other reasons).
func restoreOpens(f fdView) bool {
	return strings.HasPrefix(f.Target, "/") && (f.Mode.IsRegular() || f.Mode.IsDir())
}

// dedupe drops repeated reasons (a file mapped in several pieces).
func dedupe(rs []Reason) []Reason {
	seen := map[Reason]bool{}
	out := rs[:0]
	for _, r := range rs {
		if !seen[r] {
			seen[r] = true
			out = append(out, r)
		}
	}
	return out
}

// readRestoreView reads what unrestorable needs for pid.
func readRestoreView(pid int, fds []fdView, maps []Mapping) (restoreView, error) {
	dir := "/proc/" + strconv.Itoa(pid) + "/"
	r := restoreView{Now: map[string]pathNow{}, MapIDs: map[uint64]fileID{}}
	link := func(name string, path *string, id *fileID) error {
		var err error
		if *path, err = os.Readlink(dir + name); err != nil {
			return err
		}
		if fi, err := os.Stat(dir + name); err == nil {
			*id = idOf(fi)
		}
		return nil
	}
	if err := link("cwd", &r.Cwd, &r.CwdID); err != nil {
		return r, err
	}
	if err := link("root", &r.Root, &r.RootID); err != nil {
		return r, err
	}
	if err := link("exe", &r.Exe, &r.ExeID); err != nil {
		return r, err
	}
	if fi, err := os.Stat("/"); err == nil {
		r.OurRoot = idOf(fi)
	}
	look := func(path string) pathNow {
		if now, ok := r.Now[path]; ok {
			return now
		}
		var now pathNow
		if fi, err := os.Stat(path); err != nil {
			var pe *fs.PathError
			if errors.As(err, &pe) {
				err = pe.Err
			}
			now.Err = err.Error()
		} else {
			now.ID = idOf(fi)
		}
		r.Now[path] = now
		return now
	}
	look(r.Cwd)
	look(r.Exe)
	for _, f := range fds {
		if restoreOpens(f) {
			look(f.Target)
		}
	}
	for i := range maps {
		m := &maps[i]
		if (m.Kind != KindFilePrivate && m.Kind != KindFileShared) || !strings.HasPrefix(m.Path, "/") {
			continue
		}
		now := look(m.Path)
		if id, ok := mapID(m); ok && now.Err == "" && id != now.ID {
			name := fmt.Sprintf("%smap_files/%x-%x", dir, m.Start, m.End)
			if fi, err := os.Stat(name); err == nil {
				r.MapIDs[m.Start] = idOf(fi)
			}
		}
	}
	return r, nil
}
