// Package load measures a node's load for the cluster's load balancer.
//
// Every agent builds a [Vector] once a second with a [Sampler] and gossips
// it in the fixed binary form of [Vector.MarshalBinary]. The figures come
// from:
//
//   - RunQueue: threads in state R, from /proc/[pid]/task/[tid]/stat of
//     each counted process (from /proc/[pid]/stat directly when the
//     process has one thread), not counting the sampler's own thread,
//     which is necessarily running while it looks.
//   - Load1, Load5, Load15: RunQueue damped exponentially in the process,
//     like the kernel's load average, with the decay factor
//     exp(-dt/period) computed from the real time between samples.
//   - CPUUse: growth of utime+stime (fields 14-15 of /proc/[pid]/stat) of
//     the counted processes since the previous sample, plus that of
//     cutime+cstime (fields 16-17) for children that exited in between,
//     divided by elapsed time × Cores × USER_HZ.
//   - Procs: the number of counted /proc/[pid] entries.
//   - Cores: runtime.NumCPU (which honours the CPU affinity mask), lowered
//     to the cgroup CPU quota rounded up (cpu.max in cgroup v2,
//     cpu.cfs_quota_us/cpu.cfs_period_us in v1).
//   - MemTotal, MemFree: MemTotal and MemAvailable from /proc/meminfo,
//     lowered to a cgroup memory limit and what remains under it
//     (memory.max/memory.current in v2, memory.limit_in_bytes/
//     memory.usage_in_bytes in v1) when the limit is below MemTotal.
//   - Speed: [Calibrate], or the operator's figure.
//
// Which processes count is the [Scope]: [ScopeAll] counts every pid in the
// proc directory, [ScopeDescendants] only the descendants of the agent.
//
// # Why not /proc/loadavg
//
// The kernel's load average, like the totals in /proc/stat, is global to
// the machine: it is not virtualised by PID namespaces. In the test
// harness every node agent runs in its own PID namespace with its own
// /proc mounted, and /proc/loadavg would give every node the same figure,
// the load of the whole host; without root the agents share one namespace
// and even /proc/[pid] shows every process. Only by walking /proc/[pid]
// and choosing which processes count does each node see its own load. The
// same walk is correct on a real machine, where the agent's /proc is the
// machine's. It also gives a figure that means what the balancer needs:
// /proc/loadavg counts tasks in uninterruptible sleep (D), usually waiting
// for disk or network, which make a node look busy without using its CPU.
//
// /proc/meminfo is global too, but there that is right: the harness's
// nodes do share the host's memory.
//
// # Limits
//
// CPU time of processes that exit between two samples is recovered from
// the cutime/cstime their parent (or init) gains when it reaps them. With
// ScopeDescendants a process whose parent exits is reparented to init or
// a subreaper and stops counting, unless the agent is that subreaper:
// agents that run daemonising jobs should make themselves child
// subreapers (PR_SET_CHILD_SUBREAPER). Under a cgroup memory limit,
// MemFree is the limit less memory.current (or memory.usage_in_bytes),
// which includes reclaimable page cache, so it errs on the low side.
package load
