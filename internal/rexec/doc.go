// Package rexec is remote execution, the mechanism under `ssi run`: the
// frames a deputy and the agents exchange, the description of what to run
// (Spec, with the caller's credentials and environment), starting it on a
// node (Start: pipes or a pty, the caller's uid, gid, groups, umask,
// limits and nice applied by a small helper before exec), its stops,
// continues and exit (Status), and the pure placement rules for --fast
// and --np. It knows nothing of the cluster: the agent carries frames
// between the deputy's Unix socket and a gRPC stream to the executing
// node.
//
// # Frames
//
// Every message is a Frame: a type byte, a little-endian uint32 length and
// that many bytes. The deputy sends Start (JSON Spec) first, then Stdin,
// StdinEOF and Winsize; the executing side answers Started, then Stdout,
// Stderr, Stopped, Continued and finally Exit (JSON Status). Error carries
// a message for the user. Signals do not travel in the stream, where they
// could wait behind input the process does not read: the deputy sends
// them as `ssi kill` does, over the control channel. The same encoding is used on the
// Unix socket and as the gRPC message of the Exec stream.
//
// # Moving
//
// A process run for a deputy may migrate. Its executing node sends Moving
// to the home agent, which holds the deputy's input from then on and
// answers Hold: no more input comes on that stream. The node freezes the
// process, takes what it has not read of its stdin (Proc.DrainStdin: the
// pipe's contents, through a copy of its reading end, and the input queued
// for it) and sends its output to the end. If the move fails it puts the
// input back (Proc.Undrain) and sends Resume: the home sends input again.
// If it succeeds it sends Moved (the new node and pid) and ends the
// stream without Exit; the home opens an Exec stream to the new node with
// a Start whose Spec has Attach set, sends the held input first and
// relays as before. The deputy sees none of this.
//
// # Re-attaching
//
// A stream between a home and the process's node may break while both
// live (a partition, a node committed down by mistake under load). The
// frames that concern the session, not one stream (Counted), are
// numbered from 1 in each direction, from the session's start on its
// node; each side acknowledges what it has received now and then (Ack)
// and keeps what it sent until acknowledged. The node keeps the process,
// and its output (its pumps block once a window is unacknowledged: the
// process's writes wait, nothing is dropped), for a grace period
// (Spec.GraceMS). The home opens a new stream with Attach and Received
// (what it has); the node answers Started with Received (what it has of
// the input) and sends the rest of its output; the home sends the rest
// of the input. A deputy that goes sends Hangup: the process is hung up
// at once. After a move the new node's session numbers from 1 again.
//
// On the node the process's holder (package hold) keeps the session's
// counted frames, so that they outlive the agent (Held, Replay, Passed,
// Release are between the two). The home acknowledges a frame once it has
// handled it, after telling its deputy (Delivered on the deputy's stream:
// the frames, and the bytes of each output stream), so a deputy whose
// home agent went re-attaches through the next one with Attach and
// Received itself, and skips the output it has already written. The
// deputy keeps its input until the node has it (InputHas) and sends the
// next agent what the node lacks (InputFrom).
//
// # Waiting
//
// The agent waits for the processes it started (Proc.Wait). A process
// being frozen for a move is traced by the agent, and a wait from any of
// its threads could take the tracer's stops: Proc.HoldWait keeps Wait from
// collecting anything until Proc.ReleaseWait.
package rexec
