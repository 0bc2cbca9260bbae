package agent

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ssi-cluster/ssi/internal/api"
	"github.com/ssi-cluster/ssi/internal/state"
	"github.com/ssi-cluster/ssi/internal/statedir"
)

// RemovedFile marks a state directory whose node was removed from the
// cluster (`ssi node remove`): the agent will not start on it again.
const RemovedFile = "removed"

// removalLoop acts on nodes removed from the cluster as soon as the
// removal is applied here (and lets connections to a node that came back
// try again at once): their certificate is already refused at every
// new handshake (Creds.SetRevoked reads the registry); this closes the
// connections they hold to this node and drops this node's connections to
// them. When this very node is the one removed, it stops for good.
func (a *Agent) removalLoop(ctx context.Context) {
	done := map[string]bool{}
	upSince := map[string]uint64{} // node ID -> epoch it was last seen up at
	for {
		ch := a.store.FSM.Changed()
		var removed []state.RemovedRec
		var back []string
		a.store.FSM.Read(func(reg *state.Registry) {
			for id, n := range reg.Removed {
				if !done[id] {
					removed = append(removed, *n)
				}
			}
			// A node up at a new epoch (joined or back): connections to it
			// try again at once, not after their reconnect backoff.
			for _, n := range reg.Nodes {
				if n.State == api.StateUp && upSince[n.ID] != n.Epoch {
					if _, seen := upSince[n.ID]; seen {
						back = append(back, n.RPCAddr())
					}
					upSince[n.ID] = n.Epoch
				}
			}
		})
		for _, addr := range back {
			a.pool.ResetBackoff(addr)
		}
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

// Gossip key rotation: a removed node keeps the gossip key it was given,
// so after a removal the master commits a new one (reconcile), and every
// agent, as it applies it, accepts it at once, sends with it after
// keyUseDelay (by then every node accepts it) and forgets the old one
// after keyDropDelay. A node that was away catches up through raft, which
// does not depend on gossip.
const (
	keyUseDelay  = 2 * time.Second
	keyDropDelay = 20 * time.Second
)

func (a *Agent) gossipKeyLoop(ctx context.Context) {
	var current string
	for {
		ch := a.store.FSM.Changed()
		var want string
		a.store.FSM.Read(func(reg *state.Registry) { want = reg.GossipKey })
		if want != "" && want != current {
			current = want
			if err := a.rotateGossipKey(ctx, want); err != nil {
				a.log.Error("installing the new gossip key failed", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-ch:
		}
	}
}

func (a *Agent) rotateGossipKey(ctx context.Context, hexKey string) error {
	key, err := hex.DecodeString(hexKey)
	if err != nil || len(key) != 32 {
		return fmt.Errorf("the registry's gossip key is not 64 hex digits")
	}
	if bytes.Equal(a.gossip.PrimaryKey(), key) {
		return nil
	}
	if err := a.gossip.AddKey(key); err != nil {
		return err
	}
	a.log.Info("a new gossip key was committed; switching to it", "in", keyUseDelay)
	go func() {
		select {
		case <-ctx.Done():
			return
		case <-time.After(keyUseDelay):
		}
		if err := a.gossip.UseKey(key); err != nil {
			a.log.Error("using the new gossip key", "err", err)
			return
		}
		a.mu.Lock()
		b := *a.bundle
		b.GossipKey = key
		err := b.Save(a.cfg.StateDir)
		if err == nil {
			a.bundle.GossipKey = key
		}
		a.mu.Unlock()
		if err != nil {
			a.log.Error("saving the new gossip key", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(keyDropDelay - keyUseDelay):
		}
		a.gossip.DropKeysBut(key)
		a.log.Info("the old gossip key is forgotten")
	}()
	return nil
}
