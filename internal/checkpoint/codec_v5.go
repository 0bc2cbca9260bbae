package checkpoint

import (
	"fmt"
	"slices"
	"time"
)

// The section of image format version 5: kernel objects. An image without
// objects is written as version 4, so that an agent that reads only
// version 4 still takes every image it could restore.

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
