package agent

import (
	"context"
	"strconv"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ssi-cluster/ssi/internal/state"
	"github.com/ssi-cluster/ssi/internal/transport"
)

// confirmTimeout bounds the master's check of a death that gossip reports.
// A crashed agent refuses the connection (or its open one breaks) at once;
// only a node cut off costs the whole wait, added to its detection. It was
// 250 ms: on a machine whose CPUs are saturated a live agent, itself
// starved, missed that deadline for its TLS handshake and Ping, and gossip's
// mistake became a committed down (`bench soak`: false downs at every level
// of CPU demand); 750 ms gives a starved agent three times as long, and costs
// a node cut off (not a crashed one) 500 ms more detection.
const confirmTimeout = 750 * time.Millisecond

// confirmRetry is the second, shorter wait after a Ping that timed out: a
// node cut off costs confirmTimeout plus confirmRetry (1 s), a crashed one
// nothing (it refused).
const confirmRetry = 250 * time.Millisecond

// confirmDowns drops from acts the downs that gossip alone reports
// (action.Confirm) of nodes that still answer a Ping over mutual TLS as
// themselves: gossip can be forged by any member, which holds its key, and
// is mistaken on a saturated machine; an answer with the node's own
// certificate cannot be either. The pings run together.
func (a *Agent) confirmDowns(ctx context.Context, acts []action, reg *state.Registry) []action {
	var wg sync.WaitGroup
	alive := make([]bool, len(acts))
	for i, act := range acts {
		rec := reg.Nodes[act.Number]
		if !act.Confirm || rec == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			alive[i] = a.answers(ctx, rec)
		}()
	}
	wg.Wait()
	out := acts[:0:0]
	for i, act := range acts {
		if alive[i] {
			// The reconciler runs every 200 ms: say it once a minute.
			if ok, n := a.confirmLog.Log(strconv.Itoa(act.Number), time.Now()); ok {
				a.log.Warn("a node seems to have failed, but it answers over TLS: not committing it down",
					"node", act.Number, "why", act.Reason, "said_before", n)
			}
			continue
		}
		out = append(out, act)
	}
	return out
}

// answers reports whether node rec answers a Ping, as itself, in time,
// over a connection of its own (not the pool's, which a failed dial would
// leave in reconnect backoff after the node comes back).
func (a *Agent) answers(ctx context.Context, rec *state.NodeRec) bool {
	c, err := transport.DialOnce(rec.RPCAddr(), a.creds.ClientTLS(), transport.FromIP(a.cfg.Bind))
	if err != nil {
		return false
	}
	defer c.Close()
	ping := func(d time.Duration) (*transport.PingResponse, error) {
		cctx, cancel := context.WithTimeout(ctx, d)
		defer cancel()
		return c.Ping(cctx)
	}
	resp, err := ping(confirmTimeout)
	if status.Code(err) == codes.DeadlineExceeded && ctx.Err() == nil {
		// No answer in time is not a refusal: the master itself may have
		// been starved past its own deadline while the answer waited in
		// its socket. Ask once more, briefly, on the same connection.
		resp, err = ping(confirmRetry)
	}
	return err == nil && resp.NodeID == rec.ID
}
