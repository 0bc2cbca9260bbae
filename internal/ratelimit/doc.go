// Package ratelimit slows down callers that keep failing, one source
// address at a time, and keeps the log of such failures short.
//
// It is pure: no I/O, no goroutines, no clock of its own. Every call takes
// the time it happens at, so tests drive the clock and are deterministic.
// Both types are safe for concurrent use.
//
// # Limiter
//
// A Limiter is asked before an attempt (Allow) and told its outcome after
// (Failed, Succeeded). Per key (a source IP address without its port, or
// an IPv6 /64: KeyOf makes one from a peer's address):
//
//   - the first Burst attempts go through at once;
//   - from the Burst-th on, each attempt makes the next one wait, Base
//     first, then twice as long each time, up to Max (with the defaults:
//     5 at once, then 1 s, 2 s, 4 s, 8 s, 16 s, 30 s, 30 s, ...);
//   - a success forgets the key.
//
// Allow counts an attempt as a failure in advance, so a thousand
// concurrent attempts from one address cannot all pass before the first
// of them fails, and a caller that forgets to report an outcome errs on the
// side of refusing. Failed restarts the wait from the moment the attempt
// failed (a slow attempt does not eat into the wait).
//
// Memory is bounded: at most Keys addresses are kept; a new one evicts the
// one seen longest ago, and a key idle for Forget is dropped. Evicting a key
// gives that address a fresh burst, so spraying from many addresses is held
// by a second, global limit: at most GlobalRate attempts a second (with a
// burst of GlobalBurst) across all addresses. Successes give their token
// back, so the global limit counts failures.
//
// # Sampler
//
// A Sampler decides whether a log line for a key should be written now:
// the first line for a key in an Interval, and, for the lines it
// suppressed, a count when the next one is logged or, if none comes, from
// Flush, which the caller calls about once an Interval. With a Sampler,
// 2,000 refused joins from one address in 10 s make two log lines:
//
//	refused join from 10.0.0.5: wrong token
//	refused 1999 more joins from 10.0.0.5 in the last 10s
package ratelimit
