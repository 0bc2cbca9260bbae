package state

import (
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/ssi-cluster/ssi/internal/api"
)

// StateJoining is a registered node that has not yet been seen alive.
const StateJoining = "joining"

// StaleJoin is how long a registered node may stay joining before its name
// can be taken by another registration.
const StaleJoin = time.Minute

// MaxTransitions is how many recent transitions the registry keeps.
const MaxTransitions = 4096

// NodeRec is one node of the registry.
type NodeRec struct {
	Number      int       `json:"number"`
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Addr        string    `json:"addr"`
	GossipPort  int       `json:"gossip_port"`
	RPCPort     int       `json:"rpc_port"`
	RaftPort    int       `json:"raft_port"`
	State       string    `json:"state"`
	Incarnation uint64    `json:"incarnation"`
	Since       time.Time `json:"since"`
	Epoch       uint64    `json:"epoch"`
	// Voter: the node may vote in raft and holds the CA key (made by
	// `ssi init`, or admitted with a voter token).
	Voter bool `json:"voter,omitempty"`
	// KeyHash binds the node ID to its key (pki.KeyHash): a join under a
	// registered ID, and a renewal, must come with the same key.
	KeyHash string `json:"key_hash,omitempty"`
}

// RPCAddr is the node's gRPC address.
func (n *NodeRec) RPCAddr() string { return fmt.Sprintf("%s:%d", n.Addr, n.RPCPort) }

// RaftAddr is the node's raft address.
func (n *NodeRec) RaftAddr() string { return fmt.Sprintf("%s:%d", n.Addr, n.RaftPort) }

// GossipAddr is the node's gossip address.
func (n *NodeRec) GossipAddr() string { return fmt.Sprintf("%s:%d", n.Addr, n.GossipPort) }

// Registry is the replicated state.
type Registry struct {
	Cluster     string                 `json:"cluster"`
	NextNumber  int                    `json:"next_number"`
	Epoch       uint64                 `json:"epoch"`
	Nodes       map[int]*NodeRec       `json:"nodes"`
	Transitions []api.Transition       `json:"transitions"`
	Tokens      map[string]*TokenRec   `json:"tokens,omitempty"`  // by ID
	Removed     map[string]*RemovedRec `json:"removed,omitempty"` // by node ID
	// GossipKey is the gossip encryption key (hex) once the master has
	// rotated it; "" while the one made at `ssi init` is in use. A removal
	// (at epoch LastRemoval) makes the master rotate it (KeyedAt: the
	// epoch it was rotated at), so a removed node's copy stops working.
	GossipKey   string `json:"gossip_key,omitempty"`
	KeyedAt     uint64 `json:"keyed_at,omitempty"`
	LastRemoval uint64 `json:"last_removal,omitempty"`
	// Migrations are the agreed outcomes of recent migrations, by ID.
	Migrations map[uint64]*MigrationRec `json:"migrations,omitempty"`
	byID       map[string]*NodeRec      // derived
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{NextNumber: 1, Nodes: map[int]*NodeRec{}, byID: map[string]*NodeRec{},
		Tokens: map[string]*TokenRec{}, Removed: map[string]*RemovedRec{}}
}

// Errors returned by Apply. Compare with errors.Is.
var (
	ErrDuplicateName = errors.New("node name already in use")
	ErrUnknownNode   = errors.New("no such node")
	ErrBadTransition = errors.New("transition does not apply")
	ErrBadCommand    = errors.New("malformed command")
)

// ByID returns the node with the given ID, or nil.
func (r *Registry) ByID(id string) *NodeRec { return r.byID[id] }

// Sorted returns the nodes by number.
func (r *Registry) Sorted() []*NodeRec {
	out := make([]*NodeRec, 0, len(r.Nodes))
	for _, n := range r.Nodes {
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Number < out[j].Number })
	return out
}

