package agent

import (
	"context"
	"fmt"
	"time"

	"github.com/ssi-cluster/ssi/internal/relink"
	"github.com/ssi-cluster/ssi/internal/rexec"
	"github.com/ssi-cluster/ssi/internal/state"
)

// A deputy whose home agent went (stopped, killed, restarted) rejoins
// the next one (internal/deputy, rejoin.go): a Start with Attach, its
// process's cluster pid, and Received, the counted frames of the
// process's stream that the agent before handled and told it
// (Delivered). This agent checks that the caller is that process's
// deputy (its cluster pid names the caller), finds the process's node,
// and relays as for a run it started, re-attached from Received (relay).
// Output: the deputy skips what it has already written (deputy/sink.go).
// Input: an exact deputy keeps what it sent until the node has it
// (InputHas); this agent maps what the node has to the deputy's count
// (the node's Started.InputBase: the deputy's frames that came with the
// process on its moves; from a node of a version before, the deputy's
// InputBase for the node and pid it last heard of) and asks it to send
// the rest again (InputFrom: resumeInput).

// rejoinFind bounds the search for the process's node.
const rejoinFind = 5 * time.Second

// rejoinNode is the node a rejoining deputy re-attaches to: the one of
// the session its count is in (spec.Node, spec.ReceivedPid), which runs
// the process or, if it moved on before the agent before told the
// deputy, keeps the end of that session, Moved last, which the relay
// follows (spec.Attach: the process; spec.CPID is the caller's, from
// fillCaller).
func (a *Agent) rejoinNode(spec *rexec.Spec) (*state.NodeRec, error) {
	if spec.Attach != spec.CPID {
		return nil, fmt.Errorf("process %s is not yours to re-attach to (you are %s)", showCPID(spec.Attach), showCPID(spec.CPID))
	}
	node := spec.Node
	if spec.ReceivedPid == 0 {
		// A deputy that does not say which session its count is in
		// (a version before): where the process runs now.
		ctx, cancel := context.WithTimeout(context.Background(), rejoinFind)
		defer cancel()
		if p, err := a.surrogateFind(ctx, spec.Attach); err == nil && p.Node > 0 {
			node = p.Node
		}
	}
	if node <= 0 {
		return nil, fmt.Errorf("process %s: no node runs it", showCPID(spec.Attach))
	}
	// Not checked up: a node on its way back is waited for (relay).
	return &state.NodeRec{Number: node}, nil
}

// resumeInput numbers the input of a rejoining deputy's process on from
// what its node has (st.Received, in the session the node runs it in)
// and tells an exact deputy which of the frames it kept to send again
// (InputFrom). A deputy that keeps no input (a version before Exact) had
// what the agent before kept lost with it.
func (a *Agent) resumeInput(fc rexec.Conn, in *relink.Input, spec *rexec.Spec, node int, st rexec.Started) {
	if !spec.Exact {
		in.Skip(st.Received, 0, st.Ended)
		return
	}
	base := spec.InputBase
	if st.InputBase != nil {
		// The node says which of the deputy's frames came with the
		// process: right even when the process moved and the agent
		// before went before it told the deputy.
		base = *st.InputBase
	} else if spec.InputNode != node || spec.InputPid != st.Pid {
		// The process moved and the agent before went before it told
		// the deputy: which of its frames went with the process is not
		// known. Said, and the input closed, rather than some of it
		// passed twice or not at all.
		msg := fmt.Sprintf("process %s moved to node %d while its home agent went: the input in flight then cannot be completed, so its input is closed (it reads end of file)",
			showCPID(spec.Attach), node)
		a.log.Warn("rejoined deputy's input cannot be resumed", "cpid", showCPID(spec.Attach), "node", node, "pid", st.Pid,
			"deputy_knew_node", spec.InputNode, "deputy_knew_pid", spec.InputPid)
		fc.Send(rexec.Frame{Type: rexec.TError, Data: []byte(msg)})
		fc.Send(rexec.CountFrame(rexec.TInputFrom, -1))
		in.Skip(st.Received, 0, st.Ended)
		in.Pass(rexec.Frame{Type: rexec.TStdinEOF})
		return
	}
	in.Skip(st.Received, base, st.Ended)
	fc.Send(rexec.CountFrame(rexec.TInputFrom, base+st.Received))
}
