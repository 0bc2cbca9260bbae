package transport

import (
	"context"

	"google.golang.org/grpc"
)

// MoveRequest asks the node where a process runs to migrate it, for a
// user of the cluster; the node checks ownership and everything else.
type MoveRequest struct {
	CPID int64 `json:"cpid"`
	To   int   `json:"to"`  // the target node
	UID  int   `json:"uid"` // the caller, as its own node saw it (SO_PEERCRED)
	From int   `json:"from"`
}

// MoveResponse describes a migration that was done.
type MoveResponse struct {
	From         int   `json:"from"`
	To           int   `json:"to"`
	Pid          int   `json:"pid"`
	NewPid       int   `json:"new_pid"`
	PidKept      bool  `json:"pid_kept"`
	Bytes        int64 `json:"bytes"` // image bytes sent after the freeze
	PreCopied    int64 `json:"pre_copied"`
	Rounds       int   `json:"rounds"`
	FreezeMicros int64 `json:"freeze_us"` // stopped on the source to running on the target
	TotalMicros  int64 `json:"total_us"`
	// The parts of the freeze: final dump, transfer, restore (on the target).
	DumpMicros    int64 `json:"dump_us"`
	SendMicros    int64 `json:"send_us"`
	RestoreMicros int64 `json:"restore_us"`
	// While it ran: the first copy of its memory (round 0) and the
	// stream of the pre-copy to the target, which wrote Written bytes
	// into the staged process in WriteMicros.
	CopyMicros   int64 `json:"copy_us"`
	StreamMicros int64 `json:"stream_us"`
	Written      int64 `json:"written"`
	WriteMicros  int64 `json:"write_us"`
}

// MovedRequest tells the origin node of a process (not run by a deputy)
// that it now runs on Node as Pid; Node 0: it ended there.
type MovedRequest struct {
	CPID int64 `json:"cpid"`
	Node int   `json:"node"`
	Pid  int   `json:"pid"`
}

// MovedResponse is empty: noted.
type MovedResponse struct{}

// Migrate opens a Migrate stream to the target (call it on a Bulk
// client); end it by cancelling ctx or after CloseSend and the last
// message.
func (c *Client) Migrate(ctx context.Context) (grpc.ClientStream, error) {
	return c.cc.NewStream(ctx, &migrateStream, MethodMigrate)
}

// Dump opens a Dump stream (on a Bulk client).
func (c *Client) Dump(ctx context.Context) (grpc.ClientStream, error) {
	return c.cc.NewStream(ctx, &dumpStream, MethodDump)
}

// Move calls Move; it returns when the migration is done or has failed.
func (c *Client) Move(ctx context.Context, r *MoveRequest) (*MoveResponse, error) {
	out := new(MoveResponse)
	return out, c.cc.Invoke(ctx, MethodMove, r, out)
}

// Moved calls Moved.
func (c *Client) Moved(ctx context.Context, r *MovedRequest) (*MovedResponse, error) {
	out := new(MovedResponse)
	return out, c.cc.Invoke(ctx, MethodMoved, r, out)
}

// MoveOutcomeRequest asks the source of migration ID what it decided.
type MoveOutcomeRequest struct {
	ID uint64 `json:"id"`
}

// MoveOutcomeResponse is the source's decision, if it made one.
type MoveOutcomeResponse struct {
	Decided bool `json:"decided"`
	Commit  bool `json:"commit"` // its copy is dead: the target's goes on
}

// MoveOutcome calls MoveOutcome.
func (c *Client) MoveOutcome(ctx context.Context, r *MoveOutcomeRequest) (*MoveOutcomeResponse, error) {
	out := new(MoveOutcomeResponse)
	return out, c.cc.Invoke(ctx, MethodOutcome, r, out)
}
