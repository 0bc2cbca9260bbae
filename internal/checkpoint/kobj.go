package checkpoint

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Kernel objects behind anonymous-inode descriptors that the engine
// re-creates at restore (image format version 5): eventfd, epoll, timerfd
// and signalfd. Their state is read from /proc/PID/fdinfo/N at the dump,
// which the kernel writes for each of them (fs/eventfd.c, fs/eventpoll.c,
// fs/timerfd.c, fs/signalfd.c), and set again by injected calls: eventfd2
// and a write of the counter, epoll_create1 and one EPOLL_CTL_ADD per
// watch, timerfd_create, timerfd_settime and TFD_IOC_SET_TICKS for the
// expirations not yet read, signalfd4 with the mask. Every object keeps
// its descriptor number and its O_NONBLOCK and O_CLOEXEC flags.

// ObjKind is the kind of a kernel object.
type ObjKind uint8

// Kernel object kinds.
const (
	ObjEventfd  ObjKind = iota + 1 // eventfd(2)
	ObjEpoll                       // epoll_create1(2)
	ObjTimerfd                     // timerfd_create(2)
	ObjSignalfd                    // signalfd(2)
	ObjInotify                     // inotify_init1(2)
	ObjDeleted                     // a regular file unlinked while open (kobj_deleted.go)
	ObjPipe                        // an end of a pipe whose both ends the process holds (kobj_pipe.go)
	ObjUnixPair                    // an end of a Unix stream socketpair whose both ends the process holds (kobj_unix.go)
)

var objTargets = map[string]ObjKind{
	"anon_inode:[eventfd]":   ObjEventfd,
	"anon_inode:[eventpoll]": ObjEpoll,
	"anon_inode:[timerfd]":   ObjTimerfd,
	"anon_inode:[signalfd]":  ObjSignalfd,
	"anon_inode:inotify":     ObjInotify,
}

var objNames = [...]string{"", "eventfd", "epoll", "timerfd", "signalfd", "inotify", "deleted file", "pipe", "socketpair"}

func (k ObjKind) String() string {
	if int(k) < len(objNames) && k != 0 {
		return objNames[k]
	}
	return "object?"
}

// objKindOf returns the kind of the object a /proc/PID/fd link names.
func objKindOf(target string) (ObjKind, bool) {
	k, ok := objTargets[target]
	return k, ok
}

// KObject is one kernel object at its descriptor number.
type KObject struct {
	Fd    int
	Kind  ObjKind
	Flags uint32 // open flags as in /proc/PID/fdinfo (O_NONBLOCK, O_CLOEXEC; O_RDWR)

	Count     uint64 // eventfd: the counter
	Semaphore bool   // eventfd: EFD_SEMAPHORE

	Clock      int32         // timerfd: clock id
	TimerFlags uint32        // timerfd: settime flags (TFD_TIMER_ABSTIME, TFD_TIMER_CANCEL_ON_SET)
	Value      time.Duration // timerfd: time to the next expiry; 0 disarmed
	Interval   time.Duration // timerfd: period; 0 one-shot
	Ticks      uint64        // timerfd: expirations not yet read

	SigMask uint64 // signalfd: the signals it reads

	Watches []EpollWatch // epoll: the interest list

	Inotify []InotifyWatch // inotify: the watches, by ascending wd

	Path     string // deleted file: where it was (without " (deleted)")
	Offset   int64  // deleted file: the descriptor's offset
	Mode     uint32 // deleted file: permission bits
	Uid, Gid uint32 // deleted file: owner
	Data     []byte // deleted file, pipe (its first read end): contents

	Pipe     uint64 // pipe: which (its inode at the dump)
	PipeSize uint32 // pipe: capacity (F_GETPIPE_SZ)

	Sock, Peer uint64 // socketpair end: its inode at the dump, and its peer's
}

// InotifyWatch is one watch of an inotify instance. A restore adds it
// again by path, and checks that the path leads to the same file.
type InotifyWatch struct {
	WD   int32
	Mask uint32 // the events watched, and IN_ONESHOT, IN_EXCL_UNLINK...
	Ino  uint64 // the watched file
	Dev  uint64 // its device, unix.Mkdev form
	Path string // where the dump found it (by its file handle)

	handle []byte // the file handle, as fdinfo shows it (dump only)
	htype  int32
}

