// Package dist holds the files installed on nodes (the systemd unit, its
// optional hardening drop-in, the example configuration); its tests check
// them.
package dist

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// The exposure ratings reached (systemd-analyze security --offline=true,
// systemd 252); a change that raises one fails TestUnitRating.
const (
	maxExposure         = 9.6 // the unit alone: 9.6 before hardening too, see docs/install.md
	maxExposureHardened = 6.3 // with ssi-agent-hardening.conf
)

// unit is a unit file's settings: section, then key, then every value
// (a key may be given several times).
type unit map[string]map[string][]string

func parseUnit(t *testing.T, path string) unit {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u := unit{}
	section := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[' && line[len(line)-1] == ']':
			section = line[1 : len(line)-1]
			if u[section] == nil {
				u[section] = map[string][]string{}
			}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" || strings.HasSuffix(line, `\`) {
				t.Fatalf("%s:%d: not a setting in a section (or continued, which this test does not read): %q", path, n, line)
			}
			u[section][k] = append(u[section][k], v)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return u
}

// inherited are directives left out of the unit because the programs the
// agent starts (its children) would inherit them; docs/install.md says
// what each would break.
var inherited = map[string]string{
	"NoNewPrivileges":         "setuid and file-capability programs (sudo, passwd, fusermount3, ping) would stop working under ssi",
	"CapabilityBoundingSet":   "root's programs and setuid programs run under ssi would lose the capabilities dropped",
	"AmbientCapabilities":     "every program run under ssi would get them",
	"User":                    "the agent must be root",
	"DynamicUser":             "the agent must be root",
	"PrivateTmp":              "programs run under ssi would see a /tmp of their own, not the node's",
	"PrivateDevices":          "programs run under ssi would lose devices (GPUs, /dev/fuse, InfiniBand)",
	"PrivateNetwork":          "the agent needs the network",
	"PrivateUsers":            "the agent acts as every user",
	"PrivateMounts":           "mounts by the agent (clusterfs) and by its programs would not reach the node",
	"ProtectSystem":           "programs run under ssi may write where their user may (and it puts the agent in a mount namespace)",
	"ProtectHome":             "programs run under ssi work in home directories",
	"ProtectKernelTunables":   "root's programs could not write /proc/sys or /sys; mount namespace",
	"ProtectKernelModules":    "mount namespace; root's programs could not load modules",
	"ProtectKernelLogs":       "mount namespace; dmesg would fail for programs run under ssi",
	"ProtectControlGroups":    "mount namespace; container runtimes under ssi manage cgroups",
	"ProtectProc":             "programs run under ssi would not see each other's processes",
	"ProcSubset":              "the agent reads /proc/meminfo, /proc/stat and the like",
	"ProtectClock":            "ntp_gettime fails under it, and systemd before 253 may restrict every device",
	"MemoryDenyWriteExecute":  "JITs (Java, Node, PyPy, LuaJIT) run under ssi would fail",
	"SystemCallFilter":        "seccomp filters are inherited by every program run under ssi (see the drop-in)",
	"RestrictAddressFamilies": "inherited by every program run under ssi (see the drop-in)",
	"RestrictNamespaces":      "containers and sandboxes run under ssi need namespaces (see the drop-in)",
	"DeviceAllow":             "the cgroup holds the programs run under ssi too",
	"DevicePolicy":            "the cgroup holds the programs run under ssi too",
	"IPAddressDeny":           "the cgroup holds the programs run under ssi too, and peers are anywhere",
	"MemoryMax":               "the agent reads its cgroup's limits as the node's (package load)",
	"CPUQuota":                "the agent reads its cgroup's limits as the node's (package load)",
	"OOMScoreAdjust":          "programs started under ssi would inherit it",
}

func TestUnitHardening(t *testing.T) {
	svc := parseUnit(t, "ssi-agent.service")["Service"]
	for k, want := range map[string]string{"UMask": "0077", "KeyringMode": "private", "Type": "simple"} {
		if got := svc[k]; len(got) != 1 || got[0] != want {
			t.Errorf("[Service] %s = %q, want %q", k, got, want)
		}
	}
	for k, why := range inherited {
		if v, ok := svc[k]; ok {
			t.Errorf("[Service] %s=%s is set, but %s", k, strings.Join(v, " "), why)
		}
	}
}

