package agent

import (
	"log/slog"
	"sync"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/ssi-cluster/ssi/internal/ratelimit"
)

// joinGate slows down addresses whose joins keep failing (5 at once, then
// 1 s, 2 s ... 30 s between attempts; 50 failures a second across all
// addresses) and samples the log lines of refused joins: the first from an
// address in 10 s, then a count.
type joinGate struct {
	lim *ratelimit.Limiter
	smp *ratelimit.Sampler

	mu        sync.Mutex
	lastFlush time.Time
}

const joinLogInterval = 10 * time.Second

func newJoinGate() *joinGate {
	return &joinGate{lim: ratelimit.New(ratelimit.DefaultConfig()), smp: ratelimit.NewSampler(joinLogInterval, 10000)}
}

// allow says whether a join from src may be served now.
func (g *joinGate) allow(src string, now time.Time) (bool, time.Duration) {
	return g.lim.Allow(ratelimit.KeyOf(src), now)
}

// done records how a join from src ended: a refusal the joiner caused
// (bad token, bad request, name taken) counts against its address; a
// success or the cluster's own unavailability does not.
func (g *joinGate) done(src string, now time.Time, code codes.Code, why string, log *slog.Logger) {
	key := ratelimit.KeyOf(src)
	switch code {
	case codes.OK, codes.Unavailable, codes.FailedPrecondition, codes.Internal, codes.ResourceExhausted:
		g.lim.Succeeded(key, now)
	default:
		g.lim.Failed(key, now)
		if ok, n := g.smp.Log(key, now); ok {
			log.Warn("refused a join", "source", src, "why", why, "suppressed_before", n)
		}
	}
	g.mu.Lock()
	flush := now.Sub(g.lastFlush) >= joinLogInterval
	if flush {
		g.lastFlush = now
	}
	g.mu.Unlock()
	if flush {
		for _, s := range g.smp.Flush(now) {
			log.Warn("refused more joins", "source", s.Key, "count", s.Suppressed, "since", s.Since.UTC().Format(time.RFC3339))
		}
	}
}
