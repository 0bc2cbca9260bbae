package rexec

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
)

// Type is a frame's type.
type Type uint8

// The frame types.
const (
	TStart     Type = iota + 1 // deputy -> node: JSON Spec
	TStdin                     // deputy -> node: bytes for the process's stdin
	TStdinEOF                  // deputy -> node: stdin is closed
	TWinsize                   // deputy -> node: rows, cols (uint16 LE each)
	TStarted                   // node -> deputy: JSON Started
	TStdout                    // node -> deputy: output
	TStderr                    // node -> deputy: error output
	TStopped                   // node -> deputy: one byte, the stop signal
	TContinued                 // node -> deputy: the process was continued
	TExit                      // node -> deputy: JSON Status; the last frame
	TError                     // node -> deputy: a message for the user (then Exit)
	// Migration hand-off (see Moved): the deputy never sees these.
	TMoving // node -> home: the process is about to move; hold the input
	THold   // home -> node: input held; no more comes on this stream
	TResume // node -> home: the move was abandoned; send input again
	TMoved  // node -> home: JSON Moved; the last frame of this stream
	// Re-attachment after a broken stream (see Re-attaching).
	TAck    // either way: uint64 LE, counted frames of this session received so far
	THangup // home -> node: the deputy is gone: hang the process up now
	// Between an agent and a process's holder (package hold).
	THeld    // holder -> agent: JSON hold.Info, the first frame
	TReplay  // agent -> holder: uint64 LE, send the counted frames after this one
	TRelease // agent -> holder: the end is told; the holder may end
	TPassed  // agent -> holder: uint64 LE, counted frames of input passed on to the process
	// Between a home agent and its deputy (see Delivered).
	TDelivered // home -> deputy: uint64 LE: counted frames handled, stdout and stderr bytes (and the session's node and pid)
	TInputHas  // home -> deputy: JSON InputHas: what the process's node has of the input
	TInputFrom // home -> deputy: int64 LE: resend the input after this frame (-1: input cannot go on)
	tLast
)

var typeNames = [...]string{TStart: "start", TStdin: "stdin", TStdinEOF: "stdin-eof",
	TWinsize: "winsize", TStarted: "started", TStdout: "stdout", TStderr: "stderr", TStopped: "stopped",
	TContinued: "continued", TExit: "exit", TError: "error", TMoving: "moving", THold: "hold",
	TResume: "resume", TMoved: "moved", TAck: "ack", THangup: "hangup", THeld: "held", TReplay: "replay",
	TRelease: "release", TPassed: "passed", TDelivered: "delivered",
	TInputHas: "input-has", TInputFrom: "input-from"}

