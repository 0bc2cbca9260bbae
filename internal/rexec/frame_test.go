package rexec

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

func TestFrameRoundTrip(t *testing.T) {
	frames := []Frame{
		JSON(TStart, Spec{Argv: []string{"true"}, Dir: "/"}),
		{Type: TStdin, Data: []byte("hello")},
		{Type: TStdinEOF},
		WinsizeFrame(24, 80),
		{Type: TStdout, Data: bytes.Repeat([]byte{7}, Chunk)},
		{Type: TStopped, Data: []byte{20}},
		JSON(TExit, Status{Code: 3}),
	}
	var buf bytes.Buffer
	for _, f := range frames {
		if err := Write(&buf, f); err != nil {
			t.Fatal(err)
		}
	}
	r := NewReader(&buf)
	for i, want := range frames {
		got, err := r.Read()
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if got.Type != want.Type || !bytes.Equal(got.Data, want.Data) {
			t.Fatalf("frame %d: got %s %d bytes, want %s %d bytes", i, got.Type, len(got.Data), want.Type, len(want.Data))
		}
	}
	if _, err := r.Read(); err != io.EOF {
		t.Fatalf("after the last frame: %v, want io.EOF", err)
	}
	if rows, cols := Winsize(frames[3]); rows != 24 || cols != 80 {
		t.Errorf("winsize %dx%d", rows, cols)
	}
}

// TestDelivered: a Delivered frame names its session; one of a version
// before (24 bytes, FrameV1) still decodes, without it.
func TestDelivered(t *testing.T) {
	d := Delivered{Frames: 7, Stdout: 1 << 40, Stderr: 3, Node: 2, Pid: 4242}
	for _, tc := range []struct {
		f    Frame
		want Delivered
	}{
		{d.Frame(), d},
		{d.FrameV1(), Delivered{Frames: 7, Stdout: 1 << 40, Stderr: 3}},
	} {
		enc, _ := tc.f.MarshalBinary()
		f, err := NewReader(bytes.NewReader(enc)).Read()
		if err != nil {
			t.Fatalf("%d bytes: %v", len(tc.f.Data), err)
		}
		if got, err := ParseDelivered(f); err != nil || got != tc.want {
			t.Errorf("%d bytes: %+v (%v), want %+v", len(tc.f.Data), got, err, tc.want)
		}
	}
	bad := Delivered{Frames: 1, Node: -1}.Frame()
	if _, err := ParseDelivered(bad); err == nil {
		t.Error("a negative node was accepted")
	}
}

func TestFrameBad(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
		want string
	}{
		{"unknown type", []byte{99, 0, 0, 0, 0}, "unknown type"},
		{"zero type", []byte{0, 0, 0, 0, 0}, "unknown type"},
		{"winsize too short", []byte{byte(TWinsize), 2, 0, 0, 0, 1, 2}, "want 4"},
		{"stdin-eof with payload", []byte{byte(TStdinEOF), 1, 0, 0, 0, 1}, "want 0"},
		{"huge", []byte{byte(TStdout), 0xff, 0xff, 0xff, 0xff}, "exceeds"},
		{"short header", []byte{byte(TStdout), 1}, "inside a header"},
		{"short payload", []byte{byte(TStdout), 9, 0, 0, 0, 1, 2}, "inside a stdout payload"},
		{"delivered of 32 bytes", append([]byte{byte(TDelivered), 32, 0, 0, 0}, make([]byte, 32)...), "want 24 or 40"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewReader(bytes.NewReader(tc.in)).Read()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Read = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestParseSpecBad(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{`, "malformed"},
		{`{"argv":[],"dir":"/"}`, "no command"},
		{`{"argv":["x"],"dir":"rel"}`, "not an absolute path"},
		{`{"argv":["x\u0000y"],"dir":"/"}`, "NUL"},
		{`{"argv":["x"],"dir":"/","env":["NOEQUALS"]}`, "has no '='"},
		{`{"argv":["x"],"dir":"/","umask":4096}`, "umask"},
		{`{"argv":["x"],"dir":"/","nice":40}`, "nice"},
		{`{"argv":["x"],"dir":"/","rlimits":[{"resource":3,"cur":9,"max":1}]}`, "resource limit"},
		{`{"argv":["x"],"dir":"/","node":-1}`, "not a node number"},
	} {
		if _, err := ParseSpec([]byte(tc.in)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseSpec(%s) = %v, want an error containing %q", tc.in, err, tc.want)
		}
	}
}

func TestStatusWorse(t *testing.T) {
	ok, fail, sig, lost := Status{}, Status{Code: 2}, Status{Signal: 9}, Status{Code: ExitLost, Lost: true}
	order := []Status{ok, {Code: 1}, fail, {Signal: 2}, sig, lost}
	for i := range order {
		for j := range order {
			if got := order[i].Worse(order[j]); got != (i > j) {
				t.Errorf("%+v.Worse(%+v) = %v", order[i], order[j], got)
			}
		}
	}
	if sig.ShellCode() != 137 || fail.ShellCode() != 2 {
		t.Errorf("shell codes %d %d", sig.ShellCode(), fail.ShellCode())
	}
}

func FuzzFrameReader(f *testing.F) {
	var buf bytes.Buffer
	Write(&buf, JSON(TStart, Spec{Argv: []string{"sh"}, Dir: "/"}))
	Write(&buf, JSON(TStart, Spec{Argv: []string{"sh"}, Dir: "/", Tty: true, Termios: make([]byte, 44)}))
	Write(&buf, WinsizeFrame(1, 2))
	f.Add(buf.Bytes())
	f.Add([]byte{byte(TStdout), 3, 0, 0, 0, 'a', 'b', 'c'})
	buf.Reset()
	Write(&buf, Delivered{Frames: 3, Stdout: 1 << 40, Stderr: 7}.Frame())
	Write(&buf, JSON(TInputHas, InputHas{Frames: 9, Base: 2, Node: 3, Pid: 44}))
	Write(&buf, CountFrame(TInputFrom, -1))
	f.Add(buf.Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		r := NewReader(bytes.NewReader(data))
		for {
			fr, err := r.Read()
			if err != nil {
				return
			}
			if fr.Validate() != nil {
				t.Fatalf("Read returned an invalid frame")
			}
			var again Frame
			b, _ := fr.MarshalBinary()
			if err := again.UnmarshalBinary(b); err != nil || again.Type != fr.Type || !bytes.Equal(again.Data, fr.Data) {
				t.Fatalf("frame does not survive its own encoding: %v", err)
			}
			switch fr.Type {
			case TStart:
				// A spec the root agent accepts from any local user: its
				// terminal settings decode to what they encode to.
				if s, err := ParseSpec(fr.Data); err == nil {
					if tio, err := DecodeTermios(s.Termios); err == nil && !bytes.Equal(EncodeTermios(tio), s.Termios) {
						t.Fatalf("terminal settings do not survive their own encoding")
					}
				}
			case TStarted:
				ParseStarted(fr.Data)
			case TExit:
				ParseStatus(fr.Data)
			case TMoved:
				ParseMoved(fr.Data)
			case TInputHas:
				if h, err := ParseInputHas(fr.Data); err == nil && (h.Frames < h.Base || h.Base < 0 || h.Pid < 0) {
					t.Fatalf("input-has %+v accepted", h)
				}
			case TDelivered:
				if d, err := ParseDelivered(fr); err == nil {
					if again, _ := ParseDelivered(d.Frame()); again != d {
						t.Fatalf("delivered %+v does not survive its own encoding", d)
					}
				}
			}
		}
	})
}
