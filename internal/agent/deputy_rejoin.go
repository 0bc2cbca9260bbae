package agent

import (
	"context"
	"fmt"
	"time"

	"github.com/ssi-cluster/ssi/internal/rexec"
	"github.com/ssi-cluster/ssi/internal/state"
)

// A deputy whose home agent went (stopped, killed, restarted) rejoins
// the next one (internal/deputy, rejoin.go): a Start with Attach, its
// process's cluster pid, and Received, the counted frames of the
// process's stream that the agent before handled and told it (TAck).
// This agent checks that the caller is that process's deputy (its
// cluster pid names the caller), finds the process's node, and relays
// as for a run it started, re-attached from Received (relay). Input that
// the agent before had taken from the deputy and the node had not
// acknowledged is lost with it; output is resent from what the deputy
// has: a frame written to a passed file in the moment the agent was
// killed may be written twice.

// rejoinFind bounds the search for the process's node.
const rejoinFind = 5 * time.Second

// rejoinNode is the node that runs the process a rejoining deputy
// names (spec.Attach; spec.CPID is the caller's, from fillCaller).
func (a *Agent) rejoinNode(spec *rexec.Spec) (*state.NodeRec, error) {
	if spec.Attach != spec.CPID {
		return nil, fmt.Errorf("process %s is not yours to re-attach to (you are %s)", showCPID(spec.Attach), showCPID(spec.CPID))
	}
	node := spec.Node
	ctx, cancel := context.WithTimeout(context.Background(), rejoinFind)
	defer cancel()
	if p, err := a.surrogateFind(ctx, spec.Attach); err == nil && p.Node > 0 {
		node = p.Node
	}
	if node <= 0 {
		return nil, fmt.Errorf("process %s: no node runs it", showCPID(spec.Attach))
	}
	// Not checked up: a node on its way back is waited for (relay).
	return &state.NodeRec{Number: node}, nil
}
