// Package transport is ssi's inter-node communication subsystem (OpenSSI's
// ICS): authenticated, encrypted calls between agents.
//
// Every agent serves gRPC on its RPC port over TLS 1.3 with certificates from
// the cluster CA (package pki). The listener asks for a client certificate but
// does not demand one at the handshake, so that a node without a certificate
// can make the one call that gives it one: Join, which is checked against the
// join token's secret instead. Every other method is refused unless the
// caller presented a certificate that verifies against the cluster CA; the
// interceptors in server.go enforce it, and the caller's node ID (the
// certificate's CN) is put in the call's context (PeerFrom).
//
// Raft runs on its own port through a StreamLayer (raftlayer.go) that is
// mutual TLS with a mandatory client certificate.
//
// # Channels and priorities
//
// Control traffic (membership, agreement, lock and process control) must never
// wait behind bulk streams (migration pages, file data). The Pool keeps, per
// peer, separate TCP connections for each Channel: Control and Bulk. Each
// connection has its own socket buffers and its own HTTP/2 flow-control
// windows, so a bulk stream that fills its window or the TCP send queue cannot
// delay a control message: the head-of-line blocking of one TCP stream does
// not span connections. Control sockets are also marked with DSCP CS6
// (network control) and Bulk sockets with CS1 (lower effort), so a congested
// network that honours DSCP forwards control first. Raft has its own
// connections as well (its own port).
//
// Messages are encoded with a JSON codec (codec.go) bounded in size; every
// decoded message is validated by its handler before use. Stream messages
// (the frames of Exec, the messages of Migrate and Dump: package migrate)
// have their own binary encoding. Live migration uses the Migrate stream
// (source to target), Move (ask a process's node to migrate it), Moved
// (tell a process's origin where it went) and MoveOutcome (a target asks
// its source what it decided); ssi checkpoint uses Dump.
package transport
