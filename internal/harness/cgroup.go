package harness

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"
)

const (
	cgroupRoot = "/sys/fs/cgroup"
	cgroupV1   = "/sys/fs/cgroup/cpu" // the v1 cpu controller hierarchy
	cpuPeriod  = 100000               // µs
)

// cgroupBase is the directory under which the harness makes its cgroups:
// the v2 root when /sys/fs/cgroup is a cgroup2 mount, else the v1 cpu
// hierarchy.
func cgroupBase() (dir string, v2 bool, err error) {
	if _, err := os.Stat(filepath.Join(cgroupRoot, "cgroup.controllers")); err == nil {
		return cgroupRoot, true, nil
	}
	if _, err := os.Stat(filepath.Join(cgroupV1, "cpu.cfs_quota_us")); err == nil {
		return cgroupV1, false, nil
	}
	return "", false, errors.New("cpu share: no cgroup v2 at /sys/fs/cgroup and no v1 cpu controller at /sys/fs/cgroup/cpu")
}

// cpuQuota is the cfs quota in µs per cpuPeriod for a share of one CPU. The
// kernel refuses quotas under 1 ms.
func cpuQuota(share float64) int {
	return max(1000, int(math.Round(share*cpuPeriod)))
}

// makeCgroups makes top = base/ssi-<id> and top/node<i> for i in 1..n,
// each held to share of one CPU, and returns top and the node directories.
// On error top, if not "", is to be removed by the caller.
func makeCgroups(id string, n int, share float64) (top string, dirs []string, err error) {
	base, v2, err := cgroupBase()
	if err != nil {
		return "", nil, err
	}
	top = filepath.Join(base, cgroupName(id))
	if err := os.Mkdir(top, 0o755); err != nil {
		return "", nil, err
	}
	if v2 {
		for _, d := range []string{base, top} {
			if err := writeFile(filepath.Join(d, "cgroup.subtree_control"), "+cpu"); err != nil {
				return top, nil, err
			}
		}
	}
	dirs = make([]string, n)
	for i := range dirs {
		d := filepath.Join(top, nodeName(i+1))
		if err := os.Mkdir(d, 0o755); err != nil {
			return top, nil, err
		}
		if v2 {
			err = writeFile(filepath.Join(d, "cpu.max"), fmt.Sprintf("%d %d", cpuQuota(share), cpuPeriod))
		} else {
			err = writeFile(filepath.Join(d, "cpu.cfs_period_us"), fmt.Sprint(cpuPeriod))
			if err == nil {
				err = writeFile(filepath.Join(d, "cpu.cfs_quota_us"), fmt.Sprint(cpuQuota(share)))
			}
		}
		if err != nil {
			return top, nil, err
		}
		dirs[i] = d
	}
	return top, dirs, nil
}

// removeCgroup removes the cgroup tree top, leaves first. A cgroup stays
// busy for a moment after its last process was killed, so each rmdir is
// retried for a few seconds.
func removeCgroup(top string) error {
	entries, err := os.ReadDir(top)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		if e.IsDir() {
			errs = append(errs, removeCgroup(filepath.Join(top, e.Name())))
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := os.Remove(top)
		if err == nil || errors.Is(err, fs.ErrNotExist) {
			break
		}
		if time.Now().After(deadline) {
			errs = append(errs, fmt.Errorf("remove cgroup: %w", err))
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	return errors.Join(errs...)
}

// sweepCgroups removes every ssi-* cgroup of the harness that holds no
// process.
func sweepCgroups() error {
	base, _, err := cgroupBase()
	if err != nil {
		return nil // no cgroup support, nothing to sweep
	}
	entries, err := os.ReadDir(base)
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), "ssi-") || !validID(strings.TrimPrefix(e.Name(), "ssi-")) {
			continue
		}
		top := filepath.Join(base, e.Name())
		if busy, err := cgroupBusy(top); err != nil || busy {
			errs = append(errs, err)
			continue
		}
		errs = append(errs, removeCgroup(top))
	}
	return errors.Join(errs...)
}

// cgroupBusy reports whether any cgroup in the tree dir has a process.
func cgroupBusy(dir string) (bool, error) {
	busy := false
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		procs, err := os.ReadFile(filepath.Join(path, "cgroup.procs"))
		if err != nil {
			return err
		}
		busy = busy || len(strings.TrimSpace(string(procs))) > 0
		return nil
	})
	return busy, err
}

// writeFile writes s to an existing control file.
func writeFile(path, s string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(s)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %q to %s: %w", s, path, err)
	}
	return nil
}
