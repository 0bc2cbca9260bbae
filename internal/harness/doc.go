// Package harness runs a cluster of real `ssi agent` processes on one
// machine, for integration tests, benchmarks and `ssi dev`.
//
// # Modes
//
// Namespace mode (Options.Namespaces, needs root) makes each node look like a
// machine of its own:
//
//   - network: a hub network namespace ssi<ID>hub holds a bridge br0; node i
//     has the network namespace ssi<ID>n<i> with lo and eth0, a veth whose
//     other end is the bridge port n<i> in the hub. eth0 has 10.77.<k>.<i>/24,
//     k derived from the cluster ID. Nothing is added to the host's own network
//     namespace, so parallel clusters cannot clash and deleting the namespaces
//     removes everything.
//   - processes: node i boots an init, `ssi __nodeinit` (NodeInit), started
//     through `ip netns exec` as PID 1 of new PID, mount, UTS and IPC
//     namespaces. It mounts its own /proc, sets the hostname node<i>, reaps
//     orphans and otherwise waits. The node lives as long as its init: killing
//     the init (KillNode) kills every process of the node, as a power cut would.
//   - the agent and everything else run inside a node (Command, Shell) are
//     entered with nsenter into the init's namespaces. An agent that dies
//     (KillAgent, StopAgent) leaves the node and its other processes running,
//     as on a real machine.
//   - files are shared with the host (the same file system), standing in for
//     the cluster file system: state directories, logs and sockets under Dir
//     are reachable from the host.
//
// Loopback mode (no root) runs the agents as plain child processes, node i on
// 127.77.<k>.<i> (all of 127/8 is loopback on Linux). It has no per-node
// namespaces, so KillNode is KillAgent, and the network faults return
// ErrNeedNamespaces.
//
// With Options.CPUShare > 0 each node gets a cpu cgroup (v2 cpu.max or v1
// cpu.cfs_quota_us) ssi-<ID>/node<i>; every process the harness starts in a
// node joins it before it execs, so the node's agent and its children are
// held to that share of one CPU.
//
// Clients on the host (CLI, ListNodes) reach a node's agent through its
// socket file; in namespace mode the agent then sees their pid as 0
// (SO_PEERCRED), since the host's processes are outside the node's PID
// namespace. What must look like a process of the node runs in it: Command,
// Shell.
//
// # Starting
//
// Start runs `ssi init` in node 1, then starts the agents one at a time,
// each after the previous one is a member, nodes 2..N joining through node
// 1, so that node i is number i in the cluster's registry. A node started
// again (StartAgent) has a state directory and rejoins by itself. Agents are
// run with --config /dev/null and without the SSI_* environment, so that
// nothing of the host's own ssi configuration reaches them.
//
// # Faults
//
// LinkDown/LinkUp take the bridge port of a node down and up, as a pulled
// cable: eth0 loses carrier, packets are lost. Isolate and Partition load an
// nftables table `inet ssi_fault` in the node's network namespace, rendered
// from the node's fault state (isolated, and the addresses it is partitioned
// from); Heal and HealAll clear that state.
//
// # Layout of Dir
//
//	Dir/node<i>/state      the agent's --state-dir (node1 is made by `ssi init`)
//	Dir/node<i>/agent.sock the agent's Unix socket
//	Dir/node<i>/agent.log  stderr of the node's init and agent, appended across restarts
//
// # Cleanup
//
// Close kills every process, deletes the namespaces and cgroups, the dev file
// if one was written, and Dir when the harness made it. All processes are
// started with a parent-death signal, so a crashed harness leaves no process,
// but it can leave namespaces and cgroups: Sweep removes those.
//
// # Locking
//
// Cluster.mu guards the per-node run state (init and agent processes, fault
// state, kill times). It is never held while waiting for a process or running
// a command; Cluster.logMu serializes lines written to Options.Log and is a
// leaf lock.
package harness
