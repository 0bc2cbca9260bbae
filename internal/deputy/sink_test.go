package deputy

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestPositionTake: what of the bytes an agent gives is written, for
// agents that go at every kind of moment.
func TestPositionTake(t *testing.T) {
	for _, tc := range []struct {
		name string
		// Each agent: what it gives, in order, and how far it acked
		// (bytes of its own count) before it went.
		agents []struct {
			give  []string
			acked int64
		}
		want string
	}{
		{"one agent", []struct {
			give  []string
			acked int64
		}{{[]string{"abc", "def"}, 6}}, "abcdef"},
		{"killed after writing, before telling", []struct {
			give  []string
			acked int64
		}{{[]string{"abc", "def"}, 3}, {[]string{"def", "gh"}, 5}}, "abcdefgh"},
		{"killed inside a frame", []struct {
			give  []string
			acked int64
		}{{[]string{"abc", "de"}, 3}, {[]string{"def", "gh"}, 5}}, "abcdefgh"},
		{"killed before writing anything told", []struct {
			give  []string
			acked int64
		}{{[]string{"ab"}, 0}, {[]string{"abc"}, 3}}, "abc"},
		{"three agents, the middle one killed at once", []struct {
			give  []string
			acked int64
		}{{[]string{"abc", "def"}, 3}, {[]string{"de"}, 0}, {[]string{"def", "g"}, 4}}, "abcdefg"},
		{"the next agent resends less than was written, then more", []struct {
			give  []string
			acked int64
		}{{[]string{"abcdef"}, 0}, {[]string{"ab"}, 2}, {[]string{"cdefgh"}, 6}}, "abcdefgh"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var p position
			var out []byte
			for _, a := range tc.agents {
				for _, g := range a.give {
					out = append(out, p.take([]byte(g))...)
				}
				p.ack(a.acked)
				p.rejoin()
			}
			if string(out) != tc.want {
				t.Errorf("wrote %q, want %q", out, tc.want)
			}
		})
	}
}

// syncBuf is a writer safe for the pump's goroutine.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestSinkAgentsKilled: numbered lines through the pipes of agents that
// each go after a random number of frames, having told the deputy of a
// random prefix of them; every next agent resends from the last frame
// told. Every line comes out once and in order.
func TestSinkAgentsKilled(t *testing.T) {
	var frames [][]byte
	for i := range 2000 {
		frames = append(frames, []byte(fmt.Sprintf("line %d\n", i)))
	}
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 1))
		out := &syncBuf{}
		k := &sink{w: out, outMu: &sync.Mutex{}}
		var copied chan struct{}
		if seed%2 == 1 { // into a pipe
			var p [2]int // blocking, as a shell's pipe is
			if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
				t.Fatal(err)
			}
			r, w := os.NewFile(uintptr(p[0]), "r"), os.NewFile(uintptr(p[1]), "w")
			k.w, copied = w, make(chan struct{})
			go func() { io.Copy(out, r); close(copied) }()
			defer r.Close()
			defer w.Close()
		}
		told := 0 // frames the deputy was told of
		for told < len(frames) {
			w, err := k.pipe()
			if err != nil {
				t.Fatal(err)
			}
			next := min(told+1+rng.IntN(300), len(frames)) // frames this agent writes
			partial := rng.IntN(2) == 0                    // the last only in part: killed inside the write
			whole := next
			if partial {
				whole--
			}
			var bytesTold int64
			tellUpTo := told + rng.IntN(whole-told+1) // told after their writes
			for i := told; i < next; i++ {
				f := frames[i]
				if i == next-1 && partial {
					f = f[:rng.IntN(len(f))]
				}
				if _, err := w.Write(f); err != nil {
					t.Fatal(err)
				}
				if i < tellUpTo {
					bytesTold += int64(len(f))
				}
			}
			k.ack(bytesTold)
			told = tellUpTo
			w.Close() // the agent went
			if !k.drained(time.Now().Add(10 * time.Second)) {
				t.Fatal("the pipe was not read to its end")
			}
			k.rejoin()
		}
		if copied != nil {
			k.w.(*os.File).Close()
			<-copied
		}
		var want strings.Builder
		for _, f := range frames {
			want.Write(f)
		}
		if got := out.String(); got != want.String() {
			t.Fatalf("seed %d: output differs from the lines written once each (%d bytes, want %d)", seed, len(got), want.Len())
		}
	}
}
