package migrate

import (
	"encoding/binary"
	"fmt"
	"io"
)

// Conn carries messages. Send may be called from one goroutine at a time,
// Recv likewise. A received message's Data is its own.
type Conn interface {
	Send(Msg) error
	Recv() (Msg, error)
}

// ImageWriter sends what is written to it as Image messages of up to
// Chunk bytes; runs of zero blocks (ZeroBlock bytes each, counted from
// the start of the stream: untouched memory, thread stacks) go as Zeros
// messages instead. Close sends the rest.
type ImageWriter struct {
	c     Conn
	buf   []byte
	zeros uint64 // a run of zero blocks not yet sent
	part  []byte // the start of a block not yet complete
	N     int64  // bytes written
}

// ZeroBlock is the unit of zero detection.
const ZeroBlock = 4096

// NewImageWriter returns an ImageWriter on c.
func NewImageWriter(c Conn) *ImageWriter { return &ImageWriter{c: c, buf: make([]byte, 0, Chunk)} }

func (w *ImageWriter) Write(b []byte) (int, error) {
	n := len(b)
	if len(w.part) > 0 { // complete the pending block first
		k := min(len(b), ZeroBlock-len(w.part))
		w.part = append(w.part, b[:k]...)
		b = b[k:]
		if len(w.part) < ZeroBlock {
			w.N += int64(n)
			return n, nil
		}
		blk := w.part
		w.part = nil
		if err := w.block(blk); err != nil {
			return 0, err
		}
	}
	for len(b) >= ZeroBlock {
		if err := w.block(b[:ZeroBlock]); err != nil {
			return 0, err
		}
		b = b[ZeroBlock:]
	}
	w.part = append(w.part, b...)
	w.N += int64(n)
	return n, nil
}

// block takes one whole block.
func (w *ImageWriter) block(b []byte) error {
	if isZero(b) {
		if len(w.buf) > 0 {
			if err := w.flush(); err != nil {
				return err
			}
		}
		w.zeros += uint64(len(b))
		return nil
	}
	if err := w.flushZeros(); err != nil {
		return err
	}
	w.buf = append(w.buf, b...)
	if len(w.buf) >= Chunk {
		return w.flush()
	}
	return nil
}

func isZero(b []byte) bool {
	for len(b) >= 8 {
		if binary.LittleEndian.Uint64(b) != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

func (w *ImageWriter) flushZeros() error {
	if w.zeros == 0 {
		return nil
	}
	err := w.c.Send(Msg{Kind: KZeros, Data: binary.LittleEndian.AppendUint64(nil, w.zeros)})
	w.zeros = 0
	return err
}

func (w *ImageWriter) flush() error {
	if len(w.buf) == 0 {
		return nil
	}
	err := w.c.Send(Msg{Kind: KImage, Data: w.buf})
	w.buf = make([]byte, 0, Chunk) // the sent one may still be in use
	return err
}

// Close sends what is buffered.
func (w *ImageWriter) Close() error {
	if err := w.flushZeros(); err != nil {
		return err
	}
	w.buf = append(w.buf, w.part...)
	w.part = nil
	return w.flush()
}

// ImageReader reads the image from Image messages. The first other
// message ends the image: Read returns io.EOF and Next has it.
type ImageReader struct {
	c     Conn
	cur   []byte
	zeros uint64 // zero bytes still to give
	next  *Msg
	err   error
	N     int64 // bytes read
}

// NewImageReader returns an ImageReader on c.
func NewImageReader(c Conn) *ImageReader { return &ImageReader{c: c} }

func (r *ImageReader) Read(b []byte) (int, error) {
	for len(r.cur) == 0 && r.zeros == 0 {
		if r.err != nil {
			return 0, r.err
		}
		m, err := r.c.Recv()
		switch {
		case err != nil:
			r.err = fmt.Errorf("migrate: stream ended inside the image (after %d bytes): %w", r.N, err)
		case m.Kind == KImage:
			r.cur = m.Data
		case m.Kind == KZeros && len(m.Data) == 8:
			r.zeros = binary.LittleEndian.Uint64(m.Data)
		case m.Kind == KZeros:
			r.err = fmt.Errorf("%w: zeros message of %d bytes", ErrCorrupt, len(m.Data))
		default:
			r.next, r.err = &m, io.EOF
		}
	}
	if len(r.cur) == 0 {
		n := int(min(uint64(len(b)), r.zeros))
		clear(b[:n])
		r.zeros -= uint64(n)
		r.N += int64(n)
		return n, nil
	}
	n := copy(b, r.cur)
	r.cur = r.cur[n:]
	r.N += int64(n)
	return n, nil
}

// Next returns the message that ended the image, or receives the next
// one if the image was read to its end (its own end marker) first.
func (r *ImageReader) Next() (Msg, error) {
	if len(r.cur) > 0 || r.zeros > 0 {
		return Msg{}, fmt.Errorf("%w: %d bytes after the image's end", ErrCorrupt, len(r.cur))
	}
	if r.next != nil {
		m := *r.next
		r.next = nil
		return m, nil
	}
	if r.err != nil && r.err != io.EOF {
		return Msg{}, r.err
	}
	for {
		m, err := r.c.Recv()
		if err != nil {
			return Msg{}, err
		}
		if m.Kind != KImage && m.Kind != KZeros {
			return m, nil
		}
		return Msg{}, fmt.Errorf("%w: image data after the image's end", ErrCorrupt)
	}
}

// PrefixConn is a Conn that gives First before what C receives (a
// message read ahead).
type PrefixConn struct {
	Conn
	First *Msg
}

// Recv returns First once, then receives from the Conn.
func (c *PrefixConn) Recv() (Msg, error) {
	if m := c.First; m != nil {
		c.First = nil
		return *m, nil
	}
	return c.Conn.Recv()
}
