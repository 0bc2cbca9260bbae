package relink

import (
	"sync"

	"github.com/ssi-cluster/ssi/internal/rexec"
)

// bufs are payload buffers of rexec.Chunk bytes: a stream kept frame by
// frame would otherwise allocate (and collect) its whole size again.
var bufs = sync.Pool{New: func() any { b := make([]byte, rexec.Chunk); return &b }}

// Outbox keeps the counted frames a side sent (numbered from 1) until
// the other side acknowledges them, to send them again on a new stream.
type Outbox struct {
	frames []rexec.Frame // numbered base+1 on
	base   int64         // frames acknowledged (and dropped)
	bytes  int           // payload bytes kept
}

// Put keeps a copy of f and returns its number.
func (o *Outbox) Put(f rexec.Frame) int64 {
	var data []byte
	if n := len(f.Data); n > 0 && n <= rexec.Chunk {
		data = (*bufs.Get().(*[]byte))[:n]
		copy(data, f.Data)
	} else {
		data = append([]byte(nil), f.Data...)
	}
	o.frames = append(o.frames, rexec.Frame{Type: f.Type, Data: data})
	o.bytes += len(f.Data)
	return o.Last()
}

// Last is the number of the last frame put (0: none yet).
func (o *Outbox) Last() int64 { return o.base + int64(len(o.frames)) }

// Bytes is the payload kept, not yet acknowledged.
func (o *Outbox) Bytes() int { return o.bytes }

// Full reports whether the sender should wait for an acknowledgement:
// Window bytes or WindowFrames frames are kept.
func (o *Outbox) Full() bool { return o.bytes >= Window || len(o.frames) >= WindowFrames }

// Next returns the frame after n (numbered n+1), without copying the
// list; false if it is not kept (acknowledged, or not put yet).
func (o *Outbox) Next(n int64) (rexec.Frame, bool) {
	if n < o.base || n >= o.Last() {
		return rexec.Frame{}, false
	}
	return o.frames[n-o.base], true
}

// Ack drops the frames up to n, which the other side has. An ack of
// frames already dropped, or never put, changes nothing beyond Last.
// Their buffers are reused: a frame acknowledged must no longer be in use
// (it was sent, as the other side has it; a list From gave out holds
// only frames sent or to send).
func (o *Outbox) Ack(n int64) {
	n = min(n, o.Last())
	for o.base < n {
		if b := o.frames[0].Data; cap(b) == rexec.Chunk {
			b = b[:rexec.Chunk]
			bufs.Put(&b)
		}
		o.bytes -= len(o.frames[0].Data)
		o.frames[0] = rexec.Frame{}
		o.frames = o.frames[1:]
		o.base++
	}
	if len(o.frames) == 0 {
		o.frames = nil
	}
}

// From returns (a copy of the list of) the frames after n, for a side
// that has n; false if some of them are no longer kept or n is beyond
// what was put: the other side then cannot be brought up to date.
func (o *Outbox) From(n int64) ([]rexec.Frame, bool) {
	if n < o.base || n > o.Last() {
		return nil, false
	}
	return append([]rexec.Frame(nil), o.frames[n-o.base:]...), true
}

// Restart numbers the frames after n from 1 again and drops the others:
// the other side, a new session (after a move), has none of them and
// the old one had everything up to n.
func (o *Outbox) Restart(n int64) {
	rest, _ := o.From(min(max(n, o.base), o.Last()))
	*o = Outbox{}
	for _, f := range rest {
		o.frames = append(o.frames, f)
		o.bytes += len(f.Data)
	}
}

// Clear drops everything and numbers on from where it was: nothing kept
// will be asked for again (the run was hung up).
func (o *Outbox) Clear() {
	o.base, o.frames, o.bytes = o.Last(), nil, 0
}

// Base is the number of the frames acknowledged (and dropped): From
// works from there.
func (o *Outbox) Base() int64 { return o.base }

// Skip numbers an empty outbox on from n: its side took the session over
// from one that had put n frames (an agent re-adopting a held process:
// the holder has them).
func (o *Outbox) Skip(n int64) {
	if len(o.frames) == 0 && n > o.base {
		o.base = n
	}
}
