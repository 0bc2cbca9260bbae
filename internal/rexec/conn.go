package rexec

import (
	"bufio"
	"encoding/binary"
	"io"
	"net"
	"sync"
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
func NewStreamConn(rw io.ReadWriter, br *bufio.Reader) *StreamConn {
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

// Recv reads the next frame.
func (c *StreamConn) Recv() (Frame, error) { return c.r.Read() }
