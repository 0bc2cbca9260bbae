package checkpoint

import "os"

// Engine is a checkpoint/restore backend. Ptrace is the one in this
// package; another (say, CRIU) could sit beside it.
type Engine interface {
	// Check reports, without freezing anything, whether pid can move:
	// nil or a *RefusalError.
	Check(pid int) error
	// Freeze stops pid for a dump; on error pid runs on as before.
	Freeze(pid int) (Frozen, error)
	// Restore makes a new running process, a child of the caller, from img.
	Restore(img *Image) (*os.Process, error)
}

// Frozen is a process held stopped by an Engine.
type Frozen interface {
	Dump() (*Image, error)
	Resume() error // let it go on where it stopped
	Kill() error   // end it, e.g. once restored elsewhere
}

// Ptrace is the Engine of this package. Stub is the static executable
// that Restore turns into the restored process.
type Ptrace struct{ Stub string }

var _ Engine = Ptrace{}

// Check calls Check.
func (Ptrace) Check(pid int) error { return Check(pid) }

// Freeze calls Freeze.
func (Ptrace) Freeze(pid int) (Frozen, error) {
	p, err := Freeze(pid)
	if err != nil {
		return nil, err
	}
	return p, nil
}

// Restore calls Restore with the engine's stub.
func (e Ptrace) Restore(img *Image) (*os.Process, error) { return Restore(img, e.Stub) }
