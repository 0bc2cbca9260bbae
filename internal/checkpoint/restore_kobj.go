package checkpoint

import (
	"encoding/binary"
	"fmt"
	"math"
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
	for i := range order {
		o := &order[i]
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
