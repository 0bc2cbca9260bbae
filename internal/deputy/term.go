package deputy

import (
	"os"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/ssi-cluster/ssi/internal/rexec"
)

// terminal is the deputy's controlling terminal (its stdin), when it has
// one: raw while the deputy is in the foreground, restored otherwise.
type terminal struct {
	fd    int
	mu    sync.Mutex
	saved *unix.Termios // settings before raw mode; nil when not raw
}

func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// foreground reports whether the deputy's process group owns the terminal.
func foreground(fd int) bool {
	pgrp, err := unix.IoctlGetInt(fd, unix.TIOCGPGRP)
	return err == nil && pgrp == unix.Getpgrp()
}

// raw puts the terminal in raw mode if the deputy is in the foreground.
func (t *terminal) raw() {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.saved != nil || !foreground(t.fd) {
		return
	}
	if old, err := rexec.MakeRaw(t.fd); err == nil {
		t.saved = old
	}
}

// restore puts the terminal back as it was.
func (t *terminal) restore() {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.saved != nil {
		rexec.RestoreTerm(t.fd, t.saved)
		t.saved = nil
	}
}
