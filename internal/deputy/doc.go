// Package deputy is the home-node side of `ssi run`: the process the user
// started, which stays where it was started while the command runs on
// another node. It streams stdin, stdout and stderr through its agent
// (package rexec frames); with a terminal it gives the command a pty there
// and puts the local terminal in raw mode, following window-size changes;
// it forwards every signal it receives to the remote process group over
// the control channel (as `ssi kill` does), mirrors the remote process's
// stops so that the shell's job control (Ctrl-Z, fg, bg) works, and ends
// the way the remote process ended: the same exit status, or death by the
// same signal.
package deputy
