package cli

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestCloseOnExecAbove2: a descriptor inherited without close-on-exec (as
// a terminal program leaves one) does not reach the program exec'd after
// closeOnExecAbove2. The check runs in a child process, as the shell does.
func TestCloseOnExecAbove2(t *testing.T) {
	if os.Getenv("SSI_TEST_CLOEXEC_CHILD") == "1" {
		if err := closeOnExecAbove2(); err != nil {
			t.Fatal(err)
		}
		sh, _ := exec.LookPath("sh")
		unix.Exec(sh, []string{"sh", "-c", "ls /proc/self/fd"}, os.Environ())
		t.Fatal("exec failed")
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCloseOnExecAbove2$")
	cmd.Env = append(os.Environ(), "SSI_TEST_CLOEXEC_CHILD=1")
	cmd.ExtraFiles = []*os.File{r, w} // fds 3 and 4, without close-on-exec in the child
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child: %v: %s", err, out)
	}
	for _, fd := range strings.Fields(string(out)) {
		if fd != "0" && fd != "1" && fd != "2" && fd != "3" { // 3: ls's own directory
			t.Errorf("the exec'd program has descriptor %s: %q", fd, out)
		}
	}
}
