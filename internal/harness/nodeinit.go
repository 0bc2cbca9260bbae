package harness

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// NodeInit is `ssi __nodeinit`: the init of one node in namespace mode. The
// harness starts it through `ip netns exec` as PID 1 of new PID, mount, UTS
// and IPC namespaces. It makes its mounts private, mounts the node's own
// /proc (and /dev/mqueue), sets the hostname, writes "ok" to --ready-fd, and
// then reaps whatever is orphaned in the node until SIGTERM or SIGINT, on
// which it asks every process of the node to stop, waits up to 5 s and
// returns (the kernel kills what is left when PID 1 exits). Processes are
// put in the node by entering its namespaces (nsenter), not as children of
// NodeInit.
func NodeInit(args []string) error {
	fs := flag.NewFlagSet("__nodeinit", flag.ContinueOnError)
	hostname := fs.String("hostname", "", "the node's hostname")
	readyFD := fs.Int("ready-fd", -1, `file descriptor to write "ok" to and close once the node is set up`)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if os.Getpid() != 1 {
		return errors.New("__nodeinit must be PID 1 of a new PID namespace; the test harness starts it")
	}
	if err := setupNode(*hostname); err != nil {
		return err
	}
	sigs := make(chan os.Signal, 32)
	signal.Notify(sigs, unix.SIGCHLD, unix.SIGTERM, unix.SIGINT)
	if *readyFD >= 0 {
		ready := os.NewFile(uintptr(*readyFD), "ready")
		_, err := ready.WriteString("ok\n")
		ready.Close()
		if err != nil {
			return fmt.Errorf("signal ready: %w", err)
		}
	}
	for sig := range sigs {
		reap()
		if sig != unix.SIGCHLD {
			break
		}
	}
	unix.Kill(-1, unix.SIGTERM) // every process of the namespace but us
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline) && othersAlive(); {
		time.Sleep(20 * time.Millisecond)
		reap()
	}
	return nil
}

// setupNode gives the node its own mounts, /proc and hostname.
func setupNode(hostname string) error {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make / private: %w", err)
	}
	const flags = unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC
	if err := unix.Mount("proc", "/proc", "proc", flags, ""); err != nil {
		return fmt.Errorf("mount /proc: %w", err)
	}
	if _, err := os.Stat("/dev/mqueue"); err == nil {
		if err := unix.Mount("mqueue", "/dev/mqueue", "mqueue", flags, ""); err != nil {
			return fmt.Errorf("mount /dev/mqueue: %w", err)
		}
	}
	if hostname != "" {
		if err := unix.Sethostname([]byte(hostname)); err != nil {
			return fmt.Errorf("sethostname: %w", err)
		}
	}
	return nil
}

// reap collects every exited child without blocking.
func reap() {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if pid <= 0 && err != unix.EINTR {
			return
		}
	}
}

// othersAlive reports whether the node has a process other than its init;
// the node's /proc lists only the node's processes.
func othersAlive() bool {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return false
	}
	for _, e := range entries {
		if pid, err := strconv.Atoi(e.Name()); err == nil && pid != 1 {
			return true
		}
	}
	return false
}
