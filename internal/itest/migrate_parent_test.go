package itest

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMigrateRefusesWaitedChild: in a node's shell, `prog & P=$!; ssi
// migrate ...; wait $P` made the shell see its child killed (137) while
// the child ran on elsewhere. A process whose parent waits for it is now
// refused with the reason, and runs on; its parent's wait gets its real
// exit status.
func TestMigrateRefusesWaitedChild(t *testing.T) {
	c, ctx := startCluster(t, 2)
	dir := shortTemp(t)
	os.Chmod(dir, 0o777)
	pidFile, status := filepath.Join(dir, "pid"), filepath.Join(dir, "status")
	// The shell starts sleep in the background and waits for it, as
	// make or a job script would.
	script := fmt.Sprintf("sleep 30 & echo $! >%s; wait $!; echo $? >%s", pidFile, status)
	shell := c.Command(2, "setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups", "sh", "-c", script)
	shell.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := shell.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { shell.Process.Kill(); shell.Wait() })
	var pid int
	if err := c.WaitFor(ctx, "the child's pid", func() (bool, error) {
		b, err := os.ReadFile(pidFile)
		if err != nil {
			return false, nil
		}
		pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil && pid > 0, err
	}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // past the exec
	cpid := int64(2)<<22 | int64(pid)
	o := ssiAs(t, c, 2, "65534:65534", "migrate", strconv.FormatInt(cpid, 10), "1")
	if o.code == 0 || !strings.Contains(o.stderr, "its parent, pid") || !strings.Contains(o.stderr, "waits for it") {
		t.Fatalf("migrate of a waited-for child: %v; want a refusal naming its parent", o)
	}
	t.Logf("%s", strings.TrimSpace(o.stderr))
	runsOn(t, ctx, c, cpid, 2)
	// The parent's wait gets the real status once the child ends.
	if k := ssiAs(t, c, 2, "65534:65534", "kill", "-TERM", strconv.FormatInt(cpid, 10)); k.code != 0 {
		t.Fatalf("kill: %v", k)
	}
	if err := c.WaitFor(ctx, "the parent's wait", func() (bool, error) {
		b, err := os.ReadFile(status)
		if err != nil {
			return false, nil
		}
		return check(strings.TrimSpace(string(b)) == "143", "wait gave %q, want 143 (SIGTERM)", b)
	}); err != nil {
		t.Fatal(err)
	}
}
