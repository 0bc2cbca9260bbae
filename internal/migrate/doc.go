// Package migrate is the wire protocol of live migration between agents
// (`ssi migrate`, `ssi checkpoint`): the messages of the Migrate and Dump
// streams, the image carried in them, and a test-only fault hook. The
// agent drives it: package checkpoint freezes, dumps and restores, the
// transport carries the streams over mutual TLS on the Bulk channel.
//
// # Messages
//
// Every message is a Msg: a kind byte, a little-endian uint32 length, the
// CRC32C of the payload and the payload (at most MaxData bytes). A message
// whose checksum does not match is refused (ErrCorrupt): the stream it
// came on is abandoned, and so is the migration.
//
// # A migration
//
// The source calls Migrate on the target and sends Begin (JSON: the
// process, its cluster pid, who runs it, the run's Spec when a deputy
// holds its stdio). The target accepts (Accept) or refuses (Refuse, a
// message for the user) before anything is frozen. The source starts the
// pre-copy while the process runs and sends its Layout (the address
// space); the target stages it (a held restore stub with those mappings)
// and answers Staged. Then Pages (an address and bytes) carry round 0 as
// it is read and each round's written pages; the target writes them into
// the stub as they come. Sync asks the target to finish writing (Synced)
// before the freeze. Frozen, the source sends the pages written since,
// the image without the memory of unchanged mappings (Image chunks, runs
// of zeros as Zeros: the checkpoint stream format, with its own section
// checksums and end marker), the input the process had not read (Stdin)
// and End (JSON: byte counts, so that a cut stream is seen). The target
// completes the restore, the process held (stopped under ptrace), and
// answers Restored (JSON: its pid) or Failed. The source then decides:
// Commit (it has killed its copy; the target lets the restored process
// run and answers Done) or Abort (it resumed its copy; the target kills
// the restored one). A stream that breaks before Restored aborts; one
// that breaks after makes the target ask the source (the MoveOutcome
// call) what it decided.
//
// # A dump
//
// The caller of Dump sends DumpRequest; the process's node freezes it,
// sends Image chunks and End; the caller answers Commit (the image is
// safe: with Kill the process is killed, else it runs on) or Abort (it
// runs on). A process without Kill runs on as soon as it is dumped.
package migrate
