package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/ssi-cluster/ssi/internal/state"
	"github.com/ssi-cluster/ssi/internal/statedir"
)

// RemovedFile marks a state directory whose node was removed from the
// cluster (`ssi node remove`): the agent will not start on it again.
const RemovedFile = "removed"

// removalLoop acts on nodes removed from the cluster as soon as the
// removal is applied here: their certificate is already refused at every
// new handshake (Creds.SetRevoked reads the registry); this closes the
// connections they hold to this node and drops this node's connections to
// them. When this very node is the one removed, it stops for good.
func (a *Agent) removalLoop(ctx context.Context) {
	done := map[string]bool{}
	for {
		ch := a.store.FSM.Changed()
		var removed []state.RemovedRec
		a.store.FSM.Read(func(reg *state.Registry) {
			for id, n := range reg.Removed {
				if !done[id] {
					removed = append(removed, *n)
				}
			}
		})
		for _, n := range removed {
			done[n.ID] = true
			if n.ID == a.id.ID {
				a.removedSelf(n)
				return
			}
			closed := a.creds.CloseConns(n.ID)
			if n.RPCAddr != "" {
				a.pool.Forget(n.RPCAddr)
			}
			a.log.Info("locked out a removed node", "node", n.Number, "name", n.Name, "connections_closed", closed)
		}
		select {
		case <-ctx.Done():
			return
		case <-ch:
		}
	}
}

// removedSelf marks the state directory and stops the agent.
func (a *Agent) removedSelf(n state.RemovedRec) {
	msg := fmt.Sprintf("node %d (%s) was removed from the cluster at %s; to join again, empty %s and join with a new token\n",
		n.Number, n.Name, n.Time.UTC().Format("2006-01-02 15:04:05Z"), a.cfg.StateDir)
	if err := statedir.WriteFile(a.cfg.StateDir, RemovedFile, []byte(msg), 0o600); err != nil {
		a.log.Error("could not mark the state directory as removed", "err", err)
	}
	a.log.Error("this node was removed from the cluster; stopping", "number", n.Number)
	a.leaveOnce.Do(func() { close(a.leaveCh) })
}

// checkNotRemoved refuses to start on a state directory whose node was
// removed.
func checkNotRemoved(dir string) error {
	b, err := os.ReadFile(filepath.Join(dir, RemovedFile))
	if err != nil {
		return nil
	}
	return errors.New(strings.TrimSpace(string(b)))
}
