// Package agent wires ssi's parts into the daemon that runs on every node:
// one Agent struct holds the configuration, identity, credentials, gossip
// (membership), agreed state (state), the RPC server and client pool
// (transport), the local API and the metrics. It is the only package that
// knows them all.
//
// Goroutines: Run starts the gRPC server, the HTTP servers (Unix socket and
// localhost), the load publisher (every second), the leader loop (acts only
// while this node is the raft leader: reconcile.go plans, leader.go acts) and
// the fence loop (fence.go). Each stops when Run's context ends; Shutdown
// then closes gossip, raft and listeners in the reverse order of start.
//
// Lock order: Agent.mu (identity, fence state) before any package's own
// locks; the FSM and membership locks are leaves and are never held while
// calling back into the agent.
package agent
