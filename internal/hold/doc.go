// Package hold keeps a process run for a deputy alive, with its stdio and
// its terminal, across restarts of the agent that started it: the
// containerd-shim / conmon pattern.
//
// # The holder
//
// For each `ssi run` process the agent starts a holder: its own binary
// under the hidden subcommand `__hold` (Arg), as root, in a session of
// its own (setsid: a signal to the agent's process group or a hang-up of
// its terminal does not reach it). The holder reads the run's Spec
// (already confined by the agent: the caller's uid, gid, groups, umask,
// limits and nice, never more) and starts the process with rexec.Start,
// so the command is the holder's child, not the agent's: the holder owns
// its stdio pipes (and its pty with the `__exec` session helper), collects
// its stops and its exit status, and keeps that status until an agent
// has it (Release). A holder serves one agent at a time on a Unix socket,
// Dir/<cluster pid>.sock, in a directory of the state directory that only
// root may enter; both ends check the other's credentials (SO_PEERCRED:
// root). The socket is also the agent's index of the processes it
// holds: the holder knows the record (Info), so there is no separate
// table to go stale or half written.
//
// # The session's stream, kept until acknowledged
//
// The holder is the executing side's outbox of record of the run's
// session (rexec's doc, Re-attaching): it reads the process's output and
// collects its stops and its end, and numbers these counted frames from 1
// at the process's start, with those the agent adds (TMoving, TResume:
// Link.Inject; TMoved at a move's commit, which then is the last frame
// instead of the kill's exit). It keeps each (a relink.Outbox) until the
// home acknowledges it (TAck, passed on by the agent). While a window
// (relink.Window bytes or WindowFrames frames) waits for an
// acknowledgement the holder stops
// reading the process's pipes: they fill and the process's writes block,
// as on a slow terminal; nothing is dropped. An agent that connects sends
// TReplay with the number of the last frame its home has (0 for a new
// run) and the holder sends the frames after it, in order, then those
// that come; before the first TReplay it sends none (the agent has no
// home to give them to yet). The agent counts the input frames it passes
// on to the process (TPassed); the holder keeps the count for the next
// agent, which tells a re-attaching home where its input resumes.
//
// # Restart and re-adoption
//
// An agent that stops (SIGTERM) or dies (SIGKILL) closes its connection;
// the holders carry on. An agent that starts lists Dir, connects to each
// holder (Dial: a socket whose holder is gone is removed, and its process
// reported lost), and re-creates the process's session under the same
// cluster pid from Info; the home node's relay, whose stream to this
// node broke, re-attaches as after any broken stream (Spec.Attach and
// Spec.Received), and the frames resume from exactly there.
//
// The agent side is a Link: a rexec.Proc (Held) whose Wait gives the
// holder's stops and exit status, and a sink that takes the counted
// frames in order; the writing end of the stdin pipe (and a copy of its
// reading end, for a migration's stdin hand-over) or the pty's master
// come over the socket with Info (SCM_RIGHTS).
//
// What is not held: a process restored here after a migration (it is
// the agent's child, as before). The home side's restart is the deputy's
// to outlive (it rejoins the next agent: internal/deputy, rejoin.go). Input passed on to the process
// but not yet counted to the holder when an agent is killed (at most the
// one frame being written) may be passed on again.
package hold
