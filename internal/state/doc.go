// Package state is what the cluster agrees on (OpenSSI's CLMS master and
// "kernel data replication"), replicated by hashicorp/raft with a durable
// bbolt log store.
//
// The replicated state is a Registry: the cluster name, the node registry
// (a node number given once, at first registration, and never reused; name;
// addresses; state up/down/left; incarnation) and the membership transitions,
// each a numbered epoch. Every change is a Command appended to the raft log;
// every node applies the log in the same order, so every node sees the same
// transitions in the same order, each with its epoch.
//
// Registry.Apply is pure and deterministic: the command carries the leader's
// clock, nothing is read from the environment, and an invalid command (a
// duplicate name, a "down" for a node already down) changes nothing and
// returns an error. The raft wiring (FSM, snapshots, stores) lives in
// fsm.go and raft.go; the policy that decides which transitions to commit
// lives in the agent's reconciler, which runs only on the leader.
//
// Lock order: FSM.mu guards the Registry and the watcher channel; it is never
// held while calling out.
package state
