package agent

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc/status"

	"github.com/ssi-cluster/ssi/internal/api"
	"github.com/ssi-cluster/ssi/internal/authz"
	"github.com/ssi-cluster/ssi/internal/checkpoint"
	"github.com/ssi-cluster/ssi/internal/rexec"
	"github.com/ssi-cluster/ssi/internal/vproc"
)

// `ssi restore FILE`: the image (the request's body) restored on this
// node as a process of its own (a cluster pid of this node), a child of
// the agent. Descriptors that were a deputy's stdio get /dev/null, or for
// 1 and 2 the file named by ?out=, opened as the caller. The restore runs
// as root, so an image from a user is checked first against what that
// user may do: its credentials must be the caller's, and every file it
// opens or maps, its executable and its directory must be open to the
// caller. The image is spooled to disk as it comes (never held in memory
// until it is known to be the caller's to restore) within the limits of
// imageLimit.

func (a *Agent) handleRestore(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r) // on the socket, its process visible: guard checked
	caller, err := rexec.ReadCaller("/proc", c.PID)
	if err != nil {
		refuse(w, r, http.StatusForbidden, "restore: reading your credentials: %v", err)
		return
	}
	spool, err := a.spoolDir()
	if err != nil {
		refuse(w, r, http.StatusInsufficientStorage, "restore: %v", err)
		return
	}
	lim, release := a.spool.take(spool, int64(a.cfg.MaxImageSize), c.UID, caller.Rlimits, r.ContentLength)
	defer release()
	if r.ContentLength > lim.bytes {
		refuse(w, r, http.StatusRequestEntityTooLarge, "restore: the image (%d bytes) is larger than %s", r.ContentLength, lim)
		return
	}
	f, err := a.spoolImage(w, r, spool, lim)
	if err != nil {
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &tooBig):
			refuse(w, r, http.StatusRequestEntityTooLarge, "restore: the image is larger than %s", lim)
		case errors.Is(err, errSpool):
			refuse(w, r, http.StatusInsufficientStorage, "restore: %v", err)
		case errors.Is(err, errStalled):
			refuse(w, r, http.StatusRequestTimeout, "restore: reading the image: %v", err)
		default:
			refuse(w, r, http.StatusBadRequest, "restore: reading the image: %v", err)
		}
		return
	}
	defer f.Close()
	if c.UID != 0 {
		// What the image would be is checked from its metadata, before
		// its pages are held in memory. The spool file has no name and
		// only the agent holds it: Decode reads the same bytes again.
		meta, err := checkpoint.DecodeMeta(f)
		if err != nil {
			writeErr(w, http.StatusBadRequest, "restore: %v", err)
			return
		}
		// Restore is local only: a user restores an image of its own (the
		// policy), and then only what it could run itself (imageAllowed).
		if err := a.decide(authz.Restore, a.local(c.UID), 0, imageOwner(meta), false); err != nil {
			writeErr(w, http.StatusForbidden, "restore: %s", status.Convert(err).Message())
			return
		}
		if err := imageAllowed(meta, c, caller); err != nil {
			writeErr(w, http.StatusForbidden, "restore: %v", err)
			return
		}
		if err := privilegesAllowed(meta, c, caller); err != nil {
			writeErr(w, http.StatusForbidden, "restore: %v", err)
			return
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			writeErr(w, http.StatusInsufficientStorage, "restore: %v: %v", errSpool, err)
			return
		}
	}
	img, err := checkpoint.Decode(f)
	if err != nil {
		writeErr(w, http.StatusBadRequest, "restore: %v", err)
		return
	}
	f.Close() // its space goes back now: the image is in memory
	files, err := restoreStdio(img, c, caller, r.URL.Query().Get("out"))
	if err != nil {
		writeErr(w, http.StatusBadRequest, "restore: %v", err)
		return
	}
	res, err := checkpoint.RestoreWith(img, a.shim, checkpoint.RestoreOptions{Files: files, NewGroup: true})
	for _, f := range files {
		f.Close()
	}
	if err != nil {
		writeErr(w, http.StatusUnprocessableEntity, "restore: %v", err)
		return
	}
	self := a.Identity().Number
	cpid, _ := vproc.Make(self, res.Pid)
	p, _ := rexec.Adopt(res.Pid, nil, -1, nil, nil)
	a.newSession(nil, p, &runRec{CPID: int64(cpid), Home: self}).start()
	a.log.Info("restored a process", "cpid", showCPID(int64(cpid)), "pid", res.Pid, "uid", c.UID, "image_pid", img.Pid)
	out := api.Restore{CPID: int64(cpid), Node: self, Pid: res.Pid, PidKept: res.PidKept}
	if res.PidErr != nil {
		out.PidErr = res.PidErr.Error()
	}
	writeJSON(w, http.StatusOK, out)
}

