package checkpoint

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// POSIX timers (timer_create) are listed in /proc/PID/timers with their
// id, signal, value, notification and clock; the dump asks the process
// for each one's time left and period (timer_gettime, injected). The
// restore creates them again with their ids (PR_TIMER_CREATE_RESTORE_IDS,
// Linux 6.14: timer_create then takes the id it is given), a notification
// to the same thread, and arms them. Not carried: a timer's overrun count
// (timer_getoverrun starts at 0 again); a timer on the process's own
// CPU-time clock counts from the CPU time the new process has used.
// Refused: a timer on the CPU-time clock of another process or of a
// thread (whose ids change with the move), and any timer where the
// kernel cannot restore ids.

// PosixTimer is one timer of timer_create(2).
type PosixTimer struct {
	ID       int32
	Clock    int32
	Notify   int32  // SIGEV_SIGNAL, SIGEV_NONE, SIGEV_THREAD; | SIGEV_THREAD_ID (4)
	Signo    int32  // the signal it sends
	Value    uint64 // sigev_value
	Tid      int32  // with SIGEV_THREAD_ID, the thread it signals (its id at the dump)
	Left     time.Duration
	Interval time.Duration
}

const (
	sigevSignal   = 0
	sigevNone     = 1
	sigevThread   = 2
	sigevThreadID = 4

	prTimerCreateRestoreIDs = 0x4d
)

