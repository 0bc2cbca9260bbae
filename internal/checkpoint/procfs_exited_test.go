package checkpoint

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

func TestExitedStatus(t *testing.T) {
	for _, tc := range []struct {
		status string
		want   bool
	}{
		{"Name:\tsleep\nState:\tS (sleeping)\nUmask:\t0022\n", false},
		{"Name:\tsleep\nState:\tZ (zombie)\nTgid:\t7\n", true},
		{"Name:\tsleep\nState:\tX (dead)\n", true},
		{"Name:\tsleep\n", false},
	} {
		if got := exitedStatus(tc.status); got != tc.want {
			t.Errorf("exitedStatus(%q) = %v, want %v", tc.status, got, tc.want)
		}
	}
}

// TestCheckExited: a zombie and a process that is gone are refused as
// exited, not with a parse error.
func TestCheckExited(t *testing.T) {
	cmd := exec.Command("true")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	for { // a zombie until waited for
		b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
		if exitedStatus(string(b)) {
			break
		}
	}
	for _, when := range []string{"zombie", "reaped"} {
		err := Check(pid)
		if err == nil || !strings.Contains(err.Error(), "gone: it exited") {
			t.Errorf("%s: Check = %v; want gone: it exited", when, err)
		}
		cmd.Wait()
	}
}