// errSpool marks an error of the spool (the disk), not of the upload.
var errSpool = errors.New("spooling the image")

// spoolDir is where images are spooled: state_dir/spool, root's alone.
func (a *Agent) spoolDir() (string, error) {
	dir := filepath.Join(a.cfg.StateDir, "spool")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("%w: %v", errSpool, err)
	}
	return dir, nil
}

// spoolImage writes the request's body to a file in dir that has no name
// (removed as soon as made: nothing is left behind, whatever happens),
// at most lim bytes, and returns it at its start. The body may take any
// time while bytes come; one that stops for bodyStallTimeout ends.
func (a *Agent) spoolImage(w http.ResponseWriter, r *http.Request, dir string, lim imageLim) (*os.File, error) {
	f, err := os.CreateTemp(dir, "restore-*.img")
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errSpool, err)
	}
	os.Remove(f.Name())
	rc := http.NewResponseController(w)
	defer rc.SetReadDeadline(time.Time{}) // the restore may take its time
	body := &stallReader{r: http.MaxBytesReader(w, r.Body, lim.bytes), rc: rc, stall: bodyStallTimeout}
	n, err := io.Copy(f, body)
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		f.Close()
		var pe *os.PathError
		if errors.As(err, &pe) { // the file's, not the body's
			return nil, fmt.Errorf("%w: %v", errSpool, err)
		}
		a.log.Info("restore: upload cut off", "bytes", n, "limit", lim.bytes, "err", err)
		return nil, err
	}
	return f, nil
}

// imageLim is the largest image a caller may send, and what sets it.
type imageLim struct {
	bytes int64
	why   string
}

func (l imageLim) String() string { return fmt.Sprintf("%d bytes, %s", l.bytes, l.why) }

// imageLimit is the largest image uid may send: max_image_size; for a
// user other than root also his file size limit (ulimit -f: ssi
// checkpoint writes the image as him, so no larger one is his); and the
// spool's free space (free, < 0 unknown) less a reserve of 1 GiB or a
// tenth, whichever is smaller.
func imageLimit(maxSize int64, uid int, rl []rexec.Rlimit, free int64) imageLim {
	lim := imageLim{maxSize, "the agent's max_image_size"}
	if uid != 0 {
		for _, l := range rl {
			if l.Resource == unix.RLIMIT_FSIZE && l.Cur < uint64(lim.bytes) {
				lim = imageLim{int64(l.Cur), "your file size limit (ulimit -f)"}
			}
		}
	}
	if free >= 0 {
		room := max(free-min(1<<30, free/10), 0)
		if room < lim.bytes {
			lim = imageLim{room, "the agent's free disk space"}
		}
	}
	return lim
}

// spoolBook is the disk promised to the images being spooled, so that
// uploads side by side cannot together fill the disk each would fit.
type spoolBook struct {
	mu   sync.Mutex
	held int64
}

// take is the limit of an upload of size bytes (< 0 unknown) to dir: the
// free space counts less what other uploads were promised. It promises
// this one its size (or, unknown, its limit) until release.
func (b *spoolBook) take(dir string, maxSize int64, uid int, rl []rexec.Rlimit, size int64) (imageLim, func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	free := freeSpace(dir)
	if free >= 0 {
		free = max(free-b.held, 0)
	}
	lim := imageLimit(maxSize, uid, rl, free)
	want := lim.bytes
	if size >= 0 && size <= lim.bytes {
		want = size
	} else if size > lim.bytes {
		want = 0 // refused: it will not be read
	}
	b.held += want
	return lim, sync.OnceFunc(func() {
		b.mu.Lock()
		b.held -= want
		b.mu.Unlock()
	})
}

