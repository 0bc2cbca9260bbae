package transport

import (
	"encoding"
	"encoding/json"
	"fmt"

	"google.golang.org/grpc/mem"

	"github.com/ssi-cluster/ssi/internal/gomax"
)

// MaxMessage bounds one control message; larger payloads go over Bulk streams.
const MaxMessage = 4 << 20

// An Appender is a stream message that encodes itself into a buffer the
// transport lends (and takes back once gRPC has written it): the bytes
// of a busy stream need no new memory per message.
type Appender interface {
	BinarySize() int
	AppendBinary(b []byte) ([]byte, error)
}

// A Borrower is a stream message that decodes in place from a buffer the
// transport lends. Lend gives it the function that returns the buffer:
// the message calls it once nothing refers to its bytes any longer; a
// message that never does leaves the buffer to the garbage collector.
type Borrower interface {
	encoding.BinaryUnmarshaler
	Lend(release func())
}

// codec is the gRPC codec of every call and stream. It is forced on both
// ends (grpc.ForceServerCodecV2, grpc.ForceCodecV2), so no global
// registration. Control messages are JSON; stream messages have their
// own binary encoding.
type codec struct{}

func (codec) Name() string { return "ssijson" }

// Marshal encodes v into a lent buffer (an Appender), with its own
// binary encoding (a BinaryMarshaler), or as JSON.
func (codec) Marshal(v any) (mem.BufferSlice, error) {
	switch m := v.(type) {
	case Appender:
		gomax.Add(m.BinarySize())
		buf := bufPool.Get(m.BinarySize())
		b, err := m.AppendBinary((*buf)[:0])
		if err != nil {
			bufPool.Put(buf)
			return nil, err
		}
		if !sameArray(b, *buf) {
			bufPool.Put(buf) // it outgrew the buffer: b is its own
			return mem.BufferSlice{mem.SliceBuffer(b)}, nil
		}
		*buf = b
		return mem.BufferSlice{mem.NewBuffer(buf, bufPool)}, nil
	case encoding.BinaryMarshaler:
		b, err := m.MarshalBinary()
		gomax.Add(len(b))
		return mem.BufferSlice{mem.SliceBuffer(b)}, err
	}
	b, err := json.Marshal(v)
	gomax.Add(len(b))
	return mem.BufferSlice{mem.SliceBuffer(b)}, err
}

// sameArray reports whether a and b share their first byte of memory.
func sameArray(a, b []byte) bool { return cap(a) > 0 && cap(b) > 0 && &a[:1][0] == &b[:1][0] }

// Unmarshal decodes data into v; gRPC frees data once it returns, so v
// gets its own copy: a lent buffer (a Borrower) or new memory.
func (codec) Unmarshal(data mem.BufferSlice, v any) error {
	n := data.Len()
	gomax.Add(n) // traffic widens the scheduler (package gomax)
	if r, ok := v.(*rawMessage); ok {
		// The server decodes requests itself (service.go), so that a
		// malformed one is answered InvalidArgument.
		*r = data.Materialize()
		return nil
	}
	if n > MaxMessage {
		return fmt.Errorf("message of %d bytes exceeds the %d byte limit", n, MaxMessage)
	}
	if b, ok := v.(Borrower); ok {
		buf := bufPool.Get(n)
		data.CopyTo(*buf)
		if err := b.UnmarshalBinary(*buf); err != nil {
			bufPool.Put(buf)
			return err
		}
		b.Lend(func() { bufPool.Put(buf) })
		return nil
	}
	return decode(data.Materialize(), v)
}

// decode decodes a whole message that is the caller's to give.
func decode(data []byte, v any) error {
	if len(data) > MaxMessage {
		return fmt.Errorf("message of %d bytes exceeds the %d byte limit", len(data), MaxMessage)
	}
	if u, ok := v.(encoding.BinaryUnmarshaler); ok {
		return u.UnmarshalBinary(data)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("malformed message: %w", err)
	}
	return nil
}

// rawMessage is a request's undecoded bytes.
type rawMessage []byte

// decodeRequest decodes a request received by the server.
func decodeRequest(data []byte, v any) error { return decode(data, v) }
