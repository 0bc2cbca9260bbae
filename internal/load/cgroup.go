package load

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// cgroupLimits locates the cgroup directories of the sampling process, so
// that CPU quota and memory limit can be read on every sample. Limits set
// on an ancestor cgroup apply too, so each list runs from the process's own
// cgroup up to the root of its hierarchy. All lists are empty when there
// is no cgroup filesystem, in which case no limit applies.
type cgroupLimits struct {
	v2    []string // unified hierarchy: cpu.max, memory.max, memory.current
	cpuV1 []string // v1 cpu controller: cpu.cfs_quota_us, cpu.cfs_period_us
	memV1 []string // v1 memory controller: memory.limit_in_bytes, memory.usage_in_bytes
}

// findCgroups reads procDir/self/cgroup and resolves the paths it names
// under the cgroup filesystem mounted at fsRoot (normally /sys/fs/cgroup).
// It handles pure v2, pure v1 and hybrid layouts. If the process's own
// cgroup directory is not visible (a container without a cgroup namespace),
// only the mount root is used.
func findCgroups(procDir, fsRoot string) cgroupLimits {
	var c cgroupLimits
	b, err := os.ReadFile(filepath.Join(procDir, "self", "cgroup"))
	if err != nil {
		return c
	}
	for _, line := range strings.Split(string(b), "\n") {
		// hierarchy-ID:controller-list:cgroup-path
		id, rest, ok1 := strings.Cut(line, ":")
		ctrls, path, ok2 := strings.Cut(rest, ":")
		if !ok1 || !ok2 {
			continue
		}
		if id == "0" && ctrls == "" {
			for _, mnt := range []string{fsRoot, filepath.Join(fsRoot, "unified")} {
				if exists(filepath.Join(mnt, "cgroup.controllers")) {
					c.v2 = ancestors(mnt, path)
					break
				}
			}
			continue
		}
		for _, ctrl := range strings.Split(ctrls, ",") {
			switch ctrl {
			case "cpu":
				c.cpuV1 = v1Dirs(fsRoot, ctrls, "cpu", path)
			case "memory":
				c.memV1 = v1Dirs(fsRoot, ctrls, "memory", path)
			}
		}
	}
	return c
}

// v1Dirs resolves a v1 hierarchy, mounted either under the joint name of
// its controllers ("cpu,cpuacct") or the controller's own ("cpu").
func v1Dirs(fsRoot, ctrls, ctrl, path string) []string {
	for _, name := range []string{ctrls, ctrl} {
		if mnt := filepath.Join(fsRoot, name); exists(mnt) {
			return ancestors(mnt, path)
		}
	}
	return nil
}

// ancestors lists the existing directories from mnt/path up to mnt.
func ancestors(mnt, path string) []string {
	var dirs []string
	for p := filepath.Clean("/" + path); ; p = filepath.Dir(p) {
		if d := filepath.Join(mnt, p); exists(d) {
			dirs = append(dirs, d)
		}
		if p == "/" {
			return dirs
		}
	}
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// cpuQuota returns the tightest CPU quota in cores, rounded up, or 0 when
// no quota is set.
func (c *cgroupLimits) cpuQuota() uint32 {
	best := 0.0
	consider := func(quota, period float64) {
		if quota > 0 && period > 0 && (best == 0 || quota/period < best) {
			best = quota / period
		}
	}
	for _, d := range c.v2 {
		// "max 100000" or "50000 100000"
		f := strings.Fields(readString(filepath.Join(d, "cpu.max")))
		if len(f) == 2 {
			consider(parseFloat(f[0]), parseFloat(f[1]))
		}
	}
	for _, d := range c.cpuV1 {
		consider(parseFloat(readString(filepath.Join(d, "cpu.cfs_quota_us"))),
			parseFloat(readString(filepath.Join(d, "cpu.cfs_period_us"))))
	}
	if best == 0 {
		return 0
	}
	return uint32(min(math.Ceil(best), math.MaxUint32))
}

// memLimit returns the tightest memory limit and the usage of the cgroup
// that sets it, in bytes; ok is false when no limit is set.
func (c *cgroupLimits) memLimit() (limit, usage uint64, ok bool) {
	consider := func(dir, limitFile, usageFile string) {
		l, err := strconv.ParseUint(readString(filepath.Join(dir, limitFile)), 10, 64)
		if err != nil || (ok && l >= limit) { // "max", absent or not tighter
			return
		}
		u, err := strconv.ParseUint(readString(filepath.Join(dir, usageFile)), 10, 64)
		if err != nil {
			return
		}
		limit, usage, ok = l, u, true
	}
	for _, d := range c.v2 {
		consider(d, "memory.max", "memory.current")
	}
	for _, d := range c.memV1 {
		consider(d, "memory.limit_in_bytes", "memory.usage_in_bytes")
	}
	return limit, usage, ok
}

// readString returns a small file's contents without surrounding space,
// or "" when it cannot be read.
func readString(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return string(bytes.TrimSpace(b))
}

// parseFloat returns the value of the decimal integer s as a float64, or
// -1 when s is not one (such as "max").
func parseFloat(s string) float64 {
	x, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return -1
	}
	return float64(x)
}
