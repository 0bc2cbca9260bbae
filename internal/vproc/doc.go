// Package vproc is ssi's cluster-wide process space (OpenSSI's vproc): cluster
// pids, and each node's process table read from /proc.
//
// A cluster pid (CPID) names its origin node and the process's pid there:
//
//	cpid = origin node number << 22 | local pid
//
// Linux pids are below 2^22 (pid_max's ceiling), and node numbers are given
// once and never reused, so a CPID is unique across the cluster for the
// life of the process and does not change when the process later migrates:
// the origin node tracks where it runs. Until migration exists every process
// runs on its origin node.
//
// The process table is read from the /proc the agent sees: in a node with its
// own PID namespace, only that node's processes. A process costs its stat
// file (ids, state, times, threads, rss), its cmdline, and a stat of its
// /proc/PID directory, whose owner is the process's effective uid and gid.
// Table opens and closes these each time; a Cache, which an agent keeps
// for its life, holds them open between calls and reads them again from
// the start, for a third less. The Cache holds descriptors, never
// data, so every table is as fresh as Table's: exec, setuid and rewritten
// argv all show at once.
package vproc