func TestHardeningDropIn(t *testing.T) {
	u := parseUnit(t, "ssi-agent-hardening.conf")
	if len(u) != 1 || u["Service"] == nil {
		t.Fatalf("sections %v, want [Service] alone", u)
	}
	svc := u["Service"]
	for _, k := range []string{"LockPersonality", "RestrictRealtime", "RestrictNamespaces", "RestrictSUIDSGID", "ProtectHostname"} {
		if got := svc[k]; len(got) != 1 || got[0] != "yes" {
			t.Errorf("%s = %q, want yes", k, got)
		}
	}
	if got := svc["SystemCallArchitectures"]; len(got) != 1 || got[0] != "native" {
		t.Errorf("SystemCallArchitectures = %q", got)
	}
	fams := strings.Join(svc["RestrictAddressFamilies"], " ")
	for _, f := range []string{"AF_UNIX", "AF_INET", "AF_INET6", "AF_NETLINK", "AF_PACKET"} {
		if !regexp.MustCompile(`(^| )` + f + `( |$)`).MatchString(fams) {
			t.Errorf("RestrictAddressFamilies %q lacks %s, which the agent uses (or will, for the VIP)", fams, f)
		}
	}
	// What the agent needs must stay: ptrace and process_vm_*, becoming
	// the caller, signals, nice and limits, set_tid, mounts, the VIP.
	caps := strings.Join(svc["CapabilityBoundingSet"], " ")
	if !strings.HasPrefix(caps, "~") {
		t.Fatalf("CapabilityBoundingSet %q is not a deny list", caps)
	}
	dropped := map[string]bool{}
	for _, c := range strings.Fields(caps[1:]) {
		dropped[c] = true
	}
	for _, c := range []string{"CAP_SYS_PTRACE", "CAP_SETUID", "CAP_SETGID", "CAP_KILL", "CAP_SYS_NICE", "CAP_SYS_RESOURCE",
		"CAP_SYS_ADMIN", "CAP_CHECKPOINT_RESTORE", "CAP_DAC_OVERRIDE", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_NET_BIND_SERVICE"} {
		if dropped[c] {
			t.Errorf("CapabilityBoundingSet drops %s, which the agent needs", c)
		}
	}
	filter := strings.Join(svc["SystemCallFilter"], " ")
	if !strings.HasPrefix(filter, "~") {
		t.Fatalf("SystemCallFilter %q is not a deny list", filter)
	}
	for _, g := range []string{"@debug", "@privileged", "@resources", "@mount", "@process", "@ipc"} {
		if strings.Contains(filter, g) {
			t.Errorf("SystemCallFilter denies %s, which the agent needs", g)
		}
	}
	if got := svc["SystemCallErrorNumber"]; len(got) != 1 {
		t.Errorf("SystemCallErrorNumber unset: a filtered call would kill the program with SIGSYS")
	}
}

// TestDocumentation: the unit's Documentation= names files that the steps
// of docs/install.md install, from docs/ of this tree.
func TestDocumentation(t *testing.T) {
	docs := parseUnit(t, "ssi-agent.service")["Unit"]["Documentation"]
	if len(docs) == 0 {
		t.Fatal("no Documentation=")
	}
	install, err := os.ReadFile("../docs/install.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range strings.Fields(strings.Join(docs, " ")) {
		path, ok := strings.CutPrefix(d, "file://")
		if !ok {
			t.Errorf("Documentation %q: want a file:// URL", d)
			continue
		}
		dir, name := filepath.Split(path)
		if _, err := os.Stat(filepath.Join("../docs", name)); err != nil {
			t.Errorf("Documentation %q: no docs/%s", d, name)
		}
		step := "install -m 0644 docs/*.md " + dir
		if !strings.Contains(string(install), step) {
			t.Errorf("Documentation %q: docs/install.md has no step %q", d, step)
		}
	}
}

// TestUnitRating rates the unit, alone and with the drop-in, with
// systemd-analyze when it is there.
func TestUnitRating(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("systemd-analyze is not installed: ratings not checked")
	}
	if got := rating(t, "--offline=true", "ssi-agent.service"); got > maxExposure {
		t.Errorf("ssi-agent.service: exposure %.1f, more than %.1f", got, maxExposure)
	}
	root := t.TempDir()
	d := filepath.Join(root, "etc/systemd/system/ssi-agent.service.d")
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	for src, dst := range map[string]string{"ssi-agent.service": filepath.Join(root, "etc/systemd/system/ssi-agent.service"),
		"ssi-agent-hardening.conf": filepath.Join(d, "hardening.conf")} {
		b, err := os.ReadFile(src)
		if err == nil {
			err = os.WriteFile(dst, b, 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := rating(t, "--offline=true", "--root="+root, "ssi-agent.service"); got > maxExposureHardened {
		t.Errorf("ssi-agent.service with ssi-agent-hardening.conf: exposure %.1f, more than %.1f", got, maxExposureHardened)
	}
}

var overall = regexp.MustCompile(`Overall exposure level for ssi-agent\.service: ([0-9.]+)`)

func rating(t *testing.T, args ...string) float64 {
	t.Helper()
	cmd := exec.Command("systemd-analyze", append([]string{"security", "--no-pager"}, args...)...)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	// systemd warns of a key it does not know, or a value it cannot
	// parse, and goes on without it: the rating would hide the mistake.
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, "ignoring") || strings.Contains(l, "Failed to parse") {
			t.Errorf("systemd-analyze %s: %s", strings.Join(args, " "), l)
		}
	}
	m := overall.FindSubmatch(out)
	if m == nil {
		t.Fatalf("systemd-analyze %s: no overall rating in:\n%s", strings.Join(args, " "), out)
	}
	f, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	return f
}
