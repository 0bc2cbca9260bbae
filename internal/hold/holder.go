package hold

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ssi-cluster/ssi/internal/relink"
	"github.com/ssi-cluster/ssi/internal/rexec"
)

// Arg is the hidden subcommand under which the agent's binary runs as a
// holder: `ssi __hold SOCKET`.
const Arg = "__hold"

// The holder reads its Spec (JSON, to EOF) on specFD and writes its
// report (JSON report) on reportFD, then closes it.
const (
	specFD   = 3
	reportFD = 4
)

// outputGrace is how long, once the process ended, a pipe that stays
// open with nothing in it is waited for (a child the process left behind
// may hold it) before it is closed.
const outputGrace = 2 * time.Second

// report is the holder's answer to the agent that started it: empty when
// the process runs; else why not (Code and Msg: as a shell says it).
type report struct {
	Code int    `json:"code,omitempty"`
	Msg  string `json:"msg,omitempty"`
	Err  string `json:"err,omitempty"`
}

// Info is what a holder tells an agent that connects (THeld, JSON).
type Info struct {
	Spec   *rexec.Spec `json:"spec"`
	Holder int         `json:"holder"` // the holder's pid
	Pid    int         `json:"pid"`    // rexec.Proc.Pid: the tty's exec helper, or the command
	Cmd    int         `json:"cmd"`    // the command (its process group)
	// Passed is how many counted frames of input the agents passed on
	// to the process (TPassed): a re-adopting agent counts on from there.
	Passed int64 `json:"passed,omitempty"`
	// Files says which files come with this frame, in this order.
	Files fileMask `json:"files,omitempty"`
}

type fileMask uint8

const (
	fileStdin  fileMask = 1 << iota // the writing end of the stdin pipe
	fileStdinR                      // a copy of its reading end
	filePty                         // the pty's master
)

// Main is the holder's whole life; it never returns.
func Main(args []string) {
	if len(args) != 1 {
		fmt.Fprintln(os.Stderr, "usage: ssi "+Arg+" SOCKET (started by the agent)")
		os.Exit(2)
	}
	os.Exit(run(args[0]))
}

func run(path string) int {
	// Nothing inherited goes to the command (the report's pipe would be
	// kept open by it).
	unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC)
	rep := os.NewFile(reportFD, "report")
	fail := func(r report) int {
		json.NewEncoder(rep).Encode(r)
		rep.Close()
		return 1
	}
	f := os.NewFile(specFD, "spec")
	b, err := io.ReadAll(io.LimitReader(f, rexec.MaxData+1))
	f.Close()
	if err != nil {
		return fail(report{Err: "reading the run request: " + err.Error()})
	}
	spec, err := rexec.ParseSpec(b)
	if err != nil {
		return fail(report{Err: err.Error()})
	}
	os.Remove(path)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return fail(report{Err: err.Error()})
	}
	ln.SetUnlinkOnClose(false)
	os.Chmod(path, 0o600)
	exe, err := os.Executable()
	if err != nil {
		os.Remove(path)
		return fail(report{Err: err.Error()})
	}
	p, err := rexec.Start(spec, exe)
	if err != nil {
		os.Remove(path)
		var ee *rexec.ExecError
		if errors.As(err, &ee) {
			return fail(report{Code: ee.Code, Msg: ee.Msg})
		}
		return fail(report{Err: err.Error()})
	}
	h := newHolder(spec, p)
	json.NewEncoder(rep).Encode(report{})
	rep.Close()
	go h.watch()
	h.serve(ln)
	os.Remove(path)
	return 0
}

// holder is the state of a held process, under mu.
type holder struct {
	p    *rexec.Proc
	info Info

	mu   sync.Mutex
	cond *sync.Cond
	// out is the session's stream to its home from the process's start:
	// output, stops, continues, and the last frame (Exit, or Moved),
	// numbered from 1 (rexec's Counted frames) and kept until the home
	// acknowledges them (TAck, passed on by the agent).
	out      relink.Outbox
	sent     int64 // the last frame given to the connected agent
	eof      [2]bool
	final    bool         // the last frame is put
	moved    *rexec.Frame // the agent's Moved: the last frame instead of Exit
	movedSet chan struct{}
	// conn is the agent's connection, gen its number; replaying: the
	// agent asked for the frames after sent (TReplay).
	conn      *rexec.StreamConn
	gen       int
	replaying bool
	released  bool
	stdinDone bool // the agent closed stdin: the holder's copy is closed
}

