package rexec

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/ssi-cluster/ssi/internal/procstat"
)

// Caller is what the kernel says of a deputy process: the part of a Spec
// the home agent fills, never taken from the deputy's own words.
type Caller struct {
	Groups     []int
	Umask      int
	Nice       int
	Rlimits    []Rlimit
	PPid, PGid int
}

// rlimitCount is the number of RLIMIT_* resources (RLIM_NLIMITS).
const rlimitCount = 16

// ReadCaller reads pid's supplementary groups and umask (status), parent
// and process group (stat), nice value and resource limits. The caller
// must have the right to read them (the agent is root).
func ReadCaller(proc string, pid int) (Caller, error) {
	var c Caller
	dir := proc + "/" + strconv.Itoa(pid)
	status, err := os.ReadFile(dir + "/status")
	if err != nil {
		return c, err
	}
	if c.Groups, c.Umask, err = parseStatus(status); err != nil {
		return c, fmt.Errorf("%s/status: %w", dir, err)
	}
	stat, err := os.ReadFile(dir + "/stat")
	if err != nil {
		return c, err
	}
	if c.PPid, c.PGid, c.Nice, err = parseStatNice(stat); err != nil {
		return c, fmt.Errorf("%s/stat: %w", dir, err)
	}
	limits, err := os.ReadFile(dir + "/limits")
	if err != nil {
		return c, err
	}
	if c.Rlimits, err = parseLimits(limits); err != nil {
		return c, fmt.Errorf("%s/limits: %w", dir, err)
	}
	return c, nil
}

// limitNames are the rows of /proc/PID/limits in RLIMIT_* order.
var limitNames = [rlimitCount]string{"Max cpu time", "Max file size", "Max data size", "Max stack size",
	"Max core file size", "Max resident set", "Max processes", "Max open files", "Max locked memory",
	"Max address space", "Max file locks", "Max pending signals", "Max msgqueue size", "Max nice priority",
	"Max realtime priority", "Max realtime timeout"}

// parseLimits reads /proc/PID/limits (readable by anyone, unlike prlimit
// on another user's process, which needs CAP_SYS_RESOURCE).
func parseLimits(b []byte) ([]Rlimit, error) {
	out := make([]Rlimit, 0, rlimitCount)
	lines := strings.Split(string(b), "\n")
	for r, name := range limitNames {
		found := false
		for _, line := range lines {
			rest, ok := strings.CutPrefix(line, name)
			if !ok || (len(rest) > 0 && rest[0] != ' ') {
				continue
			}
			f := strings.Fields(rest)
			if len(f) < 2 {
				return nil, fmt.Errorf("%s: %q", name, line)
			}
			cur, err1 := parseLimit(f[0])
			max, err2 := parseLimit(f[1])
			if err1 != nil || err2 != nil || cur > max {
				return nil, fmt.Errorf("%s: %q", name, line)
			}
			out = append(out, Rlimit{Resource: r, Cur: cur, Max: max})
			found = true
			break
		}
		if !found {
			return nil, fmt.Errorf("no %q row", name)
		}
	}
	return out, nil
}

func parseLimit(s string) (uint64, error) {
	if s == "unlimited" {
		return unix.RLIM_INFINITY, nil
	}
	return strconv.ParseUint(s, 10, 64)
}

// parseStatus returns the Groups and Umask lines of /proc/PID/status.
func parseStatus(b []byte) (groups []int, umask int, err error) {
	umask = -1
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		switch k {
		case "Umask":
			n, err := strconv.ParseInt(strings.TrimSpace(v), 8, 32)
			if err != nil || n < 0 || n > 0o777 {
				return nil, 0, fmt.Errorf("umask %q", strings.TrimSpace(v))
			}
			umask = int(n)
		case "Groups":
			groups = []int{}
			for _, f := range strings.Fields(v) {
				g, err := strconv.Atoi(f)
				if err != nil || g < 0 {
					return nil, 0, fmt.Errorf("group %q", f)
				}
				groups = append(groups, g)
			}
		}
	}
	if umask < 0 || groups == nil {
		return nil, 0, fmt.Errorf("no Umask or Groups line")
	}
	return groups, umask, nil
}

// parseStatNice returns ppid, pgrp and nice (fields 4, 5 and 19) of
// /proc/PID/stat.
func parseStatNice(b []byte) (ppid, pgid, nice int, err error) {
	s, err := procstat.Parse(b)
	if err == nil {
		err = s.Need(19)
	}
	if err != nil {
		return 0, 0, 0, err
	}
	var vals [3]int64
	for j, k := range []int{4, 5, 19} {
		if vals[j], err = s.Int(k); err != nil {
			return 0, 0, 0, err
		}
	}
	if vals[2] < -20 || vals[2] > 19 {
		return 0, 0, 0, fmt.Errorf("nice %d", vals[2])
	}
	return int(vals[0]), int(vals[1]), int(vals[2]), nil
}
