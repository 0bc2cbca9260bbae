package harness

import (
	"context"
	"fmt"

	"github.com/ssi-cluster/ssi/internal/api"
	"github.com/ssi-cluster/ssi/internal/client"
)

// Client is the API client of node i's agent (package client), over its
// Unix socket.
func (c *Cluster) Client(i int) (*client.Client, error) {
	if _, err := c.node(i); err != nil {
		return nil, err
	}
	return c.clients[i-1], nil
}

// ListNodes is node i's view of the node registry: what `ssi nodes -o json`
// prints, asked of the agent's socket directly rather than through the CLI,
// because WaitFormed polls it for every node every 20 ms and a process per
// poll would load the machine the test measures.
func (c *Cluster) ListNodes(ctx context.Context, i int) ([]api.Node, error) {
	cl, err := c.Client(i)
	if err != nil {
		return nil, err
	}
	nodes, err := cl.Nodes(ctx)
	if err != nil {
		return nil, fmt.Errorf("node %d: %w", i, err)
	}
	return nodes, nil
}

// ClusterInfo is node i's answer to `ssi cluster name`.
func (c *Cluster) ClusterInfo(ctx context.Context, i int) (api.Cluster, error) {
	cl, err := c.Client(i)
	if err != nil {
		return api.Cluster{}, err
	}
	info, err := cl.Cluster(ctx)
	if err != nil {
		return api.Cluster{}, fmt.Errorf("node %d: %w", i, err)
	}
	return info, nil
}

// WaitFormed waits until every node whose agent runs lists every node of
// the cluster as up.
func (c *Cluster) WaitFormed(ctx context.Context) error {
	return c.WaitFor(ctx, "every running agent to list all nodes up", func() (bool, error) {
		running := 0
		for _, n := range c.Nodes {
			if _, _, err := c.agentPID(n.Index); err != nil {
				continue
			}
			running++
			seen, err := c.ListNodes(ctx, n.Index)
			if err != nil {
				return false, err
			}
			if err := allUp(seen, c.Nodes); err != nil {
				return false, fmt.Errorf("%s sees %w", n.Name, err)
			}
		}
		if running == 0 {
			return false, stopWaiting{fmt.Errorf("no agent is running")}
		}
		return true, nil
	})
}

// allUp checks that seen lists every node of want as up.
func allUp(seen []api.Node, want []*Node) error {
	state := make(map[string]string, len(seen))
	for _, n := range seen {
		state[n.Name] = n.State
	}
	for _, n := range want {
		switch s := state[n.Name]; s {
		case api.StateUp:
		case "":
			return fmt.Errorf("%s is not listed", n.Name)
		default:
			return fmt.Errorf("%s is %s", n.Name, s)
		}
	}
	return nil
}