// reindex rebuilds the derived index after a restore.
func (r *Registry) reindex() error {
	r.byID = map[string]*NodeRec{}
	if r.Nodes == nil {
		r.Nodes = map[int]*NodeRec{}
	}
	if r.Tokens == nil {
		r.Tokens = map[string]*TokenRec{}
	}
	if r.Removed == nil {
		r.Removed = map[string]*RemovedRec{}
	}
	for id, t := range r.Tokens {
		if t == nil || t.ID != id || len(t.Hash) != 64 || t.Hash[:12] != id {
			return fmt.Errorf("%w: inconsistent token %q", ErrBadCommand, id)
		}
	}
	for id, n := range r.Removed {
		if n == nil || n.ID != id {
			return fmt.Errorf("%w: inconsistent removed node %q", ErrBadCommand, id)
		}
	}
	for id, m := range r.Migrations {
		if m == nil || m.ID != id {
			return fmt.Errorf("%w: inconsistent migration %x", ErrBadCommand, id)
		}
	}
	for num, n := range r.Nodes {
		if n == nil || n.Number != num || num <= 0 || num >= r.NextNumber || n.ID == "" {
			return fmt.Errorf("%w: inconsistent node %d", ErrBadCommand, num)
		}
		if _, dup := r.byID[n.ID]; dup {
			return fmt.Errorf("%w: node id %s twice", ErrBadCommand, n.ID)
		}
		r.byID[n.ID] = n
	}
	return nil
}

// Clone returns a deep copy (for snapshots and readers).
func (r *Registry) Clone() *Registry {
	c := &Registry{Cluster: r.Cluster, NextNumber: r.NextNumber, Epoch: r.Epoch,
		GossipKey: r.GossipKey, KeyedAt: r.KeyedAt, LastRemoval: r.LastRemoval,
		Nodes: make(map[int]*NodeRec, len(r.Nodes)), byID: make(map[string]*NodeRec, len(r.Nodes))}
	for k, n := range r.Nodes {
		cp := *n
		c.Nodes[k] = &cp
		c.byID[cp.ID] = &cp
	}
	c.Transitions = append([]api.Transition(nil), r.Transitions...)
	c.Tokens = make(map[string]*TokenRec, len(r.Tokens))
	for k, t := range r.Tokens {
		cp := *t
		c.Tokens[k] = &cp
	}
	if r.Migrations != nil {
		c.Migrations = make(map[uint64]*MigrationRec, len(r.Migrations))
		for k, m := range r.Migrations {
			cp := *m
			c.Migrations[k] = &cp
		}
	}
	c.Removed = make(map[string]*RemovedRec, len(r.Removed))
	for k, n := range r.Removed {
		cp := *n
		c.Removed[k] = &cp
	}
	return c
}

// Apply applies one command and returns its result. It never panics on bad
// input: a malformed or inapplicable command returns an error and leaves the
// registry unchanged.
func (r *Registry) Apply(c *Command) (any, error) {
	switch c.Op {
	case OpInit:
		if c.Cluster == "" {
			return nil, fmt.Errorf("%w: empty cluster name", ErrBadCommand)
		}
		if r.Cluster != "" && r.Cluster != c.Cluster {
			return nil, fmt.Errorf("%w: cluster already named %q", ErrBadCommand, r.Cluster)
		}
		r.Cluster = c.Cluster
		if c.Token != nil {
			// The first join token, made by `ssi init`.
			return r.createToken(c)
		}
		return nil, nil
	case OpRegister:
		return r.register(c)
	case OpTransition:
		return r.transition(c)
	case OpTokenCreate:
		return r.createToken(c)
	case OpTokenRevoke:
		return r.revokeToken(c)
	case OpRemove:
		return r.remove(c)
	case OpMigration:
		return r.decideMigration(c)
	case OpGossipKey:
		if b, err := hex.DecodeString(c.GossipKey); err != nil || len(b) != 32 {
			return nil, fmt.Errorf("%w: gossip key must be 64 hex digits", ErrBadCommand)
		}
		r.GossipKey, r.KeyedAt = c.GossipKey, r.Epoch
		return nil, nil
	}
	return nil, fmt.Errorf("%w: unknown op %q", ErrBadCommand, c.Op)
}