// movedWait is how long a holder whose process was killed (SIGKILL)
// waits for the agent's Moved (a move's commit kills the source copy
// right after telling the holder; the two may cross) before it reports
// the process killed.
const movedWait = time.Second

func newHolder(spec *rexec.Spec, p *rexec.Proc) *holder {
	h := &holder{p: p, info: Info{Spec: spec, Holder: os.Getpid(), Pid: p.Pid, Cmd: p.Cmd}, movedSet: make(chan struct{})}
	h.cond = sync.NewCond(&h.mu)
	return h
}

// watch reads the output and waits for the process; once it ended and
// its output is read, its status (or the agent's Moved) is the last
// frame.
func (h *holder) watch() {
	var readers sync.WaitGroup
	for i, r := range []io.ReadCloser{h.p.Stdout, h.p.Stderr} {
		if r == nil {
			h.eof[i] = true
			continue
		}
		readers.Add(1)
		go func() { defer readers.Done(); h.read(i, r) }()
	}
	st := h.p.Wait(func(sig int) {
		h.put(rexec.Frame{Type: rexec.TStopped, Data: []byte{byte(sig)}})
	}, func() {
		h.put(rexec.Frame{Type: rexec.TContinued})
	})
	done := make(chan struct{})
	go func() { readers.Wait(); close(done) }()
wait:
	for {
		select {
		case <-done:
			break wait
		case <-time.After(outputGrace):
			if h.pipesIdle() {
				h.p.Close()
				<-done
				break wait
			}
		}
	}
	if st.Signal == int(unix.SIGKILL) {
		select {
		case <-h.movedSet:
		case <-time.After(movedWait):
		}
	}
	h.mu.Lock()
	last := rexec.JSON(rexec.TExit, st)
	if h.moved != nil {
		last = *h.moved
	}
	h.out.Put(last)
	h.final = true
	h.cond.Broadcast()
	h.mu.Unlock()
}

// pipesIdle reports whether no output waits in the process's pipes (a
// pipe still open is then held by something the process left behind).
func (h *holder) pipesIdle() bool {
	for i, r := range []io.ReadCloser{h.p.Stdout, h.p.Stderr} {
		f, ok := r.(*os.File)
		if !ok {
			continue
		}
		h.mu.Lock()
		eof := h.eof[i]
		h.mu.Unlock()
		if eof {
			continue
		}
		rc, err := f.SyscallConn()
		if err != nil {
			continue
		}
		n := 0
		rc.Control(func(fd uintptr) { n, _ = unix.IoctlGetInt(int(fd), unix.TIOCINQ) })
		if n > 0 {
			return false
		}
	}
	return true
}

