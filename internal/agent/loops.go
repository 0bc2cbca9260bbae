package agent

import (
	"context"
	"encoding/hex"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/ssi-cluster/ssi/internal/api"
	"github.com/ssi-cluster/ssi/internal/load"
	"github.com/ssi-cluster/ssi/internal/membership"
	"github.com/ssi-cluster/ssi/internal/pki"
	"github.com/ssi-cluster/ssi/internal/state"
)

// loadLoop samples this node's load vector every second and gossips it
// when it changed (load.Significant), or every load.Republish seconds.
func (a *Agent) loadLoop(ctx context.Context) {
	// Calibrate here, not at start-up, so that joining and agreement are
	// not delayed by it.
	speed := a.cfg.Speed
	if speed == 0 {
		var kept bool
		var err error
		speed, kept, err = load.SpeedIn(a.cfg.StateDir, time.Now())
		if err != nil {
			a.log.Warn("keeping the measured speed in the state directory", "err", err)
		}
		if kept {
			a.log.Info("relative speed as measured before", "speed", speed, "file", filepath.Join(a.cfg.StateDir, load.SpeedFile))
		} else {
			a.log.Info("measured relative speed", "speed", speed)
		}
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var last load.Vector
	unsent := 0 // samples since the last one gossiped
	for {
		v, err := a.sampler.Sample(time.Now())
		v.Speed = speed
		if err != nil {
			a.log.Warn("sampling load", "err", err)
		} else {
			a.metrics.observeLoad(v)
			a.gossip.RecordLoad(v)
			if unsent++; unsent >= load.Republish || last.Stamp == 0 || load.Significant(last, v) {
				if err := a.gossip.PublishLoad(v); err != nil {
					a.log.Warn("gossiping load", "err", err)
				} else {
					last, unsent = v, 0
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// joinLoop keeps gossip connected: at start it contacts every known peer,
// later it retries registry members that gossip does not see (after a
// partition heals, memberlist alone would not reconnect).
func (a *Agent) joinLoop(ctx context.Context) {
	hosts, _ := a.joinHosts()
	for first := true; ; first = false {
		targets := a.joinTargets(hosts, first)
		if len(targets) > 0 {
			n, err := a.gossip.Join(targets)
			if err != nil && n == 0 {
				a.log.Debug("gossip join", "targets", targets, "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

func (a *Agent) joinTargets(hosts []string, all bool) []string {
	alive := map[string]bool{}
	for _, m := range a.gossip.Members() {
		if m.Status == membership.Alive {
			alive[m.GossipAddr()] = true
		}
	}
	var out []string
	add := func(addr string) {
		if !alive[addr] && !slices.Contains(out, addr) {
			out = append(out, addr)
		}
	}
	a.store.FSM.Read(func(reg *state.Registry) {
		for _, n := range reg.Sorted() {
			if n.ID != a.id.ID && n.State != api.StateLeft {
				add(n.GossipAddr())
			}
		}
	})
	if all || len(alive) <= 1 {
		for _, p := range loadPeers(a.cfg.StateDir) {
			add(p)
		}
		for _, h := range hosts {
			add(withPort(hostOf(h), a.cfg.GossipPort))
		}
	}
	self := withPort(a.advertise, a.cfg.GossipPort)
	return slices.DeleteFunc(out, func(s string) bool { return s == self })
}

// selfLoop follows this node's own registry entry: its number, and the
// peers file used to rejoin after a restart.
func (a *Agent) selfLoop(ctx context.Context) {
	var lastPeers []string
	for {
		ch := a.store.FSM.Changed()
		var num int
		a.store.FSM.Read(func(reg *state.Registry) {
			if n := reg.ByID(a.id.ID); n != nil {
				num = n.Number
			}
		})
		a.mu.Lock()
		changed := num != 0 && num != a.id.Number
		if changed {
			a.id.Number = num
			if err := a.id.Save(a.cfg.StateDir); err != nil {
				a.log.Error("saving node number", "err", err)
			}
		}
		meta := a.meta()
		a.mu.Unlock()
		if changed {
			a.log.Info("node number assigned", "number", num)
			if err := a.gossip.SetMeta(meta); err != nil {
				a.log.Warn("gossiping meta", "err", err)
			}
		}
		if peers := a.peerAddrs(); len(peers) > 0 && !slices.Equal(peers, lastPeers) {
			if err := savePeers(a.cfg.StateDir, peers); err != nil {
				a.log.Warn("saving peers", "err", err)
			} else {
				lastPeers = peers
			}
		}
		a.metrics.observeRegistry(a.registry(), a.isLeader())
		select {
		case <-ctx.Done():
			return
		case <-ch:
		case <-time.After(2 * time.Second):
		}
	}
}

// leaderIdle is how often the master reconciles when nothing changes (its
// time-based rules: a new master's grace, voter replacement); gossip and
// registry changes wake it at once. Other nodes wake only when they gain
// the leadership.
const leaderIdle = time.Second

// leaderLoop runs the reconciler while this node is the raft leader.
func (a *Agent) leaderLoop(ctx context.Context) {
	var since time.Time
	for {
		gch, fch, lch, pch := a.gossip.Changed(), a.store.FSM.Changed(), a.store.LeaderChanged(), a.presence.Changed()
		var idle <-chan time.Time
		if a.isLeader() {
			idle = time.After(leaderIdle)
			if since.IsZero() {
				since = time.Now()
				// Make sure every committed entry is applied before acting.
				if err := a.store.Raft.Barrier(5 * time.Second).Error(); err != nil {
					a.log.Warn("leader barrier", "err", err)
					since = time.Time{}
				} else {
					a.log.Info("this node is the cluster master")
				}
			}
			if !since.IsZero() {
				a.reconcile(ctx, since)
			}
		} else {
			since = time.Time{}
			a.presence.forget()
		}
		select {
		case <-ctx.Done():
			return
		case <-pch:
		case <-gch:
		case <-fch:
		case <-lch:
		case <-idle:
		}
	}
}

func (a *Agent) reconcile(ctx context.Context, since time.Time) {
	reg := a.registry()
	if reg.Cluster == "" {
		a.leaderApply(ctx, &state.Command{Op: state.OpInit, Cluster: a.id.Cluster, Token: a.initToken()})
		return
	}
	if reg.ByID(a.id.ID) == nil {
		keyHash, _ := pki.CertKeyHash(a.nodeCertPEM())
		a.leaderApply(ctx, &state.Command{Op: state.OpRegister, Node: &state.NodeRec{ID: a.id.ID, Name: a.id.Name,
			Addr: a.advertise, GossipPort: a.cfg.GossipPort, RPCPort: a.cfg.RPCPort, RaftPort: a.cfg.RaftPort,
			Voter: a.bundle.HoldsCAKey(), KeyHash: keyHash}})
		return
	}
	members := map[string]membership.Member{}
	for _, m := range a.gossip.Members() {
		members[m.ID] = m
	}
	servers := map[string]Server{}
	if f := a.store.Raft.GetConfiguration(); f.Error() == nil {
		for _, s := range f.Configuration().Servers {
			servers[string(s.ID)] = Server{ID: string(s.ID), Voter: s.Suffrage == raft.Voter}
		}
	}
	removed := map[string]bool{}
	for id := range reg.Removed {
		removed[id] = true
	}
	v := view{Self: a.id.ID, Now: time.Now(), LeaderSince: since, Nodes: reg.Sorted(), Members: members,
		Servers: servers, Removed: removed, MaxVoters: a.cfg.MaxVoters, ReplaceAfter: time.Duration(a.cfg.VoterReplaceAfter),
		Grace: 3 * time.Second, Lost: a.presence.Lost()}
	v.Answers = a.healAnswers(ctx, healTargets(v), v.Now)
	switch {
	case !reg.KeyStale() || removedInRaft(servers, reg):
		a.keyOutSince = time.Time{}
	case a.keyOutSince.IsZero():
		a.keyOutSince = time.Now()
	case time.Since(a.keyOutSince) >= keyRotateWait:
		// A node was removed: it holds the gossip key; change it once the
		// removed node is out of raft, and raft has stopped replicating to
		// it (keyRotateWait), so the new key never reaches it.
		if key, err := pki.NewGossipKey(); err == nil {
			a.leaderApply(ctx, &state.Command{Op: state.OpGossipKey, GossipKey: hex.EncodeToString(key)})
		}
	}
	// Transitions first, together; then raft configuration changes, which
	// raft takes one at a time.
	acts := a.confirmDowns(ctx, plan(v), reg)
	var batch []*state.Command
	for _, act := range acts {
		if act.Raft == "" {
			a.log.Debug("master acts", "action", act.String())
			batch = append(batch, &state.Command{Op: state.OpTransition, Number: act.Number, Kind: act.Kind,
				Incarnation: act.Incarnation, Reason: act.Reason})
		}
	}
	a.leaderApplyAll(ctx, batch)
	// Raft applies configuration changes one at a time, but queueing them
	// all at once saves a round trip through this loop for each.
	var futures []raft.IndexFuture
	var whats []string
	for _, act := range acts {
		if ctx.Err() != nil || !a.isLeader() {
			break
		}
		var f raft.IndexFuture
		switch act.Raft {
		case "voter":
			f = a.store.Raft.AddVoter(raft.ServerID(act.ID), raft.ServerAddress(act.Addr), 0, 10*time.Second)
		case "nonvoter":
			f = a.store.Raft.AddNonvoter(raft.ServerID(act.ID), raft.ServerAddress(act.Addr), 0, 10*time.Second)
		case "remove":
			f = a.store.Raft.RemoveServer(raft.ServerID(act.ID), 0, 10*time.Second)
		default:
			continue
		}
		a.log.Debug("master acts", "action", act.String())
		futures, whats = append(futures, f), append(whats, act.String())
	}
	for i, f := range futures {
		a.raftChange(whats[i], f)
	}
	if len(futures) > 0 {
		// A promoted voter is heartbeated at raft's pace from now on
		// (state/quiet.go), and every node learns the change's commit.
		a.store.Nudged()
	}
}

// leaderApplyAll proposes the commands together, so raft pipelines them
// (one round trip for a batch of joins, not one each), and waits for all.
func (a *Agent) leaderApplyAll(ctx context.Context, cmds []*state.Command) {
	var wg sync.WaitGroup
	for _, c := range cmds {
		wg.Add(1)
		go func() { defer wg.Done(); a.leaderApply(ctx, c) }()
	}
	wg.Wait()
}

func (a *Agent) raftChange(what string, f raft.IndexFuture) {
	if err := f.Error(); err != nil {
		a.log.Warn("raft configuration change failed", "change", what, "err", err)
		return
	}
	a.log.Info("raft configuration changed", "change", what)
}

func (a *Agent) leaderApply(ctx context.Context, c *state.Command) {
	c.Time = time.Now().UTC()
	res, err := a.store.Apply(ctx, c)
	if err != nil {
		a.log.Warn("commit failed", "op", c.Op, "err", err)
		return
	}
	if err := res.Err(); err != nil {
		a.log.Debug("command not applied", "op", c.Op, "err", err)
		return
	}
	if c.Op == state.OpTransition {
		a.log.Info("transition committed", "kind", c.Kind, "node", c.Number, "reason", c.Reason)
	}
}

// removedInRaft reports whether a removed node is still a raft server.
// keyRotateWait is how long after a removed node left the raft
// configuration the master waits to commit the new gossip key. Raft
// replicates to a removed server up to its removal, but a pipelined
// AppendEntries already triggered reads the last index when it is sent,
// which can be an entry appended just after the removal (seen once in CI:
// the removed node's log held the new key).
const keyRotateWait = time.Second

func removedInRaft(servers map[string]Server, reg *state.Registry) bool {
	for id := range servers {
		if reg.IsRemoved(id) {
			return true
		}
	}
	return false
}
