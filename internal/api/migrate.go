package api

// Endpoints of migration (all on the Unix socket, as the caller):
//
//	POST /v1/migrate          MigrateRequest -> Migration: move a process
//	POST /v1/checkpoint       CheckpointRequest, upgraded to a stream of
//	                          migrate messages: the image (ssi checkpoint)
//	POST /v1/restore?out=F    the image as the body -> Restore (ssi restore)

// The protocols named in the Upgrade header of the streams of the local
// API: POST /v1/run (frames, package rexec) and POST /v1/checkpoint
// (migrate messages).
const (
	UpgradeExec       = "ssi-exec"
	UpgradeCheckpoint = "ssi-checkpoint"
)

// MigrateRequest is the body of POST /v1/migrate.
type MigrateRequest struct {
	CPID int64  `json:"cpid"`
	To   string `json:"to"` // a node number, "home" or "fast"
}

// Migration describes a migration that was done.
type Migration struct {
	CPID      int64 `json:"cpid"`
	From      int   `json:"from"`
	To        int   `json:"to"`
	Pid       int   `json:"pid"`
	NewPid    int   `json:"new_pid"`
	PidKept   bool  `json:"pid_kept"`
	Bytes     int64 `json:"bytes"`      // image bytes sent after the freeze
	PreCopied int64 `json:"pre_copied"` // bytes copied while it ran
	Rounds    int   `json:"rounds"`     // pre-copy rounds
	// Times in microseconds: stopped on the source to running on the
	// target (FreezeUS), of which the final dump, the transfer and the
	// restore, and the commit's agreement (DecideUS: recorded by the
	// cluster's agreed state, docs/migration.md); and the whole migration.
	FreezeUS  int64 `json:"freeze_us"`
	DumpUS    int64 `json:"dump_us"`
	SendUS    int64 `json:"send_us"`
	RestoreUS int64 `json:"restore_us"`
	DecideUS  int64 `json:"decide_us"`
	TotalUS   int64 `json:"total_us"`
	// While it ran: round 0 of the pre-copy (memory read, CopyUS), the
	// pre-copy streamed to the target (StreamUS), of which the target
	// spent WriteUS writing Written bytes into the staged process.
	CopyUS   int64 `json:"copy_us"`
	StreamUS int64 `json:"stream_us"`
	Written  int64 `json:"written"`
	WriteUS  int64 `json:"write_us"`
}

// CheckpointRequest is the body of POST /v1/checkpoint.
type CheckpointRequest struct {
	CPID int64 `json:"cpid"`
	Kill bool  `json:"kill"` // kill the process once the image is safe
}

// Restore is the answer to POST /v1/restore.
type Restore struct {
	CPID    int64  `json:"cpid"`
	Node    int    `json:"node"`
	Pid     int    `json:"pid"`
	PidKept bool   `json:"pid_kept"`
	PidErr  string `json:"pid_err,omitempty"`
}