// EpollWatch is one entry of an epoll interest list.
type EpollWatch struct {
	Fd     int    // the watched descriptor (as registered)
	Events uint32 // events and EPOLLET, EPOLLONESHOT, EPOLLEXCLUSIVE, EPOLLWAKEUP
	Data   uint64 // the user's data

	ino uint64 // the watched file's inode (dump-time check only)
}

// Timer flags of timerfd_settime.
const (
	tfdTimerAbstime     = 1
	tfdTimerCancelOnSet = 2
)

// parseObject reads the fdinfo of a kernel object of kind k at fd. The
// common lines (pos, flags) are parseFdinfo's.
func parseObject(k ObjKind, fd int, info string) (KObject, error) {
	o := KObject{Fd: fd, Kind: k}
	_, flags, err := parseFdinfo(info)
	if err != nil {
		return o, err
	}
	o.Flags = flags
	seen := map[string]bool{}
	for line := range strings.Lines(info) {
		line = strings.TrimRight(line, "\n")
		key, val, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		val = strings.TrimSpace(val)
		var err error
		switch {
		case k == ObjEventfd && key == "eventfd-count":
			o.Count, err = strconv.ParseUint(val, 16, 64)
		case k == ObjEventfd && key == "eventfd-semaphore":
			o.Semaphore, err = val == "1", nil
		case k == ObjTimerfd && key == "clockid":
			var c int64
			c, err = strconv.ParseInt(val, 10, 32)
			o.Clock = int32(c)
		case k == ObjTimerfd && key == "ticks":
			o.Ticks, err = strconv.ParseUint(val, 10, 64)
		case k == ObjTimerfd && key == "settime flags":
			var f uint64
			f, err = strconv.ParseUint(val, 8, 32)
			o.TimerFlags = uint32(f)
		case k == ObjTimerfd && key == "it_value":
			o.Value, err = parseTimespecPair(val)
		case k == ObjTimerfd && key == "it_interval":
			o.Interval, err = parseTimespecPair(val)
		case k == ObjSignalfd && key == "sigmask":
			o.SigMask, err = strconv.ParseUint(val, 16, 64)
		case k == ObjEpoll && key == "tfd":
			var w EpollWatch
			w, err = parseEpollWatch(line)
			o.Watches = append(o.Watches, w)
		case k == ObjInotify && key == "inotify wd":
			var w InotifyWatch
			w, err = parseInotifyWatch(line)
			o.Inotify = append(o.Inotify, w)
		default:
			continue
		}
		if err != nil {
			return o, fmt.Errorf("fdinfo of fd %d (%s): %s: %v", fd, k, key, err)
		}
		seen[key] = true
	}
	var need []string
	switch k {
	case ObjEventfd:
		need = []string{"eventfd-count"}
	case ObjTimerfd:
		need = []string{"clockid", "ticks", "settime flags", "it_value", "it_interval"}
	case ObjSignalfd:
		need = []string{"sigmask"}
	}
	for _, n := range need {
		if !seen[n] {
			return o, fmt.Errorf("fdinfo of fd %d (%s): no %q line", fd, k, n)
		}
	}
	slices.SortFunc(o.Inotify, func(a, b InotifyWatch) int { return int(a.WD) - int(b.WD) })
	return o, nil
}

// parseInotifyWatch reads "inotify wd:1 ino:3c4a3 sdev:fe00000 mask:300
// ignored_mask:0 fhandle-bytes:8 fhandle-type:1 f_handle:a3c4030000000000".
func parseInotifyWatch(line string) (InotifyWatch, error) {
	var w InotifyWatch
	kv := map[string]string{}
	for _, f := range strings.Fields(strings.TrimPrefix(line, "inotify")) {
		if k, v, ok := strings.Cut(f, ":"); ok {
			kv[k] = v
		}
	}
	num := func(key string, bits int) (uint64, error) {
		v, ok := kv[key]
		if !ok {
			return 0, fmt.Errorf("watch line %q: no %s", line, key)
		}
		n, err := strconv.ParseUint(v, 16, bits)
		if err != nil {
			return 0, fmt.Errorf("watch line %q: %s", line, key)
		}
		return n, nil
	}
	wd, err := num("wd", 31)
	if err != nil {
		return w, err
	}
	ino, err := num("ino", 64)
	if err != nil {
		return w, err
	}
	sdev, err := num("sdev", 32)
	if err != nil {
		return w, err
	}
	mask, err := num("mask", 32)
	if err != nil {
		return w, err
	}
	htype, err := num("fhandle-type", 32)
	if err != nil {
		return w, err
	}
	h, err := hex.DecodeString(kv["f_handle"])
	if err != nil || len(h) == 0 {
		return w, fmt.Errorf("watch line %q: f_handle", line)
	}
	// The kernel's dev_t: 12 bits of major above 20 of minor.
	dev := unix.Mkdev(uint32(sdev>>20), uint32(sdev&(1<<20-1)))
	return InotifyWatch{WD: int32(wd), Mask: uint32(mask), Ino: ino, Dev: dev, handle: h, htype: int32(htype)}, nil
}

