package rexec

import (
	"os"
	"testing"
	"time"
)

// TestInboxBounded: input for a process that does not read waits past
// inboxLimit; a move's hold lets it through; reading drains it in order.
func TestInboxBounded(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	p := &Proc{in: newInbox(w)}
	chunk := make([]byte, 1<<20)
	done := make(chan struct{})
	go func() {
		for range 64 {
			p.WriteStdin(chunk) // 64 MiB: more than the limit and the pipe
		}
		close(done)
	}()
	select {
	case <-done:
		t.Fatal("64 MiB were queued for a process that reads nothing")
	case <-time.After(200 * time.Millisecond):
	}
	p.HoldStdin()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("a held inbox still made its writer wait")
	}
	p.in.stop()
}
