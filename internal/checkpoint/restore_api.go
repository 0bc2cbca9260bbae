package checkpoint

import (
	"fmt"
	"os"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// RestoreOptions say how RestoreWith makes the process.
type RestoreOptions struct {
	// Files holds, for every descriptor of img.External, the file to
	// install at that number (the agent's new pipe ends or pty slave);
	// files for other numbers are ignored. Each must be open for what the
	// process did with its descriptor (read, write or both). RestoreWith
	// sets the image's status flags (O_NONBLOCK, O_APPEND...) on the open
	// file description, which the caller's copy shares: the caller should
	// hand the descriptors over and close its copies.
	Files map[int]*os.File
	// AnyPid gives the process and its threads whatever ids the kernel
	// hands out, without asking for the image's.
	AnyPid bool
	// Hold leaves the process stopped under ptrace when RestoreWith
	// returns: Restored.Release lets it run, Restored.Kill ends it (a
	// migration commits or aborts meanwhile). Until then the caller must
	// not wait(2) for it: the stops belong to the restorer's thread.
	Hold bool
	// NewGroup makes the process the leader of a new process group
	// (setpgid(0, 0), injected), unless it becomes the leader of a new
	// session with a terminal (see Files).
	NewGroup bool
}

// Restored is the process that RestoreWith made, running.
type Restored struct {
	Process *os.Process // a child of the caller, which must wait for it
	Pid     int
	PidKept bool  // Pid is the image's pid
	PidErr  error // why the image's pid could not be had (nil if kept or not asked)

	Tids     []int // the new thread ids, in the order of img.Threads
	TidsKept int   // how many threads got their old id

	held *heldRestore // with RestoreOptions.Hold, until Release or Kill
}

// Restore starts stub, any static x86_64 executable (it is stopped at its
// exec and never runs its own code), and turns it into the process of img
// by injected system calls. The new process runs when Restore returns; it
// is a child of the caller, which must wait for it. It gets the image's
// pid and thread ids where they are free (see RestoreWith). On error
// nothing is left running. An image with external descriptors needs
// RestoreWith.
func Restore(img *Image, stub string) (*os.Process, error) {
	res, err := RestoreWith(img, stub, RestoreOptions{})
	if err != nil {
		return nil, err
	}
	return res.Process, nil
}

// RestoreWith is Restore with options, and tells which pid the process
// got: the image's when it is free here (clone3 with set_tid, which needs
// CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE over the pid namespace), else
// any (Restored.PidErr says why); every thread likewise. The external
// descriptors of the image are replaced by o.Files.
func RestoreWith(img *Image, stub string, o RestoreOptions) (*Restored, error) {
	if img.Arch != "x86_64" {
		return nil, fmt.Errorf("checkpoint: image arch %q", img.Arch)
	}
	x, err := prepareExternal(img.External, o.Files)
	if err != nil {
		return nil, err
	}
	t := newTracer()
	res := &Restored{}
	defer func() {
		if res.held == nil {
			t.close()
		}
	}()
	err = t.do(func() error {
		stubPid, err := syscall.ForkExec(stub, []string{stub}, &syscall.ProcAttr{
			Dir: "/", Files: x.files, Sys: &syscall.SysProcAttr{Ptrace: true}})
		runtime.KeepAlive(o.Files) // their descriptors are in x.files
		if err != nil {
			return fmt.Errorf("checkpoint: start stub: %w", err)
		}
		s := &restoreState{stub: stubPid, pid: stubPid}
		if err = restoreInto(s, img, x, &o, res); err != nil {
			s.kill()
		} else if o.Hold {
			res.held = &heldRestore{t: t, s: s}
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if res.Process, err = os.FindProcess(res.Pid); err != nil {
		return nil, err
	}
	return res, nil
}

// restoreState is what a restore has created, to kill if it fails.
type restoreState struct {
	stub int   // the stub, until it is gone (0)
	pid  int   // the process being restored: the stub or its copy
	tids []int // threads created in it
	// guarded: held, every thread parked (guard.go)
	guarded bool
}

// kill kills and reaps everything the restore created.
func (s *restoreState) kill() {
	unix.Kill(s.pid, unix.SIGKILL)
	if s.stub != 0 && s.stub != s.pid {
		unix.Kill(s.stub, unix.SIGKILL)
		reapKilled(s.stub)
	}
	for _, tid := range s.tids { // traced threads: ours to reap, before the leader
		reapKilled(tid)
	}
	reapKilled(s.pid)
}