// parseTimespecPair reads "(SEC, NSEC)".
func parseTimespecPair(s string) (time.Duration, error) {
	s, ok := strings.CutPrefix(s, "(")
	if s, ok2 := strings.CutSuffix(s, ")"); ok && ok2 {
		sec, nsec, ok := strings.Cut(s, ",")
		if ok {
			a, err1 := strconv.ParseUint(strings.TrimSpace(sec), 10, 63)
			b, err2 := strconv.ParseUint(strings.TrimSpace(nsec), 10, 63)
			if err1 == nil && err2 == nil && b < uint64(time.Second) && a < uint64(1<<63-1)/uint64(time.Second) {
				return time.Duration(a)*time.Second + time.Duration(b), nil
			}
		}
	}
	return 0, fmt.Errorf("not (sec, nsec): %q", s)
}

// parseEpollWatch reads "tfd: N events: HEX data: HEX  pos:N ino:HEX sdev:HEX".
func parseEpollWatch(line string) (EpollWatch, error) {
	var w EpollWatch
	f := strings.Fields(line)
	get := func(key string) (string, bool) {
		for i, s := range f {
			if s == key && i+1 < len(f) {
				return f[i+1], true
			}
			if v, ok := strings.CutPrefix(s, key); ok && v != "" {
				return v, true
			}
		}
		return "", false
	}
	tfd, ok1 := get("tfd:")
	ev, ok2 := get("events:")
	data, ok3 := get("data:")
	ino, ok4 := get("ino:")
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return w, fmt.Errorf("watch line %q", line)
	}
	fd, err := strconv.Atoi(tfd)
	if err != nil || fd < 0 || fd > maxFd {
		return w, fmt.Errorf("watch line %q: tfd", line)
	}
	events, err := strconv.ParseUint(ev, 16, 32)
	if err != nil {
		return w, fmt.Errorf("watch line %q: events", line)
	}
	d, err := strconv.ParseUint(data, 16, 64)
	if err != nil {
		return w, fmt.Errorf("watch line %q: data", line)
	}
	in, err := strconv.ParseUint(ino, 16, 64)
	if err != nil {
		return w, fmt.Errorf("watch line %q: ino", line)
	}
	return EpollWatch{Fd: fd, Events: uint32(events), Data: d, ino: in}, nil
}

// objectRefusals is the pure decision on the kernel objects of a process:
// open flags a restore would not set again (O_ASYNC...), an inotify
// instance with too many freed watch numbers, and an epoll instance whose
// watch names a descriptor that is closed, or that now holds another file
// (the watch lives on through a duplicate of the file: a restore could
// not register it again), are refused. fds is the whole descriptor table.
func objectRefusals(objs []KObject, fds []fdView) []Reason {
	var rs []Reason
	byFd := map[int]fdView{}
	for _, f := range fds {
		byFd[f.Fd] = f
	}
	for _, o := range objs {
		if extra := o.Flags &^ (unix.O_ACCMODE | unix.O_NONBLOCK | unix.O_CLOEXEC | unix.O_LARGEFILE); extra != 0 {
			rs = append(rs, Reason{Unsupported, fmt.Sprintf("fd %d: %s with open flags %#o (only O_NONBLOCK and O_CLOEXEC are carried)", o.Fd, o.Kind, extra)})
		}
		next := int32(1)
		for _, w := range o.Inotify {
			if w.WD-next > maxInotifyGap {
				rs = append(rs, Reason{Unsupported, fmt.Sprintf("fd %d: inotify watch %d comes after %d freed numbers (a restore takes back at most %d)", o.Fd, w.WD, w.WD-next, maxInotifyGap)})
			}
			next = w.WD + 1
		}
		for _, w := range o.Watches {
			f, ok := byFd[w.Fd]
			switch {
			case !ok:
				rs = append(rs, Reason{Unsupported, fmt.Sprintf("fd %d: epoll watches fd %d, which is closed (the file is still open through another descriptor)", o.Fd, w.Fd)})
			case f.ID.Ino != 0 && w.ino != f.ID.Ino:
				rs = append(rs, Reason{Unsupported, fmt.Sprintf("fd %d: epoll watches fd %d as another file than the one open there now", o.Fd, w.Fd)})
			}
		}
	}
	return rs
}