func (t Type) String() string {
	if t > 0 && t < tLast {
		return typeNames[t]
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// MaxData bounds one frame's payload. Output is sent in chunks of at most
// Chunk bytes; Start (the environment) may be larger.
const (
	MaxData = 4<<20 - 16
	Chunk   = 256 << 10
)

// headerLen is the size of a frame header.
const headerLen = 5

// Frame is one message.
type Frame struct {
	Type Type
	Data []byte

	release func() // gives Data's buffer back to the transport (Lend)
}

// Validate checks what can be checked without context: a known type and a
// payload of the right size.
func (f *Frame) Validate() error {
	if f.Type == 0 || f.Type >= tLast {
		return fmt.Errorf("frame: unknown type %d", uint8(f.Type))
	}
	if len(f.Data) > MaxData {
		return fmt.Errorf("frame: %s payload of %d bytes exceeds %d", f.Type, len(f.Data), MaxData)
	}
	if n := fixedSize[f.Type]; n >= 0 && len(f.Data) != n {
		return fmt.Errorf("frame: %s payload of %d bytes, want %d", f.Type, len(f.Data), n)
	}
	if f.Type == TDelivered && len(f.Data) != deliveredSize && len(f.Data) != deliveredSizeV1 {
		return fmt.Errorf("frame: %s payload of %d bytes, want %d or %d", f.Type, len(f.Data), deliveredSizeV1, deliveredSize)
	}
	return nil
}

// fixedSize is the payload size of the frame types that have one, -1
// for the others.
var fixedSize = func() (n [tLast]int) {
	for t := range n {
		n[t] = -1
	}
	n[TStdinEOF], n[TWinsize], n[TStopped], n[TContinued], n[TMoving], n[THold], n[TResume] = 0, 4, 1, 0, 0, 0, 0
	n[TAck], n[THangup], n[TReplay], n[TRelease], n[TPassed], n[TInputFrom] = 8, 0, 8, 0, 8, 8
	return n
}()

// MarshalBinary encodes f with its header.
func (f *Frame) MarshalBinary() ([]byte, error) {
	return f.AppendBinary(make([]byte, 0, f.BinarySize()))
}

// BinarySize is the length of f's encoding.
func (f *Frame) BinarySize() int { return headerLen + len(f.Data) }

// AppendBinary appends f's encoding to b (the gRPC codec uses it, with a
// buffer it lends).
func (f *Frame) AppendBinary(b []byte) ([]byte, error) {
	b = append(b, byte(f.Type), 0, 0, 0, 0)
	binary.LittleEndian.PutUint32(b[len(b)-4:], uint32(len(f.Data)))
	return append(b, f.Data...), nil
}

// Lend is called by the gRPC codec with the function that takes back the
// buffer f was decoded from (see Release).
func (f *Frame) Lend(release func()) { f.release = release }

// Release gives the buffer f.Data lies in back to the transport, if it
// lent one: call it only once nothing refers to f.Data any longer.
func (f *Frame) Release() {
	if f.release != nil {
		f.release()
		f.release = nil
	}
}

// UnmarshalBinary decodes one whole frame and validates it. Data aliases b.
func (f *Frame) UnmarshalBinary(b []byte) error {
	if len(b) < headerLen {
		return fmt.Errorf("frame: %d bytes, shorter than a header", len(b))
	}
	n := binary.LittleEndian.Uint32(b[1:])
	if uint64(n) != uint64(len(b)-headerLen) {
		return fmt.Errorf("frame: header says %d bytes of payload, got %d", n, len(b)-headerLen)
	}
	f.Type, f.Data = Type(b[0]), b[headerLen:]
	return f.Validate()
}

// Write writes f to w as one write.
func Write(w io.Writer, f Frame) error {
	b, _ := f.MarshalBinary()
	_, err := w.Write(b)
	return err
}

// Reader reads frames from a stream, reusing its buffer: a frame's Data is
// valid until the next Read.
type Reader struct {
	r   io.Reader
	hdr [headerLen]byte
	buf []byte
}

// NewReader returns a Reader of r (buffer r yourself if it is small-read).
func NewReader(r io.Reader) *Reader { return &Reader{r: r} }

// Read returns the next frame; io.EOF at a clean end between frames.
func (r *Reader) Read() (Frame, error) {
	if _, err := io.ReadFull(r.r, r.hdr[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return Frame{}, errors.New("frame: stream ended inside a header")
		}
		return Frame{}, err
	}
	n := binary.LittleEndian.Uint32(r.hdr[1:])
	f := Frame{Type: Type(r.hdr[0])}
	if n > MaxData {
		return Frame{}, fmt.Errorf("frame: %s payload of %d bytes exceeds %d", f.Type, n, MaxData)
	}
	if cap(r.buf) < int(n) {
		r.buf = make([]byte, n)
	}
	f.Data = r.buf[:n]
	if _, err := io.ReadFull(r.r, f.Data); err != nil {
		return Frame{}, fmt.Errorf("frame: stream ended inside a %s payload: %w", f.Type, err)
	}
	return f, f.Validate()
}

// JSON builds a frame whose payload is v as JSON.
func JSON(t Type, v any) Frame {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only our own types are passed
	}
	return Frame{Type: t, Data: b}
}

// WinsizeFrame carries a terminal size.
func WinsizeFrame(rows, cols uint16) Frame {
	b := make([]byte, 4)
	binary.LittleEndian.PutUint16(b, rows)
	binary.LittleEndian.PutUint16(b[2:], cols)
	return Frame{Type: TWinsize, Data: b}
}

// Winsize decodes a TWinsize payload (validated: 4 bytes).
func Winsize(f Frame) (rows, cols uint16) {
	return binary.LittleEndian.Uint16(f.Data), binary.LittleEndian.Uint16(f.Data[2:])
}

// Started tells the deputy what runs where. To a home that re-attaches,
// Received is how many counted frames of its input the process's node
// has received (the home sends the rest again).
type Started struct {
	CPID     int64 `json:"cpid"`
	Node     int   `json:"node"`
	Pid      int   `json:"pid"`
	Received int64 `json:"received,omitempty"`
	// Exact: to an exact deputy (Spec.Exact), its home agent speaks
	// Delivered, InputHas and InputFrom (an agent of a version before
	// does not: the deputy then keeps no input).
	Exact bool `json:"exact,omitempty"`
	// InputBase: the deputy's input frames before this session's first
	// (those that went with the process on its moves), so that a home
	// agent that takes over a deputy resumes its input from
	// InputBase+Received wherever the process went meanwhile. Nil from
	// an agent of a version before.
	InputBase *int64 `json:"input_base,omitempty"`
	// Ended: the session has ended (the process exited or moved on):
	// what follows is the end of its stream, kept for its home, and no
	// input can reach the process through it.
	Ended bool `json:"ended,omitempty"`
}

// Counted reports whether frames of type t are numbered in a session's
// stream (and so acknowledged, kept until then and sent again to a home
// that re-attaches): everything but Start, Started, Hold, Ack and Hangup,
// which concern one stream, not the session, and the frames between an
// agent and a holder.
func Counted(t Type) bool {
	switch t {
	case TStart, TStarted, THold, TAck, THangup, THeld, TReplay, TRelease, TPassed, TDelivered, TInputHas, TInputFrom:
		return false
	}
	return t > 0 && t < tLast
}

// AckFrame acknowledges n counted frames.
func AckFrame(n int64) Frame { return CountFrame(TAck, n) }

// CountFrame is a frame of type t (TAck, TReplay or TPassed) that
// carries a count of counted frames.
func CountFrame(t Type, n int64) Frame {
	b := make([]byte, 8)
	binary.LittleEndian.PutUint64(b, uint64(n))
	return Frame{Type: t, Data: b}
}

// Ack decodes the count of a TAck, TReplay or TPassed payload
// (validated: 8 bytes).
func Ack(f Frame) int64 { return int64(binary.LittleEndian.Uint64(f.Data)) }

// Delivered is what a home agent has handled of a process's stream, told
// to its deputy after each counted frame: the frames (numbered in the
// session on the process's node) and the bytes of stdout and stderr it
// has written to the pipes the deputy passed or sent it as frames, counted
// on this deputy's stream; and the session the frames are numbered in,
// the process's node and pid (0: not said, an agent of a version before).
// A deputy whose agent went knows from these and from what it has itself
// written which bytes the next agent resends that it has already
// (package deputy, sink.go), and where to resume: a process that moved
// just before its home agent went is found on the node it left, which
// keeps the end of that session (its last frames, then Moved) for it.
type Delivered struct {
	Frames, Stdout, Stderr int64
	Node, Pid              int64
}

// deliveredSize is a Delivered frame's payload; deliveredSizeV1 one that
// does not name the session.
const deliveredSize, deliveredSizeV1 = 40, 24

// Frame encodes d as a TDelivered frame; FrameV1 without the session,
// for a deputy of a version before (one that does not set
// Spec.SessionDelivered, and refuses the longer frame).
func (d Delivered) Frame() Frame { return d.encode(deliveredSize) }

// FrameV1 encodes d without its Node and Pid.
func (d Delivered) FrameV1() Frame { return d.encode(deliveredSizeV1) }

func (d Delivered) encode(size int) Frame {
	b := make([]byte, size)
	for i, v := range []int64{d.Frames, d.Stdout, d.Stderr, d.Node, d.Pid}[:size/8] {
		binary.LittleEndian.PutUint64(b[8*i:], uint64(v))
	}
	return Frame{Type: TDelivered, Data: b}
}

// ParseDelivered decodes a TDelivered payload (validated: 24 or 40
// bytes, no negative count, a node and pid in range).
func ParseDelivered(f Frame) (Delivered, error) {
	if len(f.Data) != deliveredSize && len(f.Data) != deliveredSizeV1 {
		return Delivered{}, fmt.Errorf("delivered frame: %d bytes, want %d", len(f.Data), deliveredSize)
	}
	var v [5]int64
	for i := range len(f.Data) / 8 {
		v[i] = int64(binary.LittleEndian.Uint64(f.Data[8*i:]))
	}
	d := Delivered{v[0], v[1], v[2], v[3], v[4]}
	if d.Frames < 0 || d.Stdout < 0 || d.Stderr < 0 {
		return Delivered{}, fmt.Errorf("delivered frame: negative count %+v", d)
	}
	if d.Node < 0 || d.Node > math.MaxInt32 || d.Pid < 0 || d.Pid > math.MaxInt32 {
		return Delivered{}, fmt.Errorf("delivered frame: no such node or pid %+v", d)
	}
	return d, nil
}

// InputHas tells a deputy what the process's node has of its input, in
// the deputy's count of the counted frames it sent (it keeps the others):
// Frames; and the session the node has it in, which a home agent after
// the next needs to map the node's own count to the deputy's: the
// process's node and pid, and Base, the deputy's frames before the
// session's first (a move starts a new session, numbered from 1).
type InputHas struct {
	Frames int64 `json:"frames"`
	Base   int64 `json:"base"`
	Node   int   `json:"node"`
	Pid    int   `json:"pid"`
}

// ParseInputHas decodes a TInputHas payload.
func ParseInputHas(b []byte) (InputHas, error) {
	var h InputHas
	if err := json.Unmarshal(b, &h); err != nil {
		return h, fmt.Errorf("malformed input-has frame: %w", err)
	}
	if h.Base < 0 || h.Frames < h.Base || h.Node < 0 || h.Pid < 0 {
		return h, fmt.Errorf("input-has frame out of range: %+v", h)
	}
	return h, nil
}

// Moved tells the home node where the process went: its node and its
// pid there. The home re-attaches with a Start whose Spec has Attach set.
type Moved struct {
	Node int `json:"node"`
	Pid  int `json:"pid"`
}

// ParseMoved decodes a TMoved payload.
func ParseMoved(b []byte) (Moved, error) {
	var m Moved
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("malformed moved frame: %w", err)
	}
	if m.Node < 1 || m.Pid < 1 {
		return m, fmt.Errorf("moved frame: node %d pid %d out of range", m.Node, m.Pid)
	}
	return m, nil
}

// ParseStarted decodes a TStarted payload.
func ParseStarted(b []byte) (Started, error) {
	var s Started
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("malformed started frame: %w", err)
	}
	return s, nil
}

// ParseStatus decodes a TExit payload.
func ParseStatus(b []byte) (Status, error) {
	var s Status
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("malformed exit frame: %w", err)
	}
	if s.Code < 0 || s.Code > 255 || s.Signal < 0 || s.Signal > 64 {
		return s, fmt.Errorf("exit frame: status %d / signal %d out of range", s.Code, s.Signal)
	}
	return s, nil
}
