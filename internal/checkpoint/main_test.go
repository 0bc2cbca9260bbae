package checkpoint

import (
	"os"
	"strconv"
	"syscall"
	"testing"
)

// TestMain marks every inherited descriptor close-on-exec, so that the
// test programs start with stdio only (a leaked pipe would be refused).
func TestMain(m *testing.M) {
	ents, _ := os.ReadDir("/proc/self/fd")
	for _, e := range ents {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd > 2 {
			syscall.CloseOnExec(fd)
		}
	}
	os.Exit(m.Run())
}
