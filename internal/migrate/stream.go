package migrate

import (
	"encoding/binary"
	"fmt"
	"io"
	"sync"
)

// StreamConn is a Conn over a byte stream (the CLI's upgraded
// connection to its agent, for ssi checkpoint).
type StreamConn struct {
	mu  sync.Mutex
	w   io.Writer
	r   io.Reader
	hdr [headerLen]byte
}

// NewStreamConn carries messages on w and r (buffer r yourself).
func NewStreamConn(w io.Writer, r io.Reader) *StreamConn { return &StreamConn{w: w, r: r} }

// Send writes m.
func (c *StreamConn) Send(m Msg) error {
	b, err := m.MarshalBinary()
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	_, err = c.w.Write(b)
	return err
}

// Recv reads the next message; io.EOF at a clean end between messages.
func (c *StreamConn) Recv() (Msg, error) {
	if _, err := io.ReadFull(c.r, c.hdr[:]); err != nil {
		if err == io.ErrUnexpectedEOF {
			return Msg{}, fmt.Errorf("%w: stream ended inside a header", ErrCorrupt)
		}
		return Msg{}, err
	}
	n := binary.LittleEndian.Uint32(c.hdr[1:])
	if n > MaxData {
		return Msg{}, fmt.Errorf("%w: payload of %d bytes exceeds %d", ErrCorrupt, n, MaxData)
	}
	b := make([]byte, headerLen+int(n))
	copy(b, c.hdr[:])
	if _, err := io.ReadFull(c.r, b[headerLen:]); err != nil {
		return Msg{}, fmt.Errorf("%w: stream ended inside a payload: %v", ErrCorrupt, err)
	}
	var m Msg
	return m, m.UnmarshalBinary(b)
}
