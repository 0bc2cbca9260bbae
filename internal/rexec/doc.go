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
package rexec
