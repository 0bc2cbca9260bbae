package agent

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"slices"

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
// caller.

func (a *Agent) handleRestore(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	if !c.Unix || c.PID <= 0 {
		writeErr(w, http.StatusForbidden, "restore: accepted only on the agent's Unix socket, from this node")
		return
	}
	img, err := checkpoint.Decode(r.Body)
	if err != nil {
		writeErr(w, http.StatusBadRequest, "restore: %v", err)
		return
	}
	caller, err := rexec.ReadCaller("/proc", c.PID)
	if err != nil {
		writeErr(w, http.StatusForbidden, "restore: reading your credentials: %v", err)
		return
	}
	// Restore is local only: a user restores an image of its own (the
	// policy), and then only what it could run itself (imageAllowed).
	if err := a.decide(authz.Restore, a.local(c.UID), 0, imageOwner(img), false); err != nil {
		writeErr(w, http.StatusForbidden, "restore: %s", status.Convert(err).Message())
		return
	}
	if c.UID != 0 {
		if err := imageAllowed(img, c, caller); err != nil {
			writeErr(w, http.StatusForbidden, "restore: %v", err)
			return
		}
	}
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
			if m.Kind == checkpoint.KindFileShared && m.Prot&checkpoint.ProtWrite != 0 {
				flags = unix.O_RDWR
			}
			if err := check(m.Path, flags); err != nil {
				return err
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
