package relink

import "github.com/ssi-cluster/ssi/internal/rexec"

// Outbox keeps the counted frames a side sent (numbered from 1) until
// the other side acknowledges them, to send them again on a new stream.
type Outbox struct {
	frames []rexec.Frame // numbered base+1 on
	base   int64         // frames acknowledged (and dropped)
	bytes  int           // payload bytes kept
}

// Put keeps a copy of f and returns its number.
func (o *Outbox) Put(f rexec.Frame) int64 {
	o.frames = append(o.frames, rexec.Frame{Type: f.Type, Data: append([]byte(nil), f.Data...)})
	o.bytes += len(f.Data)
	return o.Last()
}

// Last is the number of the last frame put (0: none yet).
func (o *Outbox) Last() int64 { return o.base + int64(len(o.frames)) }

// Bytes is the payload kept, not yet acknowledged.
func (o *Outbox) Bytes() int { return o.bytes }

// Ack drops the frames up to n, which the other side has. An ack of
// frames already dropped, or never put, changes nothing beyond Last.
func (o *Outbox) Ack(n int64) {
	n = min(n, o.Last())
	for o.base < n {
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
