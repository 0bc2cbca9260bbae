// Package relink is the pure core of a run's re-attachment after its
// stream broke (see rexec's doc, Re-attaching): the home's view of its
// link to the process's node (Link: attached, suspected, lost, with the
// grace period and the clock passed in), the frames a side keeps until
// the other acknowledges them (Outbox), and when a receiver acknowledges
// (Acks). It does no I/O and keeps no time of its own: the agent drives
// it (internal/agent/relink.go, session.go).
//
// Suspected is not dead: a node committed down under load may come back
// a second later with its processes alive. A home whose stream broke, or
// whose process's node was committed down, waits up to the grace period
// for the node to answer again and re-attaches; it calls the process
// lost only when the node says it has it no more, or the grace ran out.
package relink
