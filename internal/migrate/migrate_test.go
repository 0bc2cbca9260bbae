package migrate

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"
)

// chanConn is a Conn over a channel, one way (Send on one end, Recv on
// the other), for tests.
type chanConn struct{ ch chan []byte }

func (c chanConn) Send(m Msg) error {
	b, err := m.MarshalBinary()
	if err != nil {
		return err
	}
	c.ch <- b
	return nil
}

func (c chanConn) Recv() (Msg, error) {
	b, ok := <-c.ch
	if !ok {
		return Msg{}, io.EOF
	}
	var m Msg
	return m, m.UnmarshalBinary(b)
}

func TestMsgRoundTripAndDamage(t *testing.T) {
	good, _ := (&Msg{Kind: KStdin, Data: []byte("hello")}).MarshalBinary()
	flip := func(i int) []byte { b := bytes.Clone(good); b[i] ^= 1; return b }
	tests := []struct {
		name string
		b    []byte
		ok   bool
	}{
		{"intact", good, true},
		{"payload byte flipped", flip(len(good) - 1), false},
		{"checksum flipped", flip(5), false},
		{"length lies", flip(1), false},
		{"unknown kind", append([]byte{99}, good[1:]...), false},
		{"short", good[:4], false},
		{"cut payload", good[:len(good)-1], false},
	}
	for _, tt := range tests {
		var m Msg
		err := m.UnmarshalBinary(tt.b)
		if tt.ok != (err == nil) || err != nil && !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v", tt.name, err)
		}
		if tt.ok && (m.Kind != KStdin || string(m.Data) != "hello") {
			t.Errorf("%s: got %s %q", tt.name, m.Kind, m.Data)
		}
	}
}

func TestImageChunks(t *testing.T) {
	c := chanConn{make(chan []byte, 1024)}
	img := bytes.Repeat([]byte("0123456789"), Chunk/4) // 2.5 chunks
	img = append(img, make([]byte, 3*Chunk+5)...)      // zeros, a whole number of blocks or not
	img = append(img, "tail"...)
	img = append(img, make([]byte, ZeroBlock+1)...)
	w := NewImageWriter(c)
	for _, cut := range [][2]int{{0, 7}, {7, 5000}, {5000, 3 * Chunk}, {3 * Chunk, len(img)}} {
		w.Write(img[cut[0]:cut[1]])
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if len(c.ch) > 8 {
		t.Errorf("%d messages for %d bytes, mostly zeros", len(c.ch), len(img))
	}
	c.Send(JSON(KEnd, End{ImageBytes: w.N}))
	close(c.ch)
	r := NewImageReader(c)
	got, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(got, img) {
		t.Fatalf("read %d bytes (%v), want %d", len(got), err, len(img))
	}
	m, err := r.Next()
	var e End
	if err != nil || m.Kind != KEnd || m.Parse(&e) != nil || e.ImageBytes != int64(len(img)) || r.N != e.ImageBytes {
		t.Fatalf("next %s %v %+v", m.Kind, err, e)
	}
}

func TestFaultHook(t *testing.T) {
	for _, tt := range []struct {
		action string
		want   []string // what arrives, by kind, "!" for a refused message
	}{
		{"corrupt", []string{"stdin", "!", "stdin"}},
		{"truncate", []string{"stdin"}},
	} {
		c := chanConn{make(chan []byte, 8)}
		fc := WithFault(c, &Action{What: tt.action, N: 2}, func() {})
		for i := 0; i < 3; i++ {
			fc.Send(Msg{Kind: KStdin, Data: []byte{byte(i)}})
		}
		close(c.ch)
		var got []string
		for {
			m, err := c.Recv()
			if err == io.EOF {
				break
			}
			if err != nil {
				got = append(got, "!")
				continue
			}
			got = append(got, m.Kind.String())
		}
		if len(got) != len(tt.want) {
			t.Errorf("%s: got %v, want %v", tt.action, got, tt.want)
			continue
		}
		for i := range got {
			if got[i] != tt.want[i] {
				t.Errorf("%s: got %v, want %v", tt.action, got, tt.want)
			}
		}
	}
}

func TestFaultList(t *testing.T) {
	t.Setenv(FaultEnv, "corrupt:2,ok,truncate:+3")
	f, err := FaultFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	want := []*Action{{"corrupt", 2, false}, nil, {"truncate", 3, true}, nil}
	for i, w := range want {
		got := f.Next()
		if (got == nil) != (w == nil) || got != nil && *got != *w {
			t.Errorf("migration %d: %+v, want %+v", i+1, got, w)
		}
	}
	for _, bad := range []string{"corrupt", "corrupt:0", "melt:2", "ok,stall:x", "stall:+"} {
		t.Setenv(FaultEnv, bad)
		if _, err := FaultFromEnv(); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestSendPages(t *testing.T) {
	data := make([]byte, 6*pageSize)
	data[pageSize] = 1              // page 1
	data[3*pageSize+pageSize-1] = 2 // page 3
	data[4*pageSize] = 3            // page 4 (a run with 3)
	for _, tt := range []struct {
		skip  bool
		pages [][2]uint64 // address, length
	}{
		{false, [][2]uint64{{0x10000, 6 * pageSize}}},
		{true, [][2]uint64{{0x10000 + pageSize, pageSize}, {0x10000 + 3*pageSize, 2 * pageSize}}},
	} {
		c := chanConn{make(chan []byte, 16)}
		n, err := SendPages(c, 0x10000, data, tt.skip)
		close(c.ch)
		var got [][2]uint64
		var total int64
		for {
			m, err := c.Recv()
			if err != nil {
				break
			}
			addr, b, err := ParsePages(m)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(b, data[addr-0x10000:addr-0x10000+uint64(len(b))]) {
				t.Errorf("pages at %#x: wrong bytes", addr)
			}
			got = append(got, [2]uint64{addr, uint64(len(b))})
			total += int64(len(b))
		}
		if err != nil || n != total || fmt.Sprint(got) != fmt.Sprint(tt.pages) {
			t.Errorf("skip %v: sent %v (%d, %v), want %v", tt.skip, got, n, err, tt.pages)
		}
	}
}
