package itest

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ssi-cluster/ssi/internal/harness"
)

// runOutcome is everything a command left: output, exit status, signal.
type runOutcome struct {
	stdout, stderr string
	code           int
	signal         syscall.Signal
}

func (o runOutcome) String() string {
	return fmt.Sprintf("exit %d signal %d stdout %q stderr %q", o.code, o.signal, clip(o.stdout), clip(o.stderr))
}

func clip(s string) string {
	if len(s) > 200 {
		return s[:200] + fmt.Sprintf("...(%d bytes)", len(s))
	}
	return s
}

// runSpec is one command to run in node `on`, as user (uid:gid, "" for
// root), in dir with env and stdin.
type runSpec struct {
	on    int
	user  string
	dir   string
	env   []string
	stdin []byte
	argv  []string
}

// execIn runs spec in node spec.on and waits (at most a minute).
func execIn(t *testing.T, c *harness.Cluster, s runSpec) runOutcome {
	t.Helper()
	argv := s.argv
	if s.user != "" {
		ug := strings.SplitN(s.user, ":", 2)
		argv = append([]string{"setpriv", "--reuid", ug[0], "--regid", ug[1], "--init-groups"}, argv...)
		if ug[0] == "65534" {
			argv = append([]string{"setpriv", "--reuid", ug[0], "--regid", ug[1], "--clear-groups"}, s.argv...)
		}
	}
	// cd inside the node: the directory may exist only there.
	cmd := c.Command(s.on, "sh", append([]string{"-c", `cd "$0" && exec "$@"`, s.dir}, argv...)...)
	cmd.Env = s.env
	cmd.Stdin = bytes.NewReader(s.stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %v: %v", argv, err)
	}
	timer := time.AfterFunc(time.Minute, func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
	defer timer.Stop()
	cmd.Wait()
	o := runOutcome{stdout: stdout.String(), stderr: stderr.String(), code: cmd.ProcessState.ExitCode()}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		o.signal = ws.Signal()
	}
	return o
}

// viaSSI is argv run through `ssi run --node to` from node spec.on.
func viaSSI(c *harness.Cluster, s runSpec, to int) runSpec {
	s.argv = append([]string{c.Binary, "--socket", c.Nodes[s.on-1].Socket, "run", "--node", fmt.Sprint(to), "--"}, s.argv...)
	return s
}

