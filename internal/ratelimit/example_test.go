package ratelimit_test

import (
	"fmt"
	"time"

	"github.com/ssi-cluster/ssi/internal/ratelimit"
)

// A join handler refuses an address that keeps failing, and logs the
// first refusal of an interval and a count of the others.
func Example() {
	lim := ratelimit.New(ratelimit.Config{}) // 5 at once, then 1 s, 2 s, ... 30 s
	logs := ratelimit.NewSampler(10*time.Second, 0)
	now := time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC)
	addr := "10.0.0.5"
	for i := 0; i < 2000; i++ {
		now = now.Add(250 * time.Microsecond) // 2,000 joins in 0.5 s
		if ok, retry := lim.Allow(addr, now); !ok {
			if log, n := logs.Log(addr, now); log {
				fmt.Printf("too many failed joins from %s; retry in %v (%d more)\n", addr, retry.Round(time.Second), n)
			}
			continue
		}
		lim.Failed(addr, now) // the token was wrong
	}
	for _, s := range logs.Flush(now.Add(10 * time.Second)) {
		fmt.Printf("refused %d more joins from %s in the last 10s\n", s.Suppressed, s.Key)
	}
	// Output:
	// too many failed joins from 10.0.0.5; retry in 1s (0 more)
	// refused 1994 more joins from 10.0.0.5 in the last 10s
}
