package migrate

import (
	"fmt"
	"io"
)

// Conn carries messages. Send may be called from one goroutine at a time,
// Recv likewise. A received message's Data is its own.
type Conn interface {
	Send(Msg) error
	Recv() (Msg, error)
}

// ImageWriter sends what is written to it as Image messages of Chunk
// bytes. Close sends the rest.
type ImageWriter struct {
	c   Conn
	buf []byte
	N   int64 // bytes written
}

// NewImageWriter returns an ImageWriter on c.
func NewImageWriter(c Conn) *ImageWriter { return &ImageWriter{c: c, buf: make([]byte, 0, Chunk)} }

func (w *ImageWriter) Write(b []byte) (int, error) {
	n := len(b)
	for len(b) > 0 {
		k := min(len(b), Chunk-len(w.buf))
		w.buf = append(w.buf, b[:k]...)
		b = b[k:]
		if len(w.buf) == Chunk {
			if err := w.flush(); err != nil {
				return n - len(b), err
			}
		}
	}
	w.N += int64(n)
	return n, nil
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
func (w *ImageWriter) Close() error { return w.flush() }

// ImageReader reads the image from Image messages. The first other
// message ends the image: Read returns io.EOF and Next has it.
type ImageReader struct {
	c    Conn
	cur  []byte
	next *Msg
	err  error
	N    int64 // bytes read
}

// NewImageReader returns an ImageReader on c.
func NewImageReader(c Conn) *ImageReader { return &ImageReader{c: c} }

func (r *ImageReader) Read(b []byte) (int, error) {
	for len(r.cur) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		m, err := r.c.Recv()
		switch {
		case err != nil:
			r.err = fmt.Errorf("migrate: stream ended inside the image (after %d bytes): %w", r.N, err)
		case m.Kind == KImage:
			r.cur = m.Data
		default:
			r.next, r.err = &m, io.EOF
		}
	}
	n := copy(b, r.cur)
	r.cur = r.cur[n:]
	r.N += int64(n)
	return n, nil
}

// Next returns the message that ended the image, or receives the next
// one if the image was read to its end (its own end marker) first.
func (r *ImageReader) Next() (Msg, error) {
	if len(r.cur) > 0 {
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
		if m.Kind != KImage {
			return m, nil
		}
		return Msg{}, fmt.Errorf("%w: image data after the image's end", ErrCorrupt)
	}
}
