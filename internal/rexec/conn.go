package rexec

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"sync"

	"golang.org/x/sys/unix"
)

// Conn carries frames. Send may be called from several goroutines; Recv
// from one. A received frame's Data is valid until the next Recv.
type Conn interface {
	Send(Frame) error
	Recv() (Frame, error)
}

// StreamConn is a Conn over a byte stream (the deputy's Unix socket).
type StreamConn struct {
	mu sync.Mutex
	w  io.Writer
	r  *Reader
}

// NewStreamConn frames rw. br, if not nil, holds bytes already read from
// rw (after an HTTP upgrade); rw is then read through it.
func NewStreamConn(rw io.ReadWriter, br io.Reader) *StreamConn {
	var r io.Reader = rw
	if br != nil {
		r = br
	}
	return &StreamConn{w: rw, r: NewReader(r)}
}

// Send writes f as one gathered write (header and payload, no copy).
func (c *StreamConn) Send(f Frame) error {
	var hdr [headerLen]byte
	hdr[0] = byte(f.Type)
	binary.LittleEndian.PutUint32(hdr[1:], uint32(len(f.Data)))
	c.mu.Lock()
	defer c.mu.Unlock()
	bufs := net.Buffers{hdr[:], f.Data}
	_, err := bufs.WriteTo(c.w)
	return err
}

// Close closes the underlying stream, if it can be closed.
func (c *StreamConn) Close() error {
	if cl, ok := c.w.(io.Closer); ok {
		return cl.Close()
	}
	return nil
}

// SendFiles writes f with files attached (SCM_RIGHTS): the connection
// must be a Unix socket, and the receiver must read f's first bytes with
// recvmsg (ReadFiles).
func (c *StreamConn) SendFiles(f Frame, files ...*os.File) error {
	if len(files) == 0 {
		return c.Send(f)
	}
	uc, ok := c.w.(*net.UnixConn)
	if !ok {
		return errors.New("rexec: files pass only over a Unix socket")
	}
	// The descriptors are read without File.Fd, which would make them
	// blocking (for every holder of the same pipe: the sender's own
	// writes could then no longer be cut short by a deadline).
	fds := make([]int, len(files))
	for i, file := range files {
		rc, err := file.SyscallConn()
		if err != nil {
			return err
		}
		rc.Control(func(fd uintptr) { fds[i] = int(fd) })
	}
	b, _ := f.MarshalBinary()
	c.mu.Lock()
	defer c.mu.Unlock()
	n, _, err := uc.WriteMsgUnix(b, unix.UnixRights(fds...), nil)
	if err == nil && n < len(b) {
		_, err = uc.Write(b[n:])
	}
	for _, file := range files {
		runtime.KeepAlive(file)
	}
	return err
}

// IsDevNull reports whether st is /dev/null's: the one device a deputy
// passes to its agent (another could block a read or a write for ever).
func IsDevNull(st *unix.Stat_t) bool {
	return st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == unix.Mkdev(1, 3)
}

// ReadFiles reads the first bytes waiting on uc with recvmsg and returns
// them with the files that came along (at most max; any more are
// closed).
func ReadFiles(uc *net.UnixConn, max int) ([]byte, []*os.File, error) {
	buf := make([]byte, 64<<10)
	oob := make([]byte, unix.CmsgSpace(4*max))
	n, oobn, flags, _, err := uc.ReadMsgUnix(buf, oob)
	if err != nil {
		return nil, nil, err
	}
	var files []*os.File
	msgs, perr := unix.ParseSocketControlMessage(oob[:oobn])
	for _, m := range msgs {
		fds, err := unix.ParseUnixRights(&m)
		if err != nil {
			continue
		}
		for _, fd := range fds {
			if len(files) < max {
				files = append(files, os.NewFile(uintptr(fd), "passed"))
			} else {
				unix.Close(fd)
			}
		}
	}
	if flags&unix.MSG_CTRUNC != 0 || perr != nil {
		for _, f := range files {
			f.Close()
		}
		return nil, nil, fmt.Errorf("rexec: the files passed with the request were cut short (%v)", perr)
	}
	return buf[:n], files, nil
}

// Recv reads the next frame.
func (c *StreamConn) Recv() (Frame, error) { return c.r.Read() }
