package balance

import "fmt"

// Admit is the target's own word on a process of rss bytes sent to it
// for reason (the admission control of load balancing): a node that does
// not accept guests, is draining or short of memory, would be left short
// by it, or took processes whose load it has not measured yet, refuses;
// "" means it takes it. A move for memory or a drain is refused only for
// the first three and for room: those must go somewhere.
func Admit(self Node, rss uint64, reason Reason, p Params) string {
	r := round{p: p}
	if why := r.takes(self, rss, reason); why != "" {
		return fmt.Sprintf("node %d %s", self.Number, why)
	}
	return ""
}
