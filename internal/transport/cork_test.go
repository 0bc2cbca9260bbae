package transport

import (
	"bytes"
	"net"
	"testing"
)

// writeLog is a net.Conn that records its writes.
type writeLog struct {
	net.Conn
	writes []int
	data   bytes.Buffer
}

func (w *writeLog) Write(p []byte) (int, error) {
	w.writes = append(w.writes, len(p))
	return w.data.Write(p)
}

func TestCorkGathersRecords(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		corked bool
		sizes  []int // writes of the TLS layer
		want   []int // writes reaching the socket
	}{
		{"uncorked passes through", false, []int{100, recordSize}, []int{100, recordSize}},
		{"records gathered", true, []int{recordSize, recordSize, 5}, []int{2*recordSize + 5}},
		{"gathered up to corkSize", true, repeat(recordSize+29, 20), []int{15 * (recordSize + 29), 5 * (recordSize + 29)}},
		{"a write larger than corkSize", true, []int{10, corkSize + 1, 7}, []int{10, corkSize + 1, 7}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			log := &writeLog{}
			k := &cork{Conn: log}
			k.set(tc.corked)
			var want bytes.Buffer
			for i, n := range tc.sizes {
				p := bytes.Repeat([]byte{byte(i)}, n)
				want.Write(p)
				if m, err := k.Write(p); m != n || err != nil {
					t.Fatalf("Write(%d bytes) = %d, %v", n, m, err)
				}
			}
			if err := k.set(false); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(log.data.Bytes(), want.Bytes()) {
				t.Fatal("the socket got other bytes, or in another order")
			}
			if len(log.writes) != len(tc.want) {
				t.Fatalf("socket writes %v, want %v", log.writes, tc.want)
			}
			for i := range tc.want {
				if log.writes[i] != tc.want[i] {
					t.Fatalf("socket writes %v, want %v", log.writes, tc.want)
				}
			}
		})
	}
}

func repeat(n, times int) []int {
	s := make([]int, times)
	for i := range s {
		s[i] = n
	}
	return s
}
