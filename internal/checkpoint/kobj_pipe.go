package checkpoint

import (
	"encoding/binary"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// A pipe whose both ends the process holds (libuv's and Node's internal
// pipes, a self-pipe, a program that pipes to itself) has nothing outside
// the process: it moves with it. The dump reads what the pipe holds
// without taking it (tee(2) from a copy of the read end, got with
// pidfd_getfd) and its capacity; the restore makes a new pipe of that
// capacity, writes the contents into it (through /proc/PID/fd of the new
// process) and puts its ends at every number the old ones had, with
// their flags. A pipe with one end outside the process stays refused.

// pipeID returns the inode of a pipe:[N] link.
func pipeID(target string) (uint64, bool) {
	s, ok := strings.CutPrefix(target, "pipe:[")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseUint(strings.TrimSuffix(s, "]"), 10, 64)
	return n, err == nil && strings.HasSuffix(s, "]")
}

// innerPipes returns the pipes of fds both of whose ends the process
// holds (flags gives each descriptor's open flags).
func innerPipes(fds []fdView, flags map[int]uint32) map[uint64]bool {
	ends := map[uint64]int{} // 1: a read end seen, 2: a write end
	for _, f := range fds {
		if id, ok := pipeID(f.Target); ok {
			if flags[f.Fd]&unix.O_ACCMODE == unix.O_WRONLY {
				ends[id] |= 2
			} else {
				ends[id] |= 1
			}
		}
	}
	in := map[uint64]bool{}
	for id, e := range ends {
		if e == 3 {
			in[id] = true
		}
	}
	return in
}

// pipeFlags reads the open flags of the pipe descriptors of pid.
func pipeFlags(pid int, fds []fdView) (map[int]uint32, error) {
	flags := map[int]uint32{}
	for _, f := range fds {
		if _, ok := pipeID(f.Target); !ok {
			continue
		}
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/fdinfo/" + strconv.Itoa(f.Fd))
		if err != nil {
			continue // closed meanwhile
		}
		_, fl, err := parseFdinfo(string(b))
		if err != nil {
			return nil, err
		}
		flags[f.Fd] = fl
	}
	return flags, nil
}

// readPipe reads, without taking it, what the pipe at the read end fd of
// pid holds, and its capacity.
func readPipe(pid, fd int) (data []byte, size int, err error) {
	c, err := fdOf(pid, fd)
	if err != nil {
		return nil, 0, err
	}
	defer unix.Close(c)
	if size, err = unix.FcntlInt(uintptr(c), unix.F_GETPIPE_SZ, 0); err != nil {
		return nil, 0, err
	}
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		return nil, 0, err
	}
	defer unix.Close(p[0])
	defer unix.Close(p[1])
	if _, err := unix.FcntlInt(uintptr(p[1]), unix.F_SETPIPE_SZ, size); err != nil {
		return nil, 0, err
	}
	n, err := unix.Tee(c, p[1], size, unix.SPLICE_F_NONBLOCK)
	if err == unix.EAGAIN {
		return nil, size, nil // empty
	}
	if err != nil {
		return nil, 0, fmt.Errorf("tee: %w", err)
	}
	data = make([]byte, n)
	for got := 0; got < int(n); {
		k, err := unix.Read(p[0], data[got:])
		if err != nil {
			return nil, 0, err
		}
		got += k
	}
	return data, size, nil
}

// pipes makes the image's inner pipes again: one new pipe for each, its
// ends at every number of the old ones, one pipe at a time (its first
// numbers, the lowest free, are closed before the next is made). Each
// object is one descriptor; the read end's first carries the contents.
func (r *restorer) pipes(objs []KObject) error {
	groups := map[uint64][]KObject{}
	var order []uint64
	for _, o := range objs {
		if o.Kind == ObjPipe {
			if _, ok := groups[o.Pipe]; !ok {
				order = append(order, o.Pipe)
			}
			groups[o.Pipe] = append(groups[o.Pipe], o)
		}
	}
	for _, id := range order {
		if err := r.pipe(groups[id]); err != nil {
			return err
		}
	}
	return nil
}

// pipe makes one pipe and puts its ends at the numbers of ends.
func (r *restorer) pipe(ends []KObject) error {
	in := r.in
	if err := r.write(scratchStruct, make([]byte, 8)); err != nil {
		return err
	}
	if _, err := in.callOK(unix.SYS_PIPE2, r.scratch+scratchStruct, unix.O_CLOEXEC); err != nil {
		return fmt.Errorf("checkpoint: pipe2: %w", err)
	}
	b := make([]byte, 8)
	if _, err := r.mem.ReadAt(b, int64(r.scratch+scratchStruct)); err != nil {
		return err
	}
	le := binary.LittleEndian
	made := [2]uint64{uint64(le.Uint32(b)), uint64(le.Uint32(b[4:]))}
	// A new end at a number one of the old ends needs would be closed
	// by the dup3 there: both go above every number first.
	top, clash := 0, false
	for _, o := range ends {
		top = max(top, o.Fd)
		clash = clash || uint64(o.Fd) == made[0] || uint64(o.Fd) == made[1]
	}
	if clash {
		for i, fd := range made {
			n, err := in.callOK(unix.SYS_FCNTL, fd, unix.F_DUPFD_CLOEXEC, uint64(top+1))
			in.call(unix.SYS_CLOSE, fd)
			if err != nil {
				in.call(unix.SYS_CLOSE, made[1-i])
				return fmt.Errorf("checkpoint: move a new pipe: %w", err)
			}
			made[i] = n
		}
	}
	defer func() {
		for _, fd := range made {
			in.call(unix.SYS_CLOSE, fd)
		}
	}()
	for _, o := range ends {
		if o.PipeSize > 0 {
			if _, err := in.callOK(unix.SYS_FCNTL, made[1], unix.F_SETPIPE_SZ, uint64(o.PipeSize)); err != nil {
				return fmt.Errorf("checkpoint: F_SETPIPE_SZ %d: %w", o.PipeSize, err)
			}
		}
		if len(o.Data) > 0 {
			if err := r.fillPipe(made[1], o.Data); err != nil {
				return err
			}
		}
	}
	for _, o := range ends {
		w := 0
		if o.Flags&unix.O_ACCMODE == unix.O_WRONLY {
			w = 1
		}
		if _, err := in.callOK(unix.SYS_DUP3, made[w], uint64(o.Fd), uint64(o.Flags&unix.O_CLOEXEC)); err != nil {
			return fmt.Errorf("checkpoint: dup3 pipe to %d: %w", o.Fd, err)
		}
		if o.Flags&unix.O_NONBLOCK != 0 {
			if _, err := in.callOK(unix.SYS_FCNTL, uint64(o.Fd), unix.F_SETFL, unix.O_NONBLOCK); err != nil {
				return fmt.Errorf("checkpoint: fcntl pipe %d: %w", o.Fd, err)
			}
		}
	}
	return nil
}

// fillPipe writes data into the new process's pipe at its descriptor w,
// from outside (a pipe reopened through /proc is the same pipe).
func (r *restorer) fillPipe(w uint64, data []byte) error {
	f, err := os.OpenFile(fmt.Sprintf("/proc/%d/fd/%d", r.in.pid, w), os.O_WRONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		return fmt.Errorf("checkpoint: open the new pipe: %w", err)
	}
	defer f.Close()
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("checkpoint: fill the new pipe: %w", err)
	}
	return nil
}