// parseTimers reads /proc/PID/timers.
func parseTimers(text string) ([]PosixTimer, error) {
	var ts []PosixTimer
	var cur *PosixTimer
	for line := range strings.Lines(text) {
		k, v, ok := strings.Cut(strings.TrimRight(line, "\n"), ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		if k == "ID" {
			id, err := strconv.ParseInt(v, 10, 32)
			if err != nil || id < 0 {
				return nil, fmt.Errorf("timers: ID %q", v)
			}
			ts = append(ts, PosixTimer{ID: int32(id)})
			cur = &ts[len(ts)-1]
			continue
		}
		if cur == nil {
			return nil, fmt.Errorf("timers: %s before an ID", k)
		}
		var err error
		switch k {
		case "signal": // "35/0000000000001234"
			sig, val, ok := strings.Cut(v, "/")
			var s int64
			if s, err = strconv.ParseInt(sig, 10, 32); err == nil && ok {
				cur.Signo = int32(s)
				cur.Value, err = strconv.ParseUint(val, 16, 64)
			} else if err == nil {
				err = errors.New("no value")
			}
		case "notify": // "signal/pid.123", "none/pid.123", "thread/tid.124"
			how, who, ok := strings.Cut(v, "/")
			n := map[string]int32{"signal": sigevSignal, "none": sigevNone, "thread": sigevThread}
			nv, known := n[how]
			kind, id, ok2 := strings.Cut(who, ".")
			if !ok || !known || !ok2 || kind != "pid" && kind != "tid" {
				err = errors.New("unknown form")
				break
			}
			cur.Notify = nv
			if kind == "tid" {
				cur.Notify |= sigevThreadID
				var t int64
				t, err = strconv.ParseInt(id, 10, 32)
				cur.Tid = int32(t)
			}
		case "ClockID":
			var c int64
			c, err = strconv.ParseInt(v, 10, 32)
			cur.Clock = int32(c)
		}
		if err != nil {
			return nil, fmt.Errorf("timers: %s %q: %v", k, v, err)
		}
	}
	return ts, nil
}

// readTimers reads the timers of the process dir; none where the kernel
// has no /proc/PID/timers (no CONFIG_CHECKPOINT_RESTORE).
func readTimers(dir string) ([]PosixTimer, error) {
	b, err := os.ReadFile(dir + "/timers")
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return parseTimers(string(b))
}

// timerRefusals says what of ts a restore could not give back.
func timerRefusals(ts []PosixTimer, canRestoreIDs bool) []Reason {
	var rs []Reason
	for _, t := range ts {
		switch {
		case otherCPUClock(t.Clock):
			rs = append(rs, Reason{Timers, fmt.Sprintf("POSIX timer %d runs on the CPU-time clock of a thread or of another process (clock %d): not carried", t.ID, t.Clock)})
		case !canRestoreIDs:
			rs = append(rs, Reason{Timers, fmt.Sprintf("POSIX timer %d: this kernel cannot give a timer its id back (PR_TIMER_CREATE_RESTORE_IDS, Linux 6.14)", t.ID)})
		}
	}
	return rs
}

// otherCPUClock reports whether clock, as /proc/PID/timers shows it, is
// the CPU-time clock of a thread, or of a process other than the timer's
// own (the kernel's encoding: ~pid << 3, 4 for a thread, and the kind).
// The process's own (pid 0) is created again as it was.
func otherCPUClock(clock int32) bool {
	if clock >= 0 {
		return false
	}
	pid := ^(clock >> 3)
	return clock&4 != 0 || pid != 0
}

// timerIDs reports whether this kernel has PR_TIMER_CREATE_RESTORE_IDS
// (asked of ourselves, once).
var timerIDs = sync.OnceValue(func() bool {
	_, err := unix.PrctlRetInt(prTimerCreateRestoreIDs, 2, 0, 0, 0) // _GET
	return err == nil
})

// queryTimers asks the process, by injected timer_gettime, each timer's
// time left and period.
func queryTimers(in *injector, buf uint64, read func(off uint64, n int) ([]byte, error), ts []PosixTimer) error {
	le := binary.LittleEndian
	for i := range ts {
		t := &ts[i]
		if _, err := in.callOK(unix.SYS_TIMER_GETTIME, uint64(t.ID), buf+2048); err != nil {
			return fmt.Errorf("checkpoint: timer_gettime %d: %w", t.ID, err)
		}
		b, err := read(2048, 32)
		if err != nil {
			return err
		}
		ts := func(b []byte) time.Duration {
			return time.Duration(le.Uint64(b))*time.Second + time.Duration(le.Uint64(b[8:]))
		}
		t.Interval, t.Left = ts(b), ts(b[16:])
	}
	return nil
}

// timers creates the image's timers again, with their ids, and arms
// them. tids maps a thread id of the dump to the thread's id now. It runs
// after the threads are made (a timer may signal one of them).
func (r *restorer) timers(ts []PosixTimer, tids map[int32]int32) error {
	if len(ts) == 0 {
		return nil
	}
	in, le := r.in, binary.LittleEndian
	if _, err := in.callOK(unix.SYS_PRCTL, prTimerCreateRestoreIDs, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("checkpoint: PR_TIMER_CREATE_RESTORE_IDS: %w", err)
	}
	for _, t := range ts {
		tid := t.Tid
		if n, ok := tids[tid]; ok {
			tid = n
		}
		// struct sigevent: sigval, signo, notify, then the union (_tid
		// first); 64 bytes. The id asked for follows it.
		ev := make([]byte, 64)
		le.PutUint64(ev, t.Value)
		le.PutUint32(ev[8:], uint32(t.Signo))
		le.PutUint32(ev[12:], uint32(t.Notify))
		le.PutUint32(ev[16:], uint32(tid))
		ev = le.AppendUint32(ev, uint32(t.ID))
		if err := r.write(scratchStruct, ev); err != nil {
			return err
		}
		if _, err := in.callOK(unix.SYS_TIMER_CREATE, uint64(t.Clock), r.scratch+scratchStruct, r.scratch+scratchStruct+64); err != nil {
			return fmt.Errorf("checkpoint: timer_create %d: %w", t.ID, err)
		}
		b := make([]byte, 4)
		if _, err := r.mem.ReadAt(b, int64(r.scratch+scratchStruct+64)); err != nil {
			return err
		}
		if got := int32(le.Uint32(b)); got != t.ID {
			return fmt.Errorf("checkpoint: timer %d came back as %d", t.ID, got)
		}
		if t.Left == 0 {
			continue // disarmed
		}
		var its []byte
		for _, d := range []time.Duration{t.Interval, t.Left} {
			its = le.AppendUint64(its, uint64(d/time.Second))
			its = le.AppendUint64(its, uint64(d%time.Second))
		}
		if err := r.write(scratchStruct, its); err != nil {
			return err
		}
		if _, err := in.callOK(unix.SYS_TIMER_SETTIME, uint64(t.ID), 0, r.scratch+scratchStruct, 0); err != nil {
			return fmt.Errorf("checkpoint: timer_settime %d: %w", t.ID, err)
		}
	}
	_, err := in.callOK(unix.SYS_PRCTL, prTimerCreateRestoreIDs, 0, 0, 0, 0)
	return err
}
