package rexec

import (
	"os"
	"os/signal"
	"time"

	"golang.org/x/sys/unix"
)

// Status is how a process ended, or why it could not be run or followed.
type Status struct {
	Code   int  `json:"code"`             // exit status (when Signal is 0)
	Signal int  `json:"signal,omitempty"` // killed by this signal
	Core   bool `json:"core,omitempty"`   // and dumped core
	// Lost: the process's node went down or could not be reached; Code is
	// ExitLost and the Error frame before says why.
	Lost bool `json:"lost,omitempty"`
}

// Exit statuses of ssi run's own (besides the process's).
const (
	ExitNotFound  = 127 // command not found (as a shell)
	ExitCannotRun = 126 // found but not executable, or the directory is missing
	ExitLost      = 255 // the node running it went down or the connection broke
)

// ShellCode is the status a shell gives: the exit code, or 128 + signal.
func (s Status) ShellCode() int {
	if s.Signal != 0 {
		return 128 + s.Signal
	}
	return s.Code
}

// ExitAs ends this process as s says another ended: the same exit status,
// or death by the same signal (without a core of its own); a signal whose
// default is to be ignored ends it with 128 + the signal.
func ExitAs(s Status) {
	if s.Signal != 0 {
		sig := unix.Signal(s.Signal)
		signal.Reset(sig)
		unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{})
		unix.Kill(unix.Getpid(), sig)
		time.Sleep(100 * time.Millisecond) // delivered, or ignored by default
	}
	os.Exit(s.ShellCode())
}

// Worse reports whether s is worse than t (for --np): lost, then death by
// signal, then the higher exit code.
func (s Status) Worse(t Status) bool {
	rank := func(x Status) int {
		switch {
		case x.Lost:
			return 3 << 16
		case x.Signal != 0:
			return 2<<16 | x.Signal
		case x.Code != 0:
			return 1<<16 | x.Code
		}
		return 0
	}
	return rank(s) > rank(t)
}
