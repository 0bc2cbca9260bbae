// Package agent wires ssi's parts into the daemon that runs on every node:
// one Agent struct holds the configuration, identity, credentials, gossip
// (membership), agreed state (state), the RPC server and client pool
// (transport), the local API and the metrics. It is the only package that
// knows them all.
//
// Goroutines: Run starts the gRPC server, the HTTP servers (Unix socket and
// localhost), the load publisher (samples every second, gossips on change or
// every 5 s), the leader loop (acts only while this node is the raft leader:
// reconcile.go plans, loops.go acts; other nodes wait for the leadership)
// and the fence loop (fence.go; it wakes when its deadline falls). Each stops when Run's context ends; Shutdown
// then closes gossip, raft and listeners in the reverse order of start.
//
// Processes: exec.go and session.go run processes for deputies (a
// runSession per process, which outlives any one stream from its home),
// deputy.go serves deputies and relays their streams, following a process
// when it moves; migrate*.go move processes between agents (the source
// pre-copies and freezes, the target stages and restores; see
// docs/migration.md), checkpoint.go and restore.go are ssi checkpoint and
// ssi restore; origin.go and track.go find processes by cluster pid.
//
// Lock order: Agent.mu (identity, fence state) before any package's own
// locks; the FSM and membership locks are leaves and are never held while
// calling back into the agent.
package agent
