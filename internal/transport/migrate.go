package transport

import (
	"context"

	"google.golang.org/grpc"

	"github.com/ssi-cluster/ssi/internal/api"
)

// MoveRequest asks the node where a process runs to migrate it, for a
// user of the cluster; the node checks ownership and everything else.
type MoveRequest struct {
	CPID int64 `json:"cpid"`
	To   int   `json:"to"`  // the target node
	UID  int   `json:"uid"` // the caller, as its own node saw it (SO_PEERCRED)
	From int   `json:"from"`
	// Reason: why the node's balancer moves it (balance.Reason); "" for
	// a user's move. The target's admission control sees it.
	Reason string `json:"reason,omitempty"`
}

// MoveResponse describes a migration that was done: the local API's
// Migration, which the source's answer is passed on as.
type MoveResponse = api.Migration

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
