package load

// Republish is how often a node gossips its vector when nothing changed
// (Significant), in samples: receivers see its age, and a vector lost on
// the way is replaced soon.
const Republish = 5

// Significant reports whether cur differs from the last gossiped vector
// prev enough to gossip it now: a change of the run queue, of the process
// count or of the node's capacity, the 1-minute load moved by 0.1, the CPU
// use by 5 points, free memory by 2% of the total. An idle node's vector
// does not change, and gossiping it every second was most of the gossip an
// idle cluster sent.
func Significant(prev, cur Vector) bool {
	const eps = 1e-9 // 0.6-0.5 is 0.0999...
	absf := func(x float64) float64 {
		if x < 0 {
			return -x
		}
		return x
	}
	memMove := prev.MemFree - cur.MemFree
	if cur.MemFree > prev.MemFree {
		memMove = cur.MemFree - prev.MemFree
	}
	return cur.RunQueue != prev.RunQueue || cur.Procs != prev.Procs || cur.Cores != prev.Cores ||
		cur.Speed != prev.Speed || cur.MemTotal != prev.MemTotal ||
		absf(cur.Load1-prev.Load1) >= 0.1-eps || absf(cur.CPUUse-prev.CPUUse) >= 0.05-eps ||
		memMove*50 >= cur.MemTotal
}
