// Package membership is ssi's gossip layer (OpenSSI's CLMS node-down
// detection, openMosix's load dissemination), built on hashicorp/memberlist
// (SWIM with Lifeguard), encrypted with the cluster's gossip key.
//
// It answers two questions without agreement: who is reachable now, and how
// loaded each node is. Agreement on membership (numbered epochs) is the job
// of package state; the agent's leader turns what this package sees into
// committed transitions.
//
// # Fast detection
//
// memberlist's LAN defaults detect a dead node in 4-5 s. ssi probes every
// 100 ms with a 60 ms probe timeout and a suspicion timeout of
// SuspicionMult x max(1, log10 N) probe intervals (200 ms for up to 10 nodes),
// and gossips every 30 ms to 4 nodes. Measured end to end (crash to the
// committed down transition applied on every survivor, 5 nodes, `go run
// ./bench detect`): p50 437 ms, p99 644 ms. Lifeguard's local health awareness stretches
// a node's own timeouts when it is itself slow to answer (a saturated CPU),
// which keeps false suspicions down.
//
// # Load vectors
//
// Each node samples its load vector (package load) every second and
// broadcasts it when it changed (load.Significant) or every load.Republish
// seconds, as a memberlist user message piggybacked on gossip packets to
// random nodes, as openMosix sent its load to a random subset each second
// (an idle node's unchanged vector, sent every second by every node, was
// most of an idle cluster's gossip). Receivers keep the
// newest vector per node (by its stamp). A node's own vector is also kept.
//
// # Node metadata
//
// Each node's memberlist meta carries its name, number, RPC and raft ports
// and its incarnation (bumped at every agent start and every self-fencing),
// encoded as JSON within memberlist's 512-byte limit.
//
// Concurrency: memberlist calls the delegates on its own goroutines; they
// only take m.mu and never block. Lock order: m.mu is a leaf.
package membership
