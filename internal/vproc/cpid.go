package vproc

import (
	"fmt"
	"strconv"
)

// PidBits is the number of low bits of a CPID holding the local pid.
const PidBits = 22

// MaxPid bounds a local pid (Linux's largest pid_max is 2^22).
const MaxPid = 1 << PidBits

// CPID is a cluster-wide process id.
type CPID int64

// Make builds the CPID of pid on node.
func Make(node, pid int) (CPID, error) {
	if node < 1 || pid < 1 || pid >= MaxPid {
		return 0, fmt.Errorf("no cluster pid for pid %d on node %d", pid, node)
	}
	return CPID(int64(node)<<PidBits | int64(pid)), nil
}

// Node is the origin node of the process.
func (c CPID) Node() int { return int(int64(c) >> PidBits) }

// Pid is the process's pid on its origin node.
func (c CPID) Pid() int { return int(int64(c) & (MaxPid - 1)) }

// Parse reads a CPID written as a number, or as NODE:PID.
func Parse(s string) (CPID, error) {
	for i := 0; i < len(s); i++ {
		if s[i] == ':' {
			node, err1 := strconv.Atoi(s[:i])
			pid, err2 := strconv.Atoi(s[i+1:])
			if err1 != nil || err2 != nil {
				return 0, fmt.Errorf("%q is not a cluster pid (NUMBER or NODE:PID)", s)
			}
			return Make(node, pid)
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a cluster pid (NUMBER or NODE:PID)", s)
	}
	c := CPID(n)
	if c.Node() < 1 || c.Pid() < 1 {
		return 0, fmt.Errorf("%d is not a cluster pid: node %d, pid %d", n, c.Node(), c.Pid())
	}
	return c, nil
}
