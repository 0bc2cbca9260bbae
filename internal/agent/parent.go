package agent

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/ssi-cluster/ssi/internal/procstat"
)

// A process moves alone: its parent stays on the source and would see it
// killed (wait(2) gives SIGKILL) while it runs on elsewhere. Until a
// stand-in keeps the parent's view true (openMosix kept such relations
// through the home node), a process whose parent waits for it is refused
// with the reason. A parent does not wait for it when it is init or a
// process of another PID namespace (ppid 0 or 1), a zombie, or part of ssi
// (the agent, a deputy or an exec helper, or any process of the agent's
// own binary: processes run or restored by ssi are their children).

// parentWaits returns why pid cannot leave its parent, or "".
func (a *Agent) parentWaits(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ""
	}
	st, err := procstat.Parse(b)
	if err != nil {
		return ""
	}
	ppid, err := st.Uint(4)
	if err != nil || ppid <= 1 {
		return ""
	}
	parent := int(ppid)
	if parent == os.Getpid() || a.track.hidden()[parent] || a.isOurBinary(parent) {
		return ""
	}
	pb, err := os.ReadFile("/proc/" + strconv.Itoa(parent) + "/stat")
	if err != nil {
		return "" // gone meanwhile: the process is init's now
	}
	ps, err := procstat.Parse(pb)
	if err != nil || ps.State() == 'Z' {
		return ""
	}
	return fmt.Sprintf("its parent, pid %d (%s) on node %d, waits for it and would see it killed: start it with ssi run, or detached from its parent (setsid and a double fork, nohup ... & from a shell that then exits)",
		parent, ps.Comm, a.Identity().Number)
}

// isOurBinary reports whether pid runs the agent's own executable.
func (a *Agent) isOurBinary(pid int) bool {
	exe, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe")
	return err == nil && strings.TrimSuffix(exe, " (deleted)") == a.shim
}
