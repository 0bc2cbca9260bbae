package transport

import (
	"context"

	"google.golang.org/grpc"
)

// Presence is the stream every node holds open to the master. Nothing
// flows on it while all is well, so it costs nothing at rest; its use is
// that it ends. When an agent dies (killed, crashed, OOM-killed)
// its kernel closes the connection and the master learns it at once,
// without waiting for gossip's probes; the master then checks the death
// with a Ping before committing it. A node that goes on purpose (it leaves
// the cluster, or its agent is stopped or restarted) says so first
// (PresenceNote.Leaving), so that its going is not taken for a failure.

// PresenceNote is what a node sends on its Presence stream: one when it
// opens it, and one with Leaving set when it goes on purpose.
type PresenceNote struct {
	Incarnation uint64 `json:"incarnation"`
	Leaving     bool   `json:"leaving,omitempty"`
}

var presenceStream = bidi("Presence", Handler.Presence)

// MethodPresence is the Presence stream's full method name.
const MethodPresence = "/" + serviceName + "/Presence"

// Presence opens a Presence stream to the master (on a Control client).
func (c *Client) Presence(ctx context.Context) (grpc.ClientStream, error) {
	return c.cc.NewStream(ctx, &presenceStream, MethodPresence)
}
