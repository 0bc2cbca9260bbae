package checkpoint

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// tfdIocSetTicks is TFD_IOC_SET_TICKS, _IOW('T', 0, u64).
const tfdIocSetTicks = 0x40085400

// objects re-creates the image's kernel objects at their descriptor
// numbers: every other object first, then the epoll instances, each after
// the instances it watches, so that every watched descriptor is in place
// when it is registered (files and external descriptors already are).
func (r *restorer) objects(objs []KObject) error {
	order, err := epollOrder(objs)
	if err != nil {
		return err
	}
	if err := r.pipes(objs); err != nil {
		return err
	}
	if err := r.unixPairs(objs); err != nil {
		return err
	}
	for i := range order {
		o := &order[i]
		if o.Kind == ObjPipe || o.Kind == ObjUnixPair {
			continue // made above
		}
		if err := r.object(o); err != nil {
			return fmt.Errorf("checkpoint: %s at fd %d: %w", o.Kind, o.Fd, err)
		}
	}
	return nil
}

// object creates one kernel object, moves it to its number and sets its
// state.
func (r *restorer) object(o *KObject) error {
	in, le := r.in, binary.LittleEndian
	keep := uint64(o.Flags & (unix.O_NONBLOCK | unix.O_CLOEXEC))
	var fd uint64
	var err error
	switch o.Kind {
	case ObjEventfd:
		flags := keep
		if o.Semaphore {
			flags |= unix.EFD_SEMAPHORE
		}
		initial := o.Count
		if initial > math.MaxUint32 {
			initial = 0 // eventfd2 takes 32 bits; the rest is written below
		}
		if fd, err = in.callOK(unix.SYS_EVENTFD2, initial, flags); err != nil {
			return err
		}
		if o.Count > math.MaxUint32 {
			if err := r.write(scratchStruct, le.AppendUint64(nil, o.Count)); err != nil {
				return err
			}
			if _, err := in.callOK(unix.SYS_WRITE, fd, r.scratch+scratchStruct, 8); err != nil {
				return fmt.Errorf("write the counter: %w", err)
			}
		}
	case ObjSignalfd:
		if err := r.write(scratchStruct, le.AppendUint64(nil, o.SigMask)); err != nil {
			return err
		}
		if fd, err = in.callOK(unix.SYS_SIGNALFD4, math.MaxUint64, r.scratch+scratchStruct, 8, keep); err != nil {
			return err
		}
	case ObjTimerfd:
		if fd, err = in.callOK(unix.SYS_TIMERFD_CREATE, uint64(o.Clock), keep); err != nil {
			return err
		}
		if err := r.setTimer(fd, o); err != nil {
			return err
		}
	case ObjEpoll:
		if fd, err = in.callOK(unix.SYS_EPOLL_CREATE1, keep&unix.O_CLOEXEC); err != nil {
			return err
		}
	case ObjDeleted:
		f, err := makeDeleted(o)
		if err != nil {
			return err
		}
		defer f.Close()
		// O_TMPFILE has O_DIRECTORY in it; the /proc link is a symbolic link.
		const dropped = unix.O_CREAT | unix.O_EXCL | unix.O_TRUNC | unix.O_NOCTTY | unix.O_TMPFILE | unix.O_NOFOLLOW
		if fd, err = r.open(fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), f.Fd()), o.Flags&^dropped); err != nil {
			return err
		}
	case ObjInotify:
		if fd, err = in.callOK(unix.SYS_INOTIFY_INIT1, keep); err != nil {
			return err
		}
		if err := r.inotifyWatches(fd, o); err != nil {
			in.call(unix.SYS_CLOSE, fd)
			return err
		}
	default:
		return fmt.Errorf("unknown kind %d", o.Kind)
	}
	if fd != uint64(o.Fd) {
		_, err := in.callOK(unix.SYS_DUP3, fd, uint64(o.Fd), keep&unix.O_CLOEXEC)
		in.call(unix.SYS_CLOSE, fd)
		if err != nil {
			return fmt.Errorf("dup3: %w", err)
		}
	}
	if o.Kind == ObjDeleted && o.Flags&unix.O_APPEND == 0 && o.Offset != 0 {
		if _, err := in.callOK(unix.SYS_LSEEK, uint64(o.Fd), uint64(o.Offset), 0); err != nil {
			return fmt.Errorf("lseek: %w", err)
		}
	}
	if o.Kind != ObjEpoll {
		return nil
	}
	if o.Flags&unix.O_NONBLOCK != 0 {
		if _, err := in.callOK(unix.SYS_FCNTL, uint64(o.Fd), unix.F_SETFL, unix.O_NONBLOCK); err != nil {
			return fmt.Errorf("fcntl: %w", err)
		}
	}
	for _, w := range o.Watches {
		b := le.AppendUint32(nil, w.Events) // struct epoll_event is packed on x86_64
		b = le.AppendUint64(b, w.Data)
		if err := r.write(scratchStruct, b); err != nil {
			return err
		}
		if _, err := in.callOK(unix.SYS_EPOLL_CTL, uint64(o.Fd), unix.EPOLL_CTL_ADD, uint64(w.Fd), r.scratch+scratchStruct); err != nil {
			return fmt.Errorf("watch fd %d: %w", w.Fd, err)
		}
	}
	return nil
}

