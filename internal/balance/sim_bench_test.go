package balance

import (
	"math"
	"slices"
	"testing"
	"time"
)

// scaleCluster is issue 14's judged case (e): 1,000 nodes of unequal
// cores (2 to 16) and speeds (500 to 2000), and 100,000 CPU-bound
// processes that never end, all started on the first 10% of the nodes.
func scaleCluster() SimConfig {
	cfg := SimConfig{Params: Defaults()}
	for i := range 1000 {
		cfg.Nodes = append(cfg.Nodes, SimNode{Cores: []int{2, 4, 8, 16}[i%4], Speed: []int{500, 1000, 1500, 2000}[i/4%4],
			MemTotal: 64 << 30, BaseUse: 2 << 30, AcceptGuests: true, SendAway: true, Aggressiveness: 0.5})
	}
	for i := range 100_000 {
		cfg.Procs = append(cfg.Procs, SimProc{Node: i % 100, Work: math.Inf(1), RSS: 20 * mib, DirtyRate: mib})
	}
	return cfg
}

// BenchmarkBalanceScale runs the scale case until every node's load is
// within 10% of even, or until the balancers have settled (no move for
// 20 rounds), and reports: the rounds until the loads were within 25% and
// 10% of even (-1: never), the rounds until they settled, the spread
// then, the migrations per process, and the policy's time per node per
// round (the Decide calls alone, timed around each; the target is under
// 1 ms): the mean, the 99th percentile, and the mean of the nodes that
// started with the processes. Run it once: -benchtime 1x.
func BenchmarkBalanceScale(b *testing.B) {
	const limit, quiet = 2000, 20
	for b.Loop() {
		var spent []time.Duration
		var busy time.Duration
		var busyCalls int
		cfg := scaleCluster()
		cfg.Decide = func(in Input) Decision {
			start := time.Now()
			d := Decide(in)
			el := time.Since(start)
			spent = append(spent, el)
			if in.Self.Number <= 100 {
				busy += el
				busyCalls++
			}
			return d
		}
		sim := NewSim(cfg, 1)
		within25, within10, settled, still := -1, -1, -1, 0
		for r := 1; r <= limit && within10 < 0 && settled < 0; r++ {
			if len(sim.Step().Moves) == 0 {
				still++
			} else {
				still = 0
			}
			spread := sim.Spread()
			if within25 < 0 && spread <= 0.25 {
				within25 = r
			}
			if spread <= 0.10 {
				within10 = r
			}
			if still >= quiet {
				settled = r - quiet
			}
		}
		var total time.Duration
		for _, d := range spent {
			total += d
		}
		slices.Sort(spent)
		st := sim.Stats()
		b.ReportMetric(float64(within25), "rounds-to-25%")
		b.ReportMetric(float64(within10), "rounds-to-10%")
		b.ReportMetric(float64(settled), "rounds-to-settle")
		b.ReportMetric(sim.Spread(), "spread")
		b.ReportMetric(st.PerProc, "moves/proc")
		b.ReportMetric(float64(total.Microseconds())/float64(len(spent)), "policy-µs/node-round")
		b.ReportMetric(float64(spent[len(spent)*99/100].Microseconds()), "p99-policy-µs")
		b.ReportMetric(float64(busy.Microseconds())/float64(busyCalls), "sender-policy-µs")
	}
}
