package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ssi-cluster/ssi/internal/relink"
	"github.com/ssi-cluster/ssi/internal/rexec"
	"github.com/ssi-cluster/ssi/internal/vproc"
)

// Passed stdio: a deputy passes files with its start frame (SCM_RIGHTS)
// for the home agent to write the process's output into itself, not as
// frames on the deputy's socket: for a stdout or stderr that is a pipe
// or a file, a pipe of the deputy's own, which it copies out (so that
// what the agent wrote outlives the agent: internal/deputy, sink.go);
// /dev/null as it is. A deputy of a version before Spec.Exact passes its
// stdin and its stdout and stderr themselves; they are still taken. A
// terminal stays with the deputy (job control, raw mode, foreground), and
// so does any other device (a read or a write of one could keep the agent
// waiting for ever).

// passedStdio are the streams a deputy passed; nil ones go through it.
type passedStdio struct {
	in, out, err *os.File
}

// openPassed takes the files a deputy passed for mask, in order: a pipe
// is opened again (a description of its own, non-blocking, so that the
// agent never waits on it once the run is over and never changes the
// caller's); a regular file or /dev/null is used as it is (its offset is
// the caller's, as it would be for a local process). The passed files
// are closed or kept: the caller need not close them.
func openPassed(mask rexec.StdioMask, files []*os.File) (*passedStdio, error) {
	ps := &passedStdio{}
	if mask.Count() != len(files) {
		closeAll(files)
		return nil, fmt.Errorf("the deputy named %d streams and passed %d", mask.Count(), len(files))
	}
	slots := []struct {
		bit  rexec.StdioMask
		dst  **os.File
		mode int
	}{{rexec.PassStdin, &ps.in, unix.O_RDONLY}, {rexec.PassStdout, &ps.out, unix.O_WRONLY}, {rexec.PassStderr, &ps.err, unix.O_WRONLY}}
	i := 0
	for _, s := range slots {
		if mask&s.bit == 0 {
			continue
		}
		f, err := usable(files[i], s.mode)
		if err != nil {
			closeAll(files[i+1:])
			ps.close()
			return nil, err
		}
		*s.dst = f
		i++
	}
	if mask&rexec.StderrToStdout != 0 && ps.err == nil {
		ps.err = ps.out // nil if stdout was not passed either
	}
	return ps, nil
}

// usable returns f, or f opened again if it is a pipe (f is then closed).
func usable(f *os.File, mode int) (*os.File, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		f.Close()
		return nil, err
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		return f, nil
	case unix.S_IFCHR:
		if _, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS); err == nil {
			f.Close()
			return nil, errors.New("a terminal is not passed: it stays with the deputy")
		}
		if !rexec.IsDevNull(&st) {
			f.Close()
			return nil, errors.New("a device other than /dev/null is not passed")
		}
		return f, nil
	case unix.S_IFIFO:
		fd, err := unix.Open("/proc/self/fd/"+strconv.Itoa(int(f.Fd())), mode|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("opening the passed pipe: %v", err)
		}
		return os.NewFile(uintptr(fd), "pipe"), nil // non-blocking: pollable
	}
	f.Close()
	return nil, fmt.Errorf("a passed stream of mode %#o is not a pipe, a file or /dev/null", st.Mode&unix.S_IFMT)
}

func closeAll(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
}

func (ps *passedStdio) close() {
	if ps == nil {
		return
	}
	for _, f := range []*os.File{ps.in, ps.out, ps.err} {
		if f != nil {
			f.Close()
		}
	}
}

// output is where a stream of the process goes: a passed file, or nil
// (to the deputy).
func (ps *passedStdio) output(t rexec.Type) *os.File {
	switch {
	case ps == nil:
		return nil
	case t == rexec.TStdout:
		return ps.out
	case t == rexec.TStderr:
		return ps.err
	}
	return nil
}

// pumpStdin sends the passed stdin to the process until its end (or
// until the run is over and ps is closed).
func (ps *passedStdio) pumpStdin(in *relink.Input) {
	buf := make([]byte, rexec.Chunk)
	for {
		n, err := ps.in.Read(buf)
		if n > 0 && in.Pass(rexec.Frame{Type: rexec.TStdin, Data: buf[:n]}) != nil {
			return
		}
		if err != nil {
			in.Pass(rexec.Frame{Type: rexec.TStdinEOF})
			return
		}
	}
}

// passedOutput writes one output frame of the run cpid (uid's) to w;
// once w's reader is gone, the process gets SIGPIPE, as a local one
// writing there would, and its output is dropped (broken reports that).
func (a *Agent) passedOutput(ctx context.Context, w *os.File, f rexec.Frame, cpid int64, uid int, broken *bool) {
	if *broken {
		return
	}
	n, err := w.Write(f.Data)
	switch {
	case errors.Is(err, syscall.EPIPE):
		*broken = true
		go func() {
			ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			a.signal(ctx, vproc.CPID(cpid), false, int(unix.SIGPIPE), a.local(uid))
		}()
	case err != nil:
		// Not a reader gone: output is lost here; say so.
		a.metrics.lostOutput.Add(float64(len(f.Data) - n))
		a.log.Warn("writing a remote process's output to its deputy's stdout failed; output lost",
			"cpid", showCPID(cpid), "bytes", len(f.Data)-n, "err", err)
	}
}

// readerOf reads first, then rest.
func readerOf(first []byte, rest io.Reader) io.Reader {
	return io.MultiReader(bytes.NewReader(first), rest)
}
