package deputy

import (
	"context"
	"os"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ssi-cluster/ssi/internal/client"
)

func TestGrowPipe(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	growPipe(r)
	n, err := unix.FcntlInt(r.Fd(), unix.F_GETPIPE_SZ, 0)
	if err != nil || n < 1<<20 {
		t.Errorf("pipe size %d (%v), want 1 MiB", n, err)
	}
	f, err := os.CreateTemp(t.TempDir(), "x")
	if err != nil {
		t.Fatal(err)
	}
	growPipe(f) // not a pipe: left alone
	growPipe(nil)
	f.Close()
}

// TestSignalsQueuedUntilStarted: a signal that arrives before the remote
// process has started is kept, not sent (there is nothing to send it to).
func TestSignalsQueuedUntilStarted(t *testing.T) {
	s := newSession(client.New("/nonexistent.sock"), Options{}, 0)
	s.signal(context.Background(), int(unix.SIGINT))
	s.signal(context.Background(), int(unix.SIGTERM))
	if len(s.queued) != 2 || s.queued[0] != int(unix.SIGINT) || s.queued[1] != int(unix.SIGTERM) {
		t.Errorf("queued %v, want [SIGINT SIGTERM]", s.queued)
	}
}