// TestRunLikeLocal runs a table of commands locally on node 1 and through
// `ssi run --node 2` from node 1, as root and as a non-root user, and
// wants the same output, exit status and signal.
func TestRunLikeLocal(t *testing.T) {
	c, _ := startCluster(t, 2, "--allow-remote-root", "true")
	dir := shortTemp(t)
	os.Chmod(dir, 0o755)
	big := filepath.Join(dir, "big")
	data := bytes.Repeat([]byte("0123456789abcdef\n"), 1<<20) // 17 MiB
	if err := os.WriteFile(big, data, 0o644); err != nil {
		t.Fatal(err)
	}
	env := []string{"PATH=/usr/local/bin:/usr/bin:/bin", "SSI_TEST_VAR=hello world", "LANG=C"}
	cases := []struct {
		name  string
		stdin string
		argv  []string
	}{
		{"true", "", []string{"true"}},
		{"false", "", []string{"false"}},
		{"exit 7", "", []string{"sh", "-c", "exit 7"}},
		{"killed by TERM", "", []string{"sh", "-c", "kill -TERM $$"}},
		{"stdout and stderr", "", []string{"sh", "-c", "echo out; echo err >&2; exit 3"}},
		{"cat of a large file", "", []string{"cat", big}},
		{"reads stdin", "some input\nand more\n", []string{"tr", "a-z", "A-Z"}},
		{"environment", "", []string{"sh", "-c", `echo "$SSI_TEST_VAR"`}},
		{"cwd", "", []string{"pwd"}},
		{"ids", "", []string{"id"}},
		{"umask", "", []string{"sh", "-c", "umask"}},
		{"limits", "", []string{"sh", "-c", "ulimit -n; ulimit -s; ulimit -c"}},
		{"nice", "", []string{"nice"}},
	}
	for _, user := range []string{"", "65534:65534"} {
		for _, tc := range cases {
			name := tc.name
			if user != "" {
				name += " as nobody"
			}
			t.Run(name, func(t *testing.T) {
				s := runSpec{on: 1, user: user, dir: dir, env: env, stdin: []byte(tc.stdin), argv: tc.argv}
				local := execIn(t, c, s)
				remote := execIn(t, c, viaSSI(c, s, 2))
				if local.stdout != remote.stdout || local.stderr != remote.stderr || local.code != remote.code || local.signal != remote.signal {
					t.Errorf("local:  %v\nremote: %v", local, remote)
				}
			})
		}
	}
	// In a shell, %s standing for nothing (locally) or for ssi run: the
	// deputy's stdio are pipes and files its agent serves itself.
	shells := []struct{ name, script string }{
		{"into a closed pipe", "(%s yes; echo $? >&2) | head -1"},
		{"file to file", "%s cat < " + big + " > " + dir + "/out.$$ && wc -c < " + dir + "/out.$$; rm -f " + dir + "/out.$$"},
		{"appends", "f=" + dir + "/app.$$; echo a > $f; %s echo b >> $f; %s sh -c 'echo c >&2' 2>> $f; cat $f; rm -f $f"},
		{"to /dev/null", "%s cat " + big + " > /dev/null; echo $?"},
	}
	for _, tc := range shells {
		t.Run(tc.name, func(t *testing.T) {
			cmd := func(ssi string) runSpec {
				return runSpec{on: 1, dir: dir, env: env, argv: []string{"sh", "-c", strings.ReplaceAll(tc.script, "%s", ssi)}}
			}
			local := execIn(t, c, cmd(""))
			remote := execIn(t, c, cmd(strings.Join(viaSSI(c, runSpec{on: 1}, 2).argv, " ")))
			if local.stdout != remote.stdout || local.stderr != remote.stderr || local.code != remote.code || local.signal != remote.signal {
				t.Errorf("local:  %v\nremote: %v", local, remote)
			}
		})
	}
}

// TestRunShellErrors: a missing command, one that is not executable and
// a working directory missing on the target end as from a shell.
func TestRunShellErrors(t *testing.T) {
	c, ctx := startCluster(t, 2, "--allow-remote-root", "true")
	dir := shortTemp(t)
	// A directory that exists only in node 1's mount namespace.
	only1 := filepath.Join(dir, "mnt")
	os.MkdirAll(only1, 0o755)
	if out, err := c.Command(1, "sh", "-c", "mount -t tmpfs none "+only1+" && mkdir "+only1+"/here").CombinedOutput(); err != nil {
		t.Fatalf("mount in node 1: %v: %s", err, out)
	}
	_ = ctx
	env := []string{"PATH=/usr/bin:/bin"}
	cases := []struct {
		name string
		dir  string
		argv []string
		code int
		msg  string
	}{
		{"not found", dir, []string{"no-such-command-here"}, 127, "ssi: no-such-command-here: command not found\n"},
		{"missing path", dir, []string{"/no/such/file"}, 127, "ssi: /no/such/file: No such file or directory\n"},
		{"not executable", dir, []string{"/etc/passwd"}, 126, "ssi: /etc/passwd: Permission denied\n"},
		{"directory", dir, []string{"/etc"}, 126, "ssi: /etc: Is a directory\n"},
		{"missing cwd", only1 + "/here", []string{"true"}, 126, "ssi: cd: " + only1 + "/here: No such file or directory\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := execIn(t, c, viaSSI(c, runSpec{on: 1, dir: tc.dir, env: env, argv: tc.argv}, 2))
			if o.code != tc.code || o.stderr != tc.msg || o.stdout != "" {
				t.Errorf("got %v; want exit %d, stderr %q", o, tc.code, tc.msg)
			}
		})
	}
}
