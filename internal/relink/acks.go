package relink

// How often a receiver acknowledges: every AckBytes of payload or
// AckFrames frames, whichever comes first, and at once for the last frame
// of a stream. The sender keeps at most Window unacknowledged bytes, or
// WindowFrames frames, before it waits (a whole frame may exceed it by
// one frame): a process that writes a line at a time makes frames of a
// few bytes, and a backlog of a million of them would cost the next
// stream as much work as the bytes of a thousand full ones.
const (
	AckBytes     = 256 << 10
	AckFrames    = 64
	Window       = 8 << 20
	WindowFrames = 8192
)

// Acks counts what a receiver has received of a session and says when to
// acknowledge it.
type Acks struct {
	n      int64 // counted frames received
	frames int   // since the last ack
	bytes  int   // since the last ack
}

// Got notes one counted frame of size bytes received; it returns the
// count to acknowledge and whether to do it now (last: the frame ends
// the stream, or may be the last for a while).
func (a *Acks) Got(size int, last bool) (int64, bool) {
	a.n++
	a.frames++
	a.bytes += size
	if last || a.frames >= AckFrames || a.bytes >= AckBytes {
		a.frames, a.bytes = 0, 0
		return a.n, true
	}
	return a.n, false
}

// Received is the count of counted frames received.
func (a *Acks) Received() int64 { return a.n }

// Reset starts counting a new session (after a move).
func (a *Acks) Reset() { *a = Acks{} }

// Resume counts on from n frames received (a session taken over after
// a restart).
func (a *Acks) Resume(n int64) { *a = Acks{n: n} }