func (r *Registry) register(c *Command) (any, error) {
	n := c.Node
	if n == nil || n.ID == "" || n.Name == "" || n.Addr == "" {
		return nil, fmt.Errorf("%w: register needs id, name and address", ErrBadCommand)
	}
	if r.IsRemoved(n.ID) {
		return nil, fmt.Errorf("%w: node %s was removed; join again as a new node", ErrRemoved, n.ID)
	}
	var stale *NodeRec
	for _, other := range r.Nodes {
		if other.Name == n.Name && other.ID != n.ID && other.State != api.StateLeft {
			// A node that registered but never came up (its joiner died
			// before saving its identity) gives its name up after a while.
			if other.State == StateJoining && c.Time.Sub(other.Since) > StaleJoin {
				stale = other
				continue
			}
			return nil, fmt.Errorf("%w: %q is node %d (state %s)", ErrDuplicateName, n.Name, other.Number, other.State)
		}
	}
	// A join under a registered ID is that node coming back (its
	// certificate expired while it was away): it must hold the same key.
	if old := r.byID[n.ID]; old != nil && c.TokenHash != "" && (old.KeyHash == "" || old.KeyHash != n.KeyHash) {
		return nil, fmt.Errorf("%w: node ID %s is node %d; only the holder of its key may join again under it", ErrDuplicateName, n.ID, old.Number)
	}
	// Every check that can refuse comes before the token's use is counted.
	voter := n.Voter
	if c.TokenHash != "" {
		tok, err := r.useToken(c.TokenHash, c.Time)
		if err != nil {
			return nil, err
		}
		voter = tok.Voter
	}
	if stale != nil {
		if _, err := r.transition(&Command{Op: OpTransition, Time: c.Time, Number: stale.Number,
			Kind: api.KindLeave, Reason: "never came up; name taken by a new registration"}); err != nil {
			return nil, err
		}
	}
	if old := r.byID[n.ID]; old != nil {
		// A known node registering again (a re-join): refresh its addresses.
		old.Name, old.Addr = n.Name, n.Addr
		old.GossipPort, old.RPCPort, old.RaftPort = n.GossipPort, n.RPCPort, n.RaftPort
		old.Voter = old.Voter || voter
		if old.KeyHash == "" {
			old.KeyHash = n.KeyHash
		}
		return old.Number, nil
	}
	rec := &NodeRec{
		Number: r.NextNumber, ID: n.ID, Name: n.Name, Addr: n.Addr,
		GossipPort: n.GossipPort, RPCPort: n.RPCPort, RaftPort: n.RaftPort,
		State: StateJoining, Incarnation: n.Incarnation, Since: c.Time, Voter: voter, KeyHash: n.KeyHash,
	}
	r.NextNumber++
	r.Nodes[rec.Number] = rec
	r.byID[rec.ID] = rec
	return rec.Number, nil
}

// allowed[kind] lists the states a transition of that kind may start from.
var allowed = map[string][]string{
	api.KindJoin:   {StateJoining},
	api.KindDown:   {api.StateUp},
	api.KindReturn: {api.StateDown, api.StateLeft},
	api.KindLeave:  {api.StateUp, api.StateDown, StateJoining},
}

var target = map[string]string{
	api.KindJoin:   api.StateUp,
	api.KindDown:   api.StateDown,
	api.KindReturn: api.StateUp,
	api.KindLeave:  api.StateLeft,
}

func (r *Registry) transition(c *Command) (any, error) {
	n := r.Nodes[c.Number]
	if n == nil {
		return nil, fmt.Errorf("%w: %d", ErrUnknownNode, c.Number)
	}
	from, ok := allowed[c.Kind]
	if !ok {
		return nil, fmt.Errorf("%w: unknown kind %q", ErrBadCommand, c.Kind)
	}
	okFrom := false
	for _, s := range from {
		okFrom = okFrom || n.State == s
	}
	if !okFrom {
		return nil, fmt.Errorf("%w: %s of node %d which is %s", ErrBadTransition, c.Kind, n.Number, n.State)
	}
	r.Epoch++
	n.State = target[c.Kind]
	n.Since = c.Time
	n.Epoch = r.Epoch
	if c.Incarnation > n.Incarnation {
		n.Incarnation = c.Incarnation
	}
	t := api.Transition{Epoch: r.Epoch, Kind: c.Kind, Node: n.Number, Name: n.Name,
		Incarnation: n.Incarnation, Time: c.Time, Reason: c.Reason}
	r.appendTransition(t)
	return t, nil
}

// appendTransition records t, keeping the last MaxTransitions.
func (r *Registry) appendTransition(t api.Transition) {
	r.Transitions = append(r.Transitions, t)
	if len(r.Transitions) > MaxTransitions {
		r.Transitions = append([]api.Transition(nil), r.Transitions[len(r.Transitions)-MaxTransitions:]...)
	}
}

// TransitionsAfter returns the kept transitions with epoch > after.
func (r *Registry) TransitionsAfter(after uint64) []api.Transition {
	i := sort.Search(len(r.Transitions), func(i int) bool { return r.Transitions[i].Epoch > after })
	return append([]api.Transition(nil), r.Transitions[i:]...)
}
