package state

import (
	"fmt"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/ssi-cluster/ssi/internal/ratelimit"
)

// raftRepeats are raft's log lines that come back at every election round
// or heartbeat for as long as a node is cut off (a few a second on the
// node, and on the master for it): kept to one a minute per message and
// peer, so that a partition of hours does not fill the journal. Other
// lines are all logged.
var raftRepeats = map[string]bool{
	"Election timeout reached, restarting election":                 true,
	"entering candidate state":                                      true,
	"heartbeat timeout reached, starting election":                  true,
	"pre-vote campaign failed, waiting for election timeout":        true,
	"failed to make requestVote RPC":                                true,
	"failed to appendEntries to":                                    true,
	"failed to heartbeat to":                                        true,
	"failed to contact":                                             true,
	"rejecting vote request since node is not in configuration":     true,
	"rejecting vote request since we have a leader":                 true,
	"rejecting pre-vote request since node is not in configuration": true,
	"rejecting pre-vote request since we have a leader":             true,
}

// raftLogFilter is an hclog Exclude function that samples raftRepeats.
type raftLogFilter struct {
	sampler *ratelimit.Sampler
	now     func() time.Time
}

func newRaftLogFilter() *raftLogFilter {
	return &raftLogFilter{sampler: ratelimit.NewSampler(time.Minute, 256), now: time.Now}
}

// exclude says whether raft's line msg is left out. The key is the message
// and its first value (the peer, for the repeating lines that have one).
func (f *raftLogFilter) exclude(_ hclog.Level, msg string, args ...any) bool {
	if !raftRepeats[msg] {
		return false
	}
	key := msg
	if len(args) >= 2 {
		key += " " + fmt.Sprint(args[1])
	}
	ok, _ := f.sampler.Log(key, f.now())
	return !ok
}
