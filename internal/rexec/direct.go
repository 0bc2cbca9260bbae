package rexec

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// ExecError is a command that could not be started, as a shell reports
// it: the message (without the "ssi: " prefix) and the exit status.
type ExecError struct {
	Code int
	Msg  string
}

func (e *ExecError) Error() string { return e.Msg }

// startDirect starts a command without a tty straight from the agent, with
// no helper process in between (a helper is a whole Go program to start:
// about 10 ms here). The caller's umask goes to a thread of its own
// (unshare CLONE_FS) that forks the child and then ends; its uid, gid,
// groups and working directory are set by the fork (SysProcAttr); the
// child stops at its exec (PTRACE_TRACEME), before its first instruction,
// for its resource limits and nice value, and is let go.
func startDirect(s *Spec, files []*os.File) (*os.Process, error) {
	path, err := lookPathAs(s.Argv[0], envValue(s.Env, "PATH"), s)
	if err != nil {
		return nil, err
	}
	type result struct {
		p   *os.Process
		err error
	}
	ch := make(chan result, 1)
	go func() {
		// Never unlocked: this thread's fs_struct is its own from here,
		// and it ends with this goroutine. ptrace must come from the
		// thread that forked.
		runtime.LockOSThread()
		p, err := forkStopped(path, s, files)
		ch <- result{p, err}
	}()
	r := <-ch
	return r.p, r.err
}

func forkStopped(path string, s *Spec, files []*os.File) (*os.Process, error) {
	if err := unix.Unshare(unix.CLONE_FS); err != nil {
		return nil, fmt.Errorf("unshare: %w", err)
	}
	unix.Umask(s.Umask)
	groups := make([]uint32, len(s.Groups))
	for i, g := range s.Groups {
		groups[i] = uint32(g)
	}
	sys := &syscall.SysProcAttr{Setpgid: true, Ptrace: true}
	if err := asAgentUser(s); err != nil {
		return nil, err
	}
	if os.Geteuid() == 0 {
		sys.Credential = &syscall.Credential{Uid: uint32(s.UID), Gid: uint32(s.GID), Groups: groups}
	}
	attr := &os.ProcAttr{Dir: s.Dir, Env: s.Env, Files: files, Sys: sys}
	p, err := os.StartProcess(path, s.Argv, attr)
	if errors.Is(err, unix.ENOEXEC) {
		// A script without #!: a shell runs it with sh.
		p, err = os.StartProcess("/bin/sh", append([]string{"sh", path}, s.Argv[1:]...), attr)
	}
	if err != nil {
		return nil, startError(err, s)
	}
	fail := func(format string, args ...any) (*os.Process, error) {
		unix.Kill(p.Pid, unix.SIGKILL)
		unix.PtraceDetach(p.Pid)
		p.Wait()
		return nil, fmt.Errorf(format, args...)
	}
	var ws unix.WaitStatus
	if _, err := unix.Wait4(p.Pid, &ws, unix.WALL, nil); err != nil || !ws.Stopped() {
		return fail("the command did not stop at its exec (%v, status %#x)", err, uint32(ws))
	}
	// This thread becomes the caller (this thread only: raw system calls),
	// so that setting the command's limits needs no CAP_SYS_RESOURCE, and
	// no more than the caller may is done.
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESGID, uintptr(s.GID), uintptr(s.GID), uintptr(s.GID)); e != 0 {
		return fail("gid %d: %v", s.GID, e)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, uintptr(s.UID), uintptr(s.UID), uintptr(s.UID)); e != 0 {
		return fail("uid %d: %v", s.UID, e)
	}
	for _, r := range s.Rlimits {
		lim := unix.Rlimit{Cur: r.Cur, Max: r.Max}
		if err := unix.Prlimit(p.Pid, r.Resource, &lim, nil); err != nil {
			return fail("resource limit %d: %v", r.Resource, err)
		}
	}
	if err := unix.Setpriority(unix.PRIO_PROCESS, p.Pid, s.Nice); err != nil {
		return fail("nice %d: %v", s.Nice, err)
	}
	if err := unix.PtraceDetach(p.Pid); err != nil {
		return fail("letting the command go: %v", err)
	}
	return p, nil
}

// startError turns a failed fork or exec into what a shell says. The fork
// reports the errno of the first step that failed, chdir or exec: a
// missing or unsearchable working directory is told apart by looking.
func startError(err error, s *Spec) error {
	var en syscall.Errno
	if !errors.As(err, &en) {
		return err
	}
	if st, serr := os.Stat(s.Dir); serr != nil || !st.IsDir() || !searchable(s.Dir, s) {
		why := unix.ENOENT
		switch {
		case serr == nil && !st.IsDir():
			why = unix.ENOTDIR
		case serr == nil:
			why = unix.EACCES
		}
		return &ExecError{Code: ExitCannotRun, Msg: fmt.Sprintf("cd: %s: %s", s.Dir, errText(why))}
	}
	arg0 := s.Argv[0]
	if !filepath.IsAbs(arg0) {
		arg0 = filepath.Join(s.Dir, arg0)
	}
	if st, serr := os.Stat(arg0); en == unix.EACCES && serr == nil && st.IsDir() {
		en = unix.EISDIR // as a shell says it
	}
	return &ExecError{Code: codeFor(en), Msg: s.Argv[0] + ": " + errText(en)}
}

// lookPathAs finds file as a shell run by s's user would (see lookPath),
// judging permissions from the files' modes and owners.
func lookPathAs(file, path string, s *Spec) (string, error) {
	if strings.Contains(file, "/") {
		return file, nil // exec itself tells what is wrong with it
	}
	if path == "" {
		path = "/usr/local/bin:/usr/bin:/bin"
	}
	denied := false
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		if !filepath.IsAbs(dir) {
			dir = filepath.Join(s.Dir, dir)
		}
		p := filepath.Join(dir, file)
		var st unix.Stat_t
		if unix.Stat(p, &st) != nil || !searchable(dir, s) || st.Mode&unix.S_IFMT == unix.S_IFDIR {
			continue
		}
		if permits(&st, s, 0o1) {
			return p, nil
		}
		denied = true
	}
	if denied {
		return "", &ExecError{Code: ExitCannotRun, Msg: file + ": " + errText(unix.EACCES)}
	}
	return "", &ExecError{Code: ExitNotFound, Msg: file + ": command not found"}
}

// searchable reports whether s's user may search directory dir and reach
// it: every directory on its path must be searchable too (a PATH entry
// under root's 0700 home is there for root, not for the user, and a shell
// run by the user goes on to the next entry).
func searchable(dir string, s *Spec) bool {
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		var st unix.Stat_t
		if unix.Stat(d, &st) != nil || !permits(&st, s, 0o1) {
			return false
		}
		if d == "/" || d == "." {
			return true
		}
	}
}

// permits reports whether s's user has permission bits want (0o1 execute
// or search, 0o2 write, 0o4 read) on a file: root needs an execute bit to
// execute a regular file and nothing else; others go by owner, then group,
// then other.
func permits(st *unix.Stat_t, s *Spec, want uint32) bool {
	mode := st.Mode
	switch {
	case s.UID == 0:
		return want != 0o1 || mode&0o111 != 0 || mode&unix.S_IFMT == unix.S_IFDIR
	case int(st.Uid) == s.UID:
		return (mode>>6)&want == want
	case int(st.Gid) == s.GID || slices.Contains(s.Groups, int(st.Gid)):
		return (mode>>3)&want == want
	}
	return mode&want == want
}
