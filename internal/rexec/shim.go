package rexec

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// ShimArg is the hidden subcommand under which the agent's own binary runs
// as the helper between fork and the user's program.
const ShimArg = "__exec"

// The helper reads its Spec (JSON, to EOF) on shimSpecFD; with a tty it
// writes the command's pid (decimal) on shimPidFD.
const (
	shimSpecFD = 3
	shimPidFD  = 4
)

// Shim is the helper's whole life (tty runs only: see session). Started
// by Start as root on the pty, it applies the caller's limits, nice value
// and umask, becomes the caller (groups, gid, uid), changes to the working
// directory, finds the command in the caller's PATH and runs it under
// itself. On failure it prints what a shell prints and exits 127 (not
// found) or 126 (cannot run); it never returns.
func Shim() {
	code, msg := shim()
	fmt.Fprintf(os.Stderr, "ssi: %s\n", msg)
	os.Exit(code)
}

func shim() (int, string) {
	f := os.NewFile(shimSpecFD, "spec")
	b, err := io.ReadAll(io.LimitReader(f, maxSpecLen+1))
	f.Close()
	if err != nil {
		return ExitCannotRun, "reading the run request: " + err.Error()
	}
	var s Spec
	if err := json.Unmarshal(b, &s); err != nil {
		return ExitCannotRun, "malformed run request: " + err.Error()
	}
	if err := s.Validate(); err != nil {
		return ExitCannotRun, err.Error()
	}
	if !s.Tty {
		return ExitCannotRun, "the exec helper serves runs with a tty only"
	}
	// Nothing the agent holds (its own inheritance included) goes to the
	// command: a stray pipe would also keep it from migrating.
	unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC)
	if err := become(&s); err != nil {
		return ExitCannotRun, err.Error()
	}
	if err := unix.Chdir(s.Dir); err != nil {
		return ExitCannotRun, fmt.Sprintf("cd: %s: %s", s.Dir, errText(err))
	}
	path, err := lookPathAs(s.Argv[0], envValue(s.Env, "PATH"), &s)
	var ee *ExecError
	if errors.As(err, &ee) {
		return ee.Code, ee.Msg
	}
	return session(&s, path)
}

// become applies the caller's limits, nice value and umask while still
// root (so that a hard limit above this node's default is kept), then
// drops to the caller's groups, gid and uid.
func become(s *Spec) error {
	for _, r := range s.Rlimits {
		lim := unix.Rlimit{Cur: r.Cur, Max: r.Max}
		if err := unix.Setrlimit(r.Resource, &lim); err != nil {
			return fmt.Errorf("resource limit %d: %v", r.Resource, err)
		}
	}
	if err := unix.Setpriority(unix.PRIO_PROCESS, 0, s.Nice); err != nil {
		return fmt.Errorf("nice %d: %v", s.Nice, err)
	}
	unix.Umask(s.Umask)
	if os.Geteuid() != 0 {
		return asAgentUser(s) // a user's own agent (ssi dev without root): it is already s's user
	}
	groups := s.Groups
	if groups == nil {
		groups = []int{}
	}
	if err := syscall.Setgroups(groups); err != nil {
		return fmt.Errorf("groups: %v", err)
	}
	if err := syscall.Setresgid(s.GID, s.GID, s.GID); err != nil {
		return fmt.Errorf("gid %d: %v", s.GID, err)
	}
	if err := syscall.Setresuid(s.UID, s.UID, s.UID); err != nil {
		return fmt.Errorf("uid %d: %v", s.UID, err)
	}
	return nil
}

// asAgentUser refuses, in an agent that is not root, a process for another
// user than the agent's: such an agent cannot change uid, and runs
// processes as its own user only.
func asAgentUser(s *Spec) error {
	if uid := os.Geteuid(); uid != 0 && s.UID != uid {
		return &ExecError{Code: ExitCannotRun, Msg: fmt.Sprintf("this node's agent runs as uid %d, not as root: it runs processes for uid %d only, not %d", uid, uid, s.UID)}
	}
	return nil
}

func envValue(env []string, key string) string {
	for i := len(env) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(env[i], key+"="); ok {
			return v
		}
	}
	return ""
}

// codeFor is a shell's status for a failed exec: 127 when the file is
// missing, 126 otherwise.
func codeFor(err error) int {
	if errors.Is(err, unix.ENOENT) {
		return ExitNotFound
	}
	return ExitCannotRun
}

// errText is an errno as a shell prints it ("No such file or directory").
func errText(err error) string {
	var en unix.Errno
	if errors.As(err, &en) {
		s := en.Error()
		return strings.ToUpper(s[:1]) + s[1:]
	}
	return err.Error()
}