// setTimer arms a timerfd as it was: the time left to its next expiry
// (relative, since the clocks of two machines differ; absolute on this
// one for a CANCEL_ON_SET timer, which needs it), its period, and the
// expirations not yet read.
func (r *restorer) setTimer(fd uint64, o *KObject) error {
	in, le := r.in, binary.LittleEndian
	value := o.Value
	if value == 0 && o.Interval != 0 {
		// A periodic timer that expired and was not read since: the
		// kernel re-arms it at the read. Its ticks are set below; the
		// next one comes an interval from now.
		value = o.Interval
	}
	flags := uint64(0)
	if value != 0 && o.TimerFlags&tfdTimerCancelOnSet != 0 {
		var now unix.Timespec
		if err := unix.ClockGettime(o.Clock, &now); err != nil {
			return fmt.Errorf("clock_gettime %d: %w", o.Clock, err)
		}
		value += time.Duration(now.Nano())
		flags = tfdTimerAbstime | tfdTimerCancelOnSet
	}
	if value != 0 {
		var b []byte
		for _, d := range []time.Duration{o.Interval, value} {
			b = le.AppendUint64(b, uint64(d/time.Second))
			b = le.AppendUint64(b, uint64(d%time.Second))
		}
		if err := r.write(scratchStruct, b); err != nil {
			return err
		}
		if _, err := in.callOK(unix.SYS_TIMERFD_SETTIME, fd, flags, r.scratch+scratchStruct, 0); err != nil {
			return fmt.Errorf("timerfd_settime: %w", err)
		}
	}
	if o.Ticks != 0 {
		if err := r.write(scratchStruct, le.AppendUint64(nil, o.Ticks)); err != nil {
			return err
		}
		if _, err := in.callOK(unix.SYS_IOCTL, fd, tfdIocSetTicks, r.scratch+scratchStruct); err != nil {
			return fmt.Errorf("TFD_IOC_SET_TICKS: %w", err)
		}
	}
	return nil
}

// inotifyWatches adds o's watches to the new instance at fd, by path, in
// order: a fresh instance numbers its watches 1, 2, 3..., so a number
// that was freed (a watch removed) is taken by a watch of a file made for
// it in a temporary directory, removed once all are in place (the
// IN_IGNORED events that says are read away). Each watch must get its
// number and its file.
func (r *restorer) inotifyWatches(fd uint64, o *KObject) error {
	in := r.in
	add := func(path string, mask uint32) (int32, error) {
		if err := r.write(scratchPath, append([]byte(path), 0)); err != nil {
			return 0, err
		}
		wd, err := in.callOK(unix.SYS_INOTIFY_ADD_WATCH, fd, r.scratch+scratchPath, uint64(mask))
		if err != nil {
			return 0, fmt.Errorf("watch %s: %w", path, err)
		}
		return int32(wd), nil
	}
	var fillers []int32
	dir := ""
	defer func() {
		if dir != "" {
			os.RemoveAll(dir)
		}
	}()
	next := int32(1)
	for _, w := range o.Inotify {
		if w.WD-next > maxInotifyGap {
			return fmt.Errorf("watch %d: %d numbers freed before it (at most %d are taken back)", w.WD, w.WD-next, maxInotifyGap)
		}
		for ; next < w.WD; next++ {
			if dir == "" {
				var err error
				if dir, err = os.MkdirTemp("", "ssi-inotify-"); err != nil {
					return err
				}
			}
			p := filepath.Join(dir, strconv.Itoa(int(next)))
			if err := os.WriteFile(p, nil, 0o600); err != nil {
				return err
			}
			wd, err := add(p, unix.IN_DELETE_SELF)
			if err != nil {
				return err
			}
			if wd != next {
				return fmt.Errorf("a watch to take number %d got %d", next, wd)
			}
			fillers = append(fillers, wd)
		}
		wd, err := add(w.Path, w.Mask)
		if err != nil {
			return err
		}
		if wd != w.WD {
			return fmt.Errorf("the watch of %s got number %d, not %d", w.Path, wd, w.WD)
		}
		next = w.WD + 1
	}
	for _, wd := range fillers {
		if _, err := in.callOK(unix.SYS_INOTIFY_RM_WATCH, fd, uint64(wd)); err != nil {
			return fmt.Errorf("remove watch %d: %w", wd, err)
		}
	}
	for len(fillers) > 0 { // read away the IN_IGNORED events
		if _, err := in.callOK(unix.SYS_IOCTL, fd, unix.TIOCINQ, r.scratch+scratchStruct); err != nil {
			return fmt.Errorf("FIONREAD: %w", err)
		}
		b := make([]byte, 4)
		if _, err := r.mem.ReadAt(b, int64(r.scratch+scratchStruct)); err != nil {
			return err
		}
		n := binary.LittleEndian.Uint32(b)
		if n == 0 {
			break
		}
		if _, err := in.callOK(unix.SYS_READ, fd, r.scratch+scratchStruct, uint64(min(n, 2048))); err != nil {
			return fmt.Errorf("read: %w", err)
		}
	}
	// The kernel's own view: each number on its file.
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/fdinfo/%d", in.pid, fd))
	if err != nil {
		return err
	}
	got, err := parseObject(ObjInotify, int(fd), string(b))
	if err != nil {
		return err
	}
	if len(got.Inotify) != len(o.Inotify) {
		return fmt.Errorf("%d watches in place, want %d", len(got.Inotify), len(o.Inotify))
	}
	for i, w := range o.Inotify {
		if g := got.Inotify[i]; g.WD != w.WD || g.Ino != w.Ino || g.Dev != w.Dev {
			return fmt.Errorf("watch %d of %s is on another file here (inode %d, not %d)", w.WD, w.Path, g.Ino, w.Ino)
		}
	}
	return nil
}

// maxInotifyGap bounds the watch numbers a restore takes back before one
// watch (each costs a file and two calls).
const maxInotifyGap = 1024
