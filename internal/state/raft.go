package state

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
)

// Config says how to open the replicated store.
type Config struct {
	Dir       string // raft/ under the agent's state directory
	ID        string // this node's ID (raft server ID)
	Layer     raft.StreamLayer
	Heartbeat time.Duration // heartbeat and election timeout
	LogOutput io.Writer     // raft's own log lines
	LogLevel  string        // debug, info, warn, error
	LogJSON   bool          // raft's lines as JSON objects, as the agent's own
}

// Store is the local replica: raft plus the FSM.
type Store struct {
	Raft *raft.Raft
	FSM  *FSM
	logs *raftboltdb.BoltStore
	tr   *quietTransport
	log  hclog.Logger

	nudge      chan struct{} // a Barrier is wanted (timing.go)
	stop, done chan struct{} // watchLeadership's
	stopOnce   sync.Once

	mu            sync.Mutex
	leaderChanged chan struct{} // closed and replaced at each leadership change
	leaderSeen    chan struct{} // closed and replaced when any node's leadership is observed
}

// ErrNotLeader is returned by Apply on a follower.
var ErrNotLeader = errors.New("not the leader")

// Open opens (or creates) the raft log and snapshots in c.Dir and starts
// raft. It does not bootstrap.
func Open(c Config) (*Store, error) {
	if err := os.MkdirAll(c.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("raft directory: %w", err)
	}
	hl := hclog.New(&hclog.LoggerOptions{Name: "raft", Output: c.LogOutput, Level: hclog.LevelFromString(c.LogLevel),
		JSONFormat: c.LogJSON, Exclude: newRaftLogFilter().exclude})
	logs, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(c.Dir, "raft.db"),
		BoltOptions: nil, NoSync: false})
	if err != nil {
		return nil, fmt.Errorf("raft log %s: %w", filepath.Join(c.Dir, "raft.db"), err)
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(c.Dir, 2, hl)
	if err != nil {
		logs.Close()
		return nil, fmt.Errorf("raft snapshots: %w", err)
	}
	tr := newQuietTransport(raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream: c.Layer, MaxPool: 3, Timeout: 2 * time.Second, Logger: hl,
	}), NonVoterHeartbeat)
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(c.ID)
	rc.Logger = hl
	rc.HeartbeatTimeout = c.Heartbeat
	rc.ElectionTimeout = c.Heartbeat
	rc.LeaderLeaseTimeout = c.Heartbeat
	rc.CommitTimeout = commitTimeout // see timing.go
	rc.SnapshotThreshold = 1024
	rc.TrailingLogs = 2048
	fsm := NewFSM()
	r, err := raft.NewRaft(rc, fsm, logs, logs, snaps, tr)
	if err != nil {
		tr.Close()
		logs.Close()
		return nil, fmt.Errorf("raft: %w", err)
	}
	tr.setSuffrage(nonVoterIn(r))
	s := &Store{Raft: r, FSM: fsm, logs: logs, tr: tr, log: hl, nudge: make(chan struct{}, 1),
		stop: make(chan struct{}), done: make(chan struct{}), leaderChanged: make(chan struct{}),
		leaderSeen: make(chan struct{})}
	go s.watchLeadership(c.Heartbeat)
	s.watchLeader()
	go s.nudgeLoop()
	return s, nil
}

// HasState reports whether a raft state exists in dir already.
func HasState(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "raft.db"))
	return err == nil
}

// Bootstrap makes this node the single voter of a new cluster.
func (s *Store) Bootstrap(id, addr string) error {
	f := s.Raft.BootstrapCluster(raft.Configuration{Servers: []raft.Server{{
		Suffrage: raft.Voter, ID: raft.ServerID(id), Address: raft.ServerAddress(addr)}}})
	if err := f.Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
		return err
	}
	return nil
}

// Apply proposes a command on the leader and waits for it to be applied
// here. It returns the command's Result (whose Err may be set) or a raft
// error such as ErrNotLeader.
func (s *Store) Apply(ctx context.Context, c *Command) (*Result, error) {
	if s.Raft.State() != raft.Leader {
		return nil, ErrNotLeader
	}
	b, err := c.Encode()
	if err != nil {
		return nil, err
	}
	return s.ApplyRaw(ctx, b)
}

// ApplyRaw proposes an encoded command (forwarded from another node).
func (s *Store) ApplyRaw(ctx context.Context, b []byte) (*Result, error) {
	if _, err := DecodeCommand(b); err != nil {
		return nil, err
	}
	timeout := 5 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	f := s.Raft.Apply(b, timeout)
	if err := f.Error(); err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
			return nil, ErrNotLeader
		}
		return nil, err
	}
	s.Nudged()
	res, _ := f.Response().(*Result)
	if res == nil {
		res = &Result{}
	}
	return res, nil
}

// Close shuts raft down and closes the stores.
func (s *Store) Close() error {
	s.stopOnce.Do(func() { close(s.stop) })
	<-s.done
	err := s.Raft.Shutdown().Error()
	s.tr.Close()
	if cerr := s.logs.Close(); err == nil {
		err = cerr
	}
	return err
}