// freeSpace is the space dir's file system has for root (< 0 unknown).
func freeSpace(dir string) int64 {
	var st unix.Statfs_t
	if unix.Statfs(dir, &st) != nil {
		return -1
	}
	return int64(st.Bfree) * st.Bsize
}

// restoreStdio opens the files that stand for the image's external
// descriptors: /dev/null, or out (appended, opened as the caller) for
// descriptors that were written.
func restoreStdio(img *checkpoint.Image, c Caller, caller rexec.Caller, out string) (map[int]*os.File, error) {
	if len(img.External) == 0 {
		return nil, nil
	}
	files := map[int]*os.File{}
	var outF *os.File
	if out != "" {
		err := asUser(c.UID, c.GID, caller.Groups, func() error {
			var err error
			outF, err = os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
			return err
		})
		if err != nil {
			return nil, err
		}
		outF.Seek(0, io.SeekEnd) // the image's flags may drop O_APPEND
		defer outF.Close()
	}
	for _, x := range img.External {
		var f *os.File
		var err error
		if outF != nil && x.Flags&unix.O_ACCMODE != unix.O_RDONLY {
			f, err = dupFile(outF)
		} else {
			f, err = os.OpenFile(os.DevNull, os.O_RDWR, 0)
		}
		if err != nil {
			for _, f := range files {
				f.Close()
			}
			return nil, err
		}
		files[x.Fd] = f
	}
	return files, nil
}

func dupFile(f *os.File) (*os.File, error) {
	fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 3)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), f.Name()), nil
}