// read reads stream i of the process, waiting while a window
// (relink.Outbox.Full) waits for the home's acknowledgement: the pipe then fills and the
// process's writes block, as on a slow terminal; nothing is dropped.
func (h *holder) read(i int, r io.Reader) {
	t := [2]rexec.Type{rexec.TStdout, rexec.TStderr}[i]
	buf := make([]byte, rexec.Chunk)
	for {
		h.mu.Lock()
		for h.out.Full() {
			h.cond.Wait()
		}
		h.mu.Unlock()
		n, err := r.Read(buf)
		h.mu.Lock()
		if n > 0 {
			// What the process wrote before a move's freeze is its
			// home's too, before Moved.
			h.out.Put(rexec.Frame{Type: t, Data: buf[:n]}) // copied
		}
		if err != nil {
			h.eof[i] = true
		}
		h.cond.Broadcast()
		h.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// put keeps a stop or a continue (not after a move's commit: the
// process is the target's then).
func (h *holder) put(f rexec.Frame) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.moved == nil && !h.final {
		h.out.Put(f)
		h.cond.Broadcast()
	}
}

// serve takes agents' connections, one at a time: a new one replaces
// the one before (an agent that restarted).
func (h *holder) serve(ln *net.UnixListener) {
	go func() {
		h.mu.Lock()
		for !h.released {
			h.cond.Wait()
		}
		h.mu.Unlock()
		ln.Close()
	}()
	for {
		uc, err := ln.AcceptUnix()
		if err != nil {
			h.mu.Lock()
			released := h.released
			h.mu.Unlock()
			if released {
				return
			}
			time.Sleep(100 * time.Millisecond)
			continue
		}
		if err := peerIsUs(uc); err != nil {
			uc.Close()
			continue
		}
		h.attach(uc)
	}
}

// attach makes uc the agent's connection: it is told Info, with the
// stdin files, and served.
func (h *holder) attach(uc *net.UnixConn) {
	c := rexec.NewStreamConn(uc, nil)
	h.mu.Lock()
	if h.conn != nil {
		h.conn.Close()
	}
	h.gen++
	gen := h.gen
	h.conn, h.replaying = c, false
	info := h.info
	var files []*os.File
	stdin, stdinR, pty := h.p.HeldFiles()
	if h.stdinDone {
		stdin, stdinR = nil, -1
	}
	if stdin != nil {
		info.Files |= fileStdin
		files = append(files, stdin)
	}
	if stdinR >= 0 {
		// A copy, closed once sent: a File of the holder's own
		// descriptor would close it when collected.
		if fd, err := unix.FcntlInt(uintptr(stdinR), unix.F_DUPFD_CLOEXEC, 0); err == nil {
			info.Files |= fileStdinR
			r := os.NewFile(uintptr(fd), "stdin-r")
			defer r.Close()
			files = append(files, r)
		}
	}
	if pty != nil {
		info.Files |= filePty
		files = append(files, pty)
	}
	h.mu.Unlock()
	if err := c.SendFiles(rexec.JSON(rexec.THeld, info), files...); err != nil {
		c.Close()
		return
	}
	go h.recv(c, gen)
	go h.send(c, gen)
}

// recv takes the agent's frames.
func (h *holder) recv(c *rexec.StreamConn, gen int) {
	defer h.drop(c, gen)
	for {
		f, err := c.Recv()
		if err != nil {
			return
		}
		h.mu.Lock()
		switch f.Type {
		case rexec.TReplay:
			// From what the home has; never before what it acknowledged
			// nor beyond what was put.
			h.sent, h.replaying = min(max(rexec.Ack(f), h.out.Base()), h.out.Last()), true
		case rexec.TAck:
			h.out.Ack(min(rexec.Ack(f), h.sent))
		case rexec.TPassed:
			h.info.Passed = max(h.info.Passed, rexec.Ack(f))
		case rexec.TMoving, rexec.TResume:
			if h.moved == nil && !h.final {
				h.out.Put(f)
			}
		case rexec.TMoved:
			if h.moved == nil && !h.final {
				m := rexec.Frame{Type: rexec.TMoved, Data: append([]byte(nil), f.Data...)}
				h.moved = &m
				close(h.movedSet)
			}
		case rexec.TStdinEOF:
			if !h.stdinDone {
				h.stdinDone = true
				h.p.CloseStdin()
			}
		case rexec.TRelease:
			if h.final {
				h.released = true
			}
		}
		h.cond.Broadcast()
		h.mu.Unlock()
	}
}

// drop forgets c if it is still the agent's connection.
func (h *holder) drop(c *rexec.StreamConn, gen int) {
	c.Close()
	h.mu.Lock()
	if h.gen == gen {
		h.conn, h.replaying = nil, false
		h.cond.Broadcast()
	}
	h.mu.Unlock()
}

// send sends the agent the frames after sent, once it asked (TReplay).
func (h *holder) send(c *rexec.StreamConn, gen int) {
	defer h.drop(c, gen)
	for {
		h.mu.Lock()
		var f rexec.Frame
		for {
			if h.gen != gen || h.released {
				h.mu.Unlock()
				return
			}
			if next, ok := h.out.Next(h.sent); h.replaying && ok {
				// A copy: the kept frame's buffer is reused once
				// acknowledged. (Not the list From copies: a
				// backlog of small frames would cost its square.)
				f = rexec.Frame{Type: next.Type, Data: append([]byte(nil), next.Data...)}
				h.sent++
				break
			}
			h.cond.Wait()
		}
		h.mu.Unlock()
		if c.Send(f) != nil {
			return
		}
	}
}
