package rexec

import (
	"errors"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// session runs the command of a tty run under the helper, which stays as
// the pty's session leader and the command's parent, as a login shell
// would. Without it the command's process group would be orphaned (its
// parent, the agent, is in another session) and the kernel would discard
// the terminal's SIGTSTP: Ctrl-Z would do nothing. The helper, already
// the caller, starts the command in its own foreground process group,
// reports its pid, mirrors its stops (stopping itself, which the agent
// sees) and ends as it ended.
func session(s *Spec, path string) (int, string) {
	// Caught, not ignored: an ignored signal would stay ignored in the
	// command; a caught one is reset by exec.
	signal.Notify(make(chan os.Signal, 1), unix.SIGHUP, unix.SIGINT, unix.SIGQUIT, unix.SIGTSTP, unix.SIGTTIN, unix.SIGTTOU, unix.SIGPIPE)
	syscall.CloseOnExec(shimPidFD) // the command must not hold the report open
	attr := &syscall.ProcAttr{Env: s.Env, Files: []uintptr{0, 1, 2},
		Sys: &syscall.SysProcAttr{Setpgid: true, Foreground: true, Ctty: 0}}
	pid, err := syscall.ForkExec(path, s.Argv, attr)
	if errors.Is(err, unix.ENOEXEC) {
		pid, err = syscall.ForkExec("/bin/sh", append([]string{"sh", path}, s.Argv[1:]...), attr)
	}
	if err != nil {
		var ee *ExecError
		if errors.As(startError(err, s), &ee) {
			return ee.Code, ee.Msg // as a shell says it
		}
		return ExitCannotRun, err.Error()
	}
	report := os.NewFile(shimPidFD, "pid")
	report.WriteString(strconv.Itoa(pid))
	report.Close()
	for {
		var ws unix.WaitStatus
		_, err := unix.Wait4(pid, &ws, unix.WUNTRACED|unix.WCONTINUED, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		switch {
		case err != nil:
			os.Exit(ExitLost)
		case ws.Stopped():
			unix.Kill(unix.Getpid(), unix.SIGSTOP) // the agent sees this stop
		case ws.Exited():
			ExitAs(Status{Code: ws.ExitStatus()})
		case ws.Signaled():
			ExitAs(Status{Signal: int(ws.Signal())})
		}
	}
}
