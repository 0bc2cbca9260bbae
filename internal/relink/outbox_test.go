package relink

import (
	"fmt"
	"testing"

	"github.com/ssi-cluster/ssi/internal/rexec"
)

func out(s string) rexec.Frame { return rexec.Frame{Type: rexec.TStdout, Data: []byte(s)} }

// names lists the payloads of frames.
func names(fs []rexec.Frame) string {
	s := ""
	for _, f := range fs {
		s += string(f.Data)
	}
	return s
}

func TestOutbox(t *testing.T) {
	cases := []struct {
		name  string
		put   string // one frame a letter
		ack   int64
		from  int64
		want  string // frames after from
		ok    bool
		bytes int
		last  int64
	}{
		{"nothing acknowledged: everything again", "abc", 0, 0, "abc", true, 3, 3},
		{"the rest after what the other side has", "abcd", 1, 2, "cd", true, 3, 4},
		{"all received", "ab", 2, 2, "", true, 0, 2},
		{"asked for a frame dropped already", "abcd", 3, 1, "", false, 1, 4},
		{"asked from beyond what was put", "ab", 0, 3, "", false, 2, 2},
		{"an ack beyond what was put stops at the last", "ab", 9, 2, "", true, 0, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var o Outbox
			for _, c := range tc.put {
				o.Put(out(string(c)))
			}
			o.Ack(tc.ack)
			fs, ok := o.From(tc.from)
			if names(fs) != tc.want || ok != tc.ok || o.Bytes() != tc.bytes || o.Last() != tc.last {
				t.Errorf("got %q %v, %d bytes, last %d; want %q %v, %d bytes, last %d",
					names(fs), ok, o.Bytes(), o.Last(), tc.want, tc.ok, tc.bytes, tc.last)
			}
		})
	}
}

// TestOutboxCopies: a frame put is copied (the sender reuses its buffer)
// and a list given out is not changed by later acks.
func TestOutboxCopies(t *testing.T) {
	var o Outbox
	buf := []byte("x")
	o.Put(rexec.Frame{Type: rexec.TStdout, Data: buf})
	buf[0] = 'y'
	o.Put(out("z"))
	fs, _ := o.From(0)
	o.Ack(2)
	if names(fs) != "xz" {
		t.Errorf("got %q, want xz", names(fs))
	}
}

func TestOutboxRestartAndClear(t *testing.T) {
	var o Outbox
	for i := range 5 {
		o.Put(out(fmt.Sprint(i)))
	}
	o.Ack(1)
	o.Restart(3) // the old session had 3: 3 and 4 are for the new one, as 1 and 2
	if fs, ok := o.From(0); names(fs) != "34" || !ok || o.Last() != 2 || o.Bytes() != 2 {
		t.Errorf("after restart: %q %v, last %d, %d bytes", names(fs), ok, o.Last(), o.Bytes())
	}
	o.Clear()
	if _, ok := o.From(0); ok || o.Last() != 2 || o.Bytes() != 0 {
		t.Errorf("after clear: from 0 %v, last %d, %d bytes", ok, o.Last(), o.Bytes())
	}
	if o.Put(out("n")) != 3 {
		t.Errorf("numbering does not go on after a clear")
	}
}

func TestAcks(t *testing.T) {
	var a Acks
	sent := 0
	for i := range 130 {
		if _, now := a.Got(10, false); now {
			sent++
		}
		_ = i
	}
	if sent != 2 || a.Received() != 130 {
		t.Errorf("130 small frames: %d acks, %d received; want 2 and 130", sent, a.Received())
	}
	if n, now := a.Got(AckBytes, false); !now || n != 131 {
		t.Errorf("a large frame: ack %d now=%v", n, now)
	}
	if n, now := a.Got(1, true); !now || n != 132 {
		t.Errorf("the last frame: ack %d now=%v", n, now)
	}
	a.Reset()
	if a.Received() != 0 {
		t.Errorf("reset: %d", a.Received())
	}
}

// TestOutboxSkip: an agent that re-adopts a held process numbers on from
// what its home has; the holder has the frames after that.
func TestOutboxSkip(t *testing.T) {
	var o Outbox
	o.Skip(7)
	if o.Base() != 7 || o.Last() != 7 {
		t.Fatalf("after skip: base %d last %d, want 7 7", o.Base(), o.Last())
	}
	if n := o.Put(out("a")); n != 8 {
		t.Fatalf("first frame after the skip is %d, want 8", n)
	}
	o.Skip(20) // not empty: no skip
	if fs, ok := o.From(7); !ok || names(fs) != "a" || o.Last() != 8 {
		t.Fatalf("skip of a non-empty outbox changed it: %q %v, last %d", names(fs), ok, o.Last())
	}
	var a Acks
	a.Resume(5)
	if n, _ := a.Got(1, true); n != 6 {
		t.Fatalf("acks resumed from 5 count %d, want 6", n)
	}
}

// TestOutboxNext: Next gives the frame after n, kept and put, one at a
// time (a holder replays a backlog with it, not From's copy of the rest).
func TestOutboxNext(t *testing.T) {
	var o Outbox
	for _, s := range []string{"a", "b", "c", "d"} {
		o.Put(out(s))
	}
	o.Ack(1)
	for _, tc := range []struct {
		n    int64
		want string
		ok   bool
	}{{0, "", false}, {1, "b", true}, {3, "d", true}, {4, "", false}, {9, "", false}} {
		f, ok := o.Next(tc.n)
		if ok != tc.ok || string(f.Data) != tc.want {
			t.Errorf("Next(%d) = %q %v, want %q %v", tc.n, f.Data, ok, tc.want, tc.ok)
		}
	}
}

// TestOutboxFull: a window is full at Window bytes or WindowFrames frames,
// whichever comes first.
func TestOutboxFull(t *testing.T) {
	var small, big Outbox
	for i := 0; !small.Full(); i++ {
		if i > WindowFrames {
			t.Fatalf("%d one-byte frames and not full", i)
		}
		small.Put(out("x"))
	}
	if n := small.Last(); n != WindowFrames {
		t.Errorf("full after %d one-byte frames, want %d", n, WindowFrames)
	}
	chunk := rexec.Frame{Type: rexec.TStdout, Data: make([]byte, rexec.Chunk)}
	for !big.Full() {
		big.Put(chunk)
	}
	if big.Bytes() != Window {
		t.Errorf("full at %d bytes of whole chunks, want %d", big.Bytes(), Window)
	}
}

// BenchmarkOutboxReplay replays a full window of line-sized frames, as a
// holder does to an agent that restarted, frame by frame.
func BenchmarkOutboxReplay(b *testing.B) {
	var o Outbox
	for !o.Full() {
		o.Put(out("123456\n"))
	}
	b.ReportAllocs()
	for b.Loop() {
		for n := o.Base(); ; n++ {
			if _, ok := o.Next(n); !ok {
				break
			}
		}
	}
}
