package checkpoint

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// The sections of image format version 5: kernel objects and the
// process's attributes. A dump always has attributes: an agent that reads
// only version 4 refuses its images (ErrVersion), and the move with them.

// encodeObjects writes the objects section.
func (img *Image) encodeObjects(e *enc) {
	e.u32(uint32(len(img.Objects)))
	for _, o := range img.Objects {
		e.u32(uint32(o.Fd))
		e.u8(uint8(o.Kind))
		e.u32(o.Flags)
		switch o.Kind {
		case ObjEventfd:
			e.u64(o.Count)
			e.u8(b2u8(o.Semaphore))
		case ObjTimerfd:
			e.u32(uint32(o.Clock))
			e.u32(o.TimerFlags)
			e.u64(uint64(o.Value))
			e.u64(uint64(o.Interval))
			e.u64(o.Ticks)
		case ObjSignalfd:
			e.u64(o.SigMask)
		case ObjEpoll:
			e.u32(uint32(len(o.Watches)))
			for _, w := range o.Watches {
				e.u32(uint32(w.Fd))
				e.u32(w.Events)
				e.u64(w.Data)
			}
		case ObjUnixPair:
			e.u64(o.Sock)
			e.u64(o.Peer)
			e.bytes(o.Data)
		case ObjPipe:
			e.u64(o.Pipe)
			e.u32(o.PipeSize)
			e.bytes(o.Data)
		case ObjDeleted:
			e.u64(uint64(o.Offset))
			e.u32(o.Mode)
			e.u32(o.Uid)
			e.u32(o.Gid)
			e.str(o.Path)
			e.bytes(o.Data)
		case ObjInotify:
			e.u32(uint32(len(o.Inotify)))
			for _, w := range o.Inotify {
				e.u32(uint32(w.WD))
				e.u32(w.Mask)
				e.u64(w.Ino)
				e.u64(w.Dev)
				e.str(w.Path)
			}
		}
	}
}

// timerfdClocks are the clocks timerfd_create accepts.
var timerfdClocks = []int32{0, 1, 7, 8, 9} // REALTIME, MONOTONIC, BOOTTIME, REALTIME_ALARM, BOOTTIME_ALARM

// decodeObjects reads the objects section: in ascending fd order, none at
// the number of a file or an external descriptor, each of a known kind
// with values the kernel could have reported.
func (img *Image) decodeObjects(d *dec) {
	n := d.count(9)
	deleted := 0 // bytes of deleted files' contents
	for range n {
		o := KObject{Fd: int(d.u32()), Kind: ObjKind(d.u8()), Flags: d.u32()}
		switch o.Kind {
		case ObjEventfd:
			o.Count = d.u64()
			sem := d.u8()
			o.Semaphore = sem == 1
			if d.err == nil && (sem > 1 || o.Count == 1<<64-1) {
				d.err = fmt.Errorf("eventfd at fd %d: bad counter or mode", o.Fd)
			}
		case ObjTimerfd:
			o.Clock, o.TimerFlags = int32(d.u32()), d.u32()
			o.Value, o.Interval, o.Ticks = time.Duration(d.u64()), time.Duration(d.u64()), d.u64()
			if d.err == nil && (!slices.Contains(timerfdClocks, o.Clock) || o.TimerFlags&^(tfdTimerAbstime|tfdTimerCancelOnSet) != 0 ||
				o.Value < 0 || o.Interval < 0) {
				d.err = fmt.Errorf("timerfd at fd %d: bad clock, flags or times", o.Fd)
			}
		case ObjSignalfd:
			o.SigMask = d.u64()
		case ObjEpoll:
			m := d.count(16)
			for range m {
				w := EpollWatch{Fd: int(d.u32()), Events: d.u32(), Data: d.u64()}
				if d.err == nil && (w.Fd > maxFd || w.Fd == o.Fd) {
					d.err = fmt.Errorf("epoll at fd %d: watch of fd %d", o.Fd, w.Fd)
				}
				o.Watches = append(o.Watches, w)
			}
		case ObjInotify:
			m := d.count(28)
			for range m {
				w := InotifyWatch{WD: int32(d.u32()), Mask: d.u32(), Ino: d.u64(), Dev: d.u64(), Path: d.str()}
				if d.err == nil && (w.WD <= 0 || len(o.Inotify) > 0 && w.WD <= o.Inotify[len(o.Inotify)-1].WD ||
					!strings.HasPrefix(w.Path, "/") || len(w.Path) > maxRestorePath || strings.IndexByte(w.Path, 0) >= 0) {
					d.err = fmt.Errorf("inotify at fd %d: watch %d of %q", o.Fd, w.WD, w.Path)
				}
				o.Inotify = append(o.Inotify, w)
			}
		case ObjUnixPair:
			o.Sock, o.Peer, o.Data = d.u64(), d.u64(), d.bytes()
			if d.err == nil && (o.Sock == o.Peer || len(o.Data) > 16<<20) {
				d.err = fmt.Errorf("socketpair end at fd %d: socket %d, peer %d, %d bytes", o.Fd, o.Sock, o.Peer, len(o.Data))
			}
		case ObjPipe:
			o.Pipe, o.PipeSize, o.Data = d.u64(), d.u32(), d.bytes()
			if d.err == nil && (len(o.Data) > 1<<20 || o.PipeSize > 1<<30 || len(o.Data) > 0 && len(o.Data) > int(o.PipeSize)) {
				d.err = fmt.Errorf("pipe at fd %d: %d bytes in a pipe of %d", o.Fd, len(o.Data), o.PipeSize)
			}
		case ObjDeleted:
			o.Offset, o.Mode, o.Uid, o.Gid, o.Path, o.Data = int64(d.u64()), d.u32(), d.u32(), d.u32(), d.str(), d.bytes()
			deleted += len(o.Data)
			if d.err == nil && (o.Offset < 0 || o.Mode > 0o7777 || !strings.HasPrefix(o.Path, "/") ||
				strings.IndexByte(o.Path, 0) >= 0 || deleted > maxDeletedBytes) {
				d.err = fmt.Errorf("deleted file at fd %d: %q, offset %d, mode %#o, %d bytes", o.Fd, o.Path, o.Offset, o.Mode, len(o.Data))
			}
		default:
			if d.err == nil {
				d.err = fmt.Errorf("object at fd %d: unknown kind %d", o.Fd, o.Kind)
			}
		}
		switch {
		case d.err != nil:
			return
		case o.Fd > maxFd:
			d.err = fmt.Errorf("object fd %d out of range", o.Fd)
		case len(img.Objects) > 0 && o.Fd <= img.Objects[len(img.Objects)-1].Fd:
			d.err = fmt.Errorf("object fd %d out of order", o.Fd)
		case slices.ContainsFunc(img.Files, func(f File) bool { return f.Fd == o.Fd }),
			slices.ContainsFunc(img.External, func(x ExternalFile) bool { return x.Fd == o.Fd }):
			d.err = fmt.Errorf("object fd %d is also a file", o.Fd)
		}
		if d.err != nil {
			return
		}
		img.Objects = append(img.Objects, o)
	}
	if d.err == nil {
		if _, err := epollOrder(img.Objects); err != nil {
			d.err = err
		}
	}
}