// epollOrder returns the image's objects in the order a restore creates
// them: every object that is not an epoll instance first, then each epoll
// instance after the instances it watches. It fails on a watch that names
// an instance which never comes (a cycle or an image that lies).
func epollOrder(objs []KObject) ([]KObject, error) {
	var out, epolls []KObject
	for _, o := range objs {
		if o.Kind == ObjEpoll {
			epolls = append(epolls, o)
		} else {
			out = append(out, o)
		}
	}
	isEpoll := map[int]bool{}
	for _, o := range epolls {
		isEpoll[o.Fd] = true
	}
	made := map[int]bool{}
	for len(epolls) > 0 {
		var rest []KObject
		for _, o := range epolls {
			ready := true
			for _, w := range o.Watches {
				if isEpoll[w.Fd] && !made[w.Fd] {
					ready = false
				}
			}
			if ready {
				out = append(out, o)
				made[o.Fd] = true
			} else {
				rest = append(rest, o)
			}
		}
		if len(rest) == len(epolls) {
			return nil, fmt.Errorf("checkpoint: epoll fd %d: its watches form a cycle", rest[0].Fd)
		}
		epolls = rest
	}
	return out, nil
}

// fdOf returns a copy of descriptor fd of process pid (pidfd_getfd: the
// same open file); the caller closes it.
func fdOf(pid, fd int) (int, error) {
	pfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return -1, err
	}
	defer unix.Close(pfd)
	return unix.PidfdGetfd(pfd, fd, 0)
}

// isObject reports whether a /proc/PID/fd link names a kernel object the
// engine re-creates.
func isObject(target string) bool {
	_, ok := objKindOf(target)
	return ok
}

// statelessDevices are the character devices a restore reopens by path:
// reading or writing them depends on no state of the open file (mem
// driver, major 1). Each must be open by its usual name.
var statelessDevices = map[uint32]string{3: "/dev/null", 5: "/dev/zero", 7: "/dev/full", 8: "/dev/random", 9: "/dev/urandom"}

// statelessDevice reports whether the character device rdev, open as
// target, is one a restore reopens by path.
func statelessDevice(rdev uint64, target string) bool {
	if unix.Major(rdev) != 1 {
		return false
	}
	name, ok := statelessDevices[unix.Minor(rdev)]
	return ok && name == target
}

// readObjects reads the kernel objects among fds of process pid.
func readObjects(pid int, fds []fdView) ([]KObject, error) {
	var objs []KObject
	for _, f := range fds {
		k, ok := objKindOf(f.Target)
		if !ok {
			continue
		}
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/fdinfo/" + strconv.Itoa(f.Fd))
		if errors.Is(err, fs.ErrNotExist) {
			continue // closed meanwhile
		}
		if err != nil {
			return nil, err
		}
		o, err := parseObject(k, f.Fd, string(b))
		if err != nil {
			return nil, err
		}
		objs = append(objs, o)
	}
	return objs, nil
}

// readObjectRefusals reads the kernel objects of pid and returns what
// objectRefusals and inotifyRefusals say of them, and its inotify
// instances.
func readObjectRefusals(pid int, fds []fdView) ([]Reason, []KObject, error) {
	objs, err := readObjects(pid, fds)
	if err != nil {
		return nil, nil, err
	}
	var ins []KObject
	for _, o := range objs {
		if o.Kind == ObjInotify {
			ins = append(ins, o)
		}
	}
	return append(objectRefusals(objs, fds), inotifyRefusals(ins)...), ins, nil
}