// imageAllowed checks an image given by a user who is not root: its
// credentials are the caller's, its limits within the caller's, and
// every path it opens, maps, runs or works in is open to the caller.
func imageAllowed(img *checkpoint.Image, c Caller, caller rexec.Caller) error {
	cr := img.Creds
	if cr == nil {
		return errors.New("the image has no credentials: only root may restore it")
	}
	for _, id := range cr.Uid {
		if int(id) != c.UID {
			return fmt.Errorf("the image runs as uid %d, you are uid %d", id, c.UID)
		}
	}
	for _, id := range cr.Gid {
		if int(id) != c.GID && !slices.Contains(caller.Groups, int(id)) {
			return fmt.Errorf("the image runs as gid %d, not one of yours", id)
		}
	}
	for _, g := range cr.Groups {
		if int(g) != c.GID && !slices.Contains(caller.Groups, int(g)) {
			return fmt.Errorf("the image is in group %d, not one of yours", g)
		}
	}
	for _, l := range img.Rlimits {
		for _, mine := range caller.Rlimits {
			if mine.Resource == l.Resource && l.Max > mine.Max {
				return fmt.Errorf("the image's hard limit %d (%d) is above yours (%d)", l.Resource, l.Max, mine.Max)
			}
		}
	}
	return asUser(c.UID, c.GID, caller.Groups, func() error {
		check := func(path string, flags int) error {
			fd, err := unix.Open(path, flags|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
			if err != nil {
				return fmt.Errorf("%s: %w (as you)", path, err)
			}
			unix.Close(fd)
			return nil
		}
		for _, f := range img.Files {
			if err := check(f.Path, int(f.Flags&unix.O_ACCMODE)); err != nil {
				return err
			}
		}
		for _, m := range img.Mappings {
			if m.Kind != checkpoint.KindFilePrivate && m.Kind != checkpoint.KindFileShared {
				continue
			}
			flags := unix.O_RDONLY
			if m.Kind == checkpoint.KindFileShared && (m.Prot&checkpoint.ProtWrite != 0 || m.Flags&checkpoint.MapMayWrite != 0) {
				flags = unix.O_RDWR
			}
			if err := check(m.Path, flags); err != nil {
				return err
			}
		}
		for _, o := range img.Objects {
			switch o.Kind {
			case checkpoint.ObjInotify: // inotify_add_watch needs read permission
				for _, w := range o.Inotify {
					if err := check(w.Path, unix.O_RDONLY); err != nil {
						return fmt.Errorf("inotify watch: %w", err)
					}
				}
			case checkpoint.ObjDeleted: // made in its directory
				if err := check(filepath.Dir(o.Path), unix.O_TMPFILE|unix.O_RDWR); err != nil {
					return fmt.Errorf("deleted file: %w", err)
				}
			}
		}
		if err := check(img.Exe, unix.O_RDONLY); err != nil {
			return err
		}
		return check(img.Cwd+"/.", unix.O_PATH) // needs search permission
	})
}

// asUser runs fn on an OS thread whose file-system ids and groups are
// uid's, gid's and groups (Linux keeps them per thread; the raw calls
// change only this one). The thread is never given back: it ends with the
// goroutine.
func asUser(uid, gid int, groups []int, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with us
		if err := unix.Setgroups(groups); err != nil {
			errc <- err
			return
		}
		unix.Setfsgid(gid)
		unix.Setfsuid(uid)
		if got, _ := unix.SetfsuidRetUid(-1); got != uid {
			errc <- fmt.Errorf("could not act as uid %d", uid)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// privilegesAllowed checks what a restore does as root, before it drops
// to the image's user, against what the user who gives the image (ssi
// restore) could do itself: no lower
// OOM score adjustment, no other login uid, no more locked memory than
// its RLIMIT_MEMLOCK, no alarm clocks (CAP_WAKE_ALARM), and deleted files
// it owns. An image that comes from a node's agent in a migration was
// dumped from the process itself: its attributes are the process's.
func privilegesAllowed(img *checkpoint.Image, c Caller, caller rexec.Caller) error {
	alarm := func(clock int32) bool {
		return clock == unix.CLOCK_REALTIME_ALARM || clock == unix.CLOCK_BOOTTIME_ALARM
	}
	for _, o := range img.Objects {
		switch {
		case o.Kind == checkpoint.ObjTimerfd && alarm(o.Clock):
			return fmt.Errorf("the image has a timerfd on an alarm clock (%d): only root may restore it", o.Clock)
		case o.Kind == checkpoint.ObjDeleted && (int(o.Uid) != c.UID || int(o.Gid) != c.GID && !slices.Contains(caller.Groups, int(o.Gid))):
			return fmt.Errorf("the image has a deleted file %s of uid %d, gid %d: not yours", o.Path, o.Uid, o.Gid)
		}
	}
	a := img.Attrs
	if a == nil {
		return nil
	}
	for _, t := range a.Timers {
		if alarm(t.Clock) {
			return fmt.Errorf("the image has a POSIX timer on an alarm clock (%d): only root may restore it", t.Clock)
		}
	}
	if a.OOMScoreAdj < 0 {
		return fmt.Errorf("the image's oom_score_adj is %d: only root may restore one below 0", a.OOMScoreAdj)
	}
	if a.LoginUID != checkpoint.NoLoginUID {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/loginuid", c.PID))
		if err != nil || strings.TrimSpace(string(b)) != strconv.FormatUint(uint64(a.LoginUID), 10) {
			return fmt.Errorf("the image's login uid is %d, not yours", a.LoginUID)
		}
	}
	var locked uint64
	for _, m := range a.Advice {
		if m.Flags&(checkpoint.AdvLocked|checkpoint.AdvLockOnFault) != 0 {
			locked += m.End - m.Start
		}
	}
	if locked > 0 {
		limit := uint64(0)
		for _, l := range img.Rlimits {
			if l.Resource == unix.RLIMIT_MEMLOCK {
				limit = l.Cur
			}
		}
		if locked > limit {
			return fmt.Errorf("the image locks %d bytes of memory, above its RLIMIT_MEMLOCK (%d)", locked, limit)
		}
	}
	return nil
}