func (img *Image) encodeAttrs(e *enc) {
	a := img.Attrs
	if a == nil {
		a = &ProcAttrs{LoginUID: NoLoginUID, Dumpable: 1} // objects without attributes: a test's image
	}
	e.u32(uint32(a.OOMScoreAdj))
	e.u32(a.LoginUID)
	e.u32(a.Personality)
	e.u32(a.Dumpable)
	e.u8(b2u8(a.THPDisable) | b2u8(a.ChildSubreaper)<<1 | b2u8(a.NoNewPrivs)<<2)
	e.u32(a.Membarrier)
	e.u32(uint32(len(a.Advice)))
	for _, m := range a.Advice {
		e.u64(m.Start)
		e.u64(m.End)
		e.u32(m.Flags)
	}
	e.u32(uint32(len(a.Timers)))
	for _, t := range a.Timers {
		for _, v := range []int32{t.ID, t.Clock, t.Notify, t.Signo, t.Tid} {
			e.u32(uint32(v))
		}
		e.u64(t.Value)
		e.u64(uint64(t.Left))
		e.u64(uint64(t.Interval))
	}
}

// decodeAttrs reads the attrs section: values the kernel could have
// reported, advice in ascending order of mappings that do not overlap.
// Defaults decode to a nil Attrs.
func (img *Image) decodeAttrs(d *dec) {
	a := &ProcAttrs{OOMScoreAdj: int32(d.u32()), LoginUID: d.u32(), Personality: d.u32(), Dumpable: d.u32()}
	bits := d.u8()
	a.THPDisable, a.ChildSubreaper, a.NoNewPrivs = bits&1 != 0, bits&2 != 0, bits&4 != 0
	a.Membarrier = d.u32()
	n := d.count(20)
	for range n {
		m := MapAdvice{Start: d.u64(), End: d.u64(), Flags: d.u32()}
		switch {
		case d.err != nil:
			return
		case m.Start >= m.End || m.End > maxUserAddr || m.Start%page != 0 || m.End%page != 0:
			d.err = fmt.Errorf("advice for bad range %#x-%#x", m.Start, m.End)
		case len(a.Advice) > 0 && m.Start < a.Advice[len(a.Advice)-1].End:
			d.err = fmt.Errorf("advice for %#x-%#x out of order", m.Start, m.End)
		case m.Flags == 0 || m.Flags&^advAll != 0:
			d.err = fmt.Errorf("advice %#x for %#x-%#x", m.Flags, m.Start, m.End)
		}
		if d.err != nil {
			return
		}
		a.Advice = append(a.Advice, m)
	}
	n = d.count(44)
	for range n {
		t := PosixTimer{ID: int32(d.u32()), Clock: int32(d.u32()), Notify: int32(d.u32()), Signo: int32(d.u32()), Tid: int32(d.u32()),
			Value: d.u64(), Left: time.Duration(d.u64()), Interval: time.Duration(d.u64())}
		switch {
		case d.err != nil:
			return
		case t.ID < 0 || len(a.Timers) > 0 && t.ID <= a.Timers[len(a.Timers)-1].ID:
			d.err = fmt.Errorf("timer %d out of order", t.ID)
		case t.Notify&^sigevThreadID > sigevThread || t.Signo < 0 || t.Signo > 64 || t.Left < 0 || t.Interval < 0:
			d.err = fmt.Errorf("timer %d: notify %d, signal %d, times %v/%v", t.ID, t.Notify, t.Signo, t.Left, t.Interval)
		}
		if d.err != nil {
			return
		}
		a.Timers = append(a.Timers, t)
	}
	switch {
	case d.err != nil:
		return
	case a.OOMScoreAdj < -1000 || a.OOMScoreAdj > 1000:
		d.err = fmt.Errorf("oom_score_adj %d", a.OOMScoreAdj)
	case a.Dumpable > 2:
		d.err = fmt.Errorf("dumpable %d", a.Dumpable)
	case bits > 7:
		d.err = fmt.Errorf("attribute bits %#x", bits)
	case a.Membarrier&^membarrierRegisterAll != 0:
		d.err = fmt.Errorf("membarrier registrations %#x", a.Membarrier)
	}
	if d.err == nil {
		img.Attrs = a
	}
}
