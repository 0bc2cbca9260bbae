package membership

import (
	"bytes"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/ssi-cluster/ssi/internal/load"
)

// Config says how to start gossip.
type Config struct {
	ID            string // memberlist node name: the node's unique ID
	Bind          string // IP to bind
	Advertise     string // IP others reach us at
	Port          int
	SecretKey     []byte // 32-byte gossip key
	Meta          Meta
	ProbeInterval time.Duration
	ProbeTimeout  time.Duration
	SuspicionMult int
	Gossip        time.Duration
	Log           *slog.Logger
	LogOutput     io.Writer // memberlist's own debug lines; nil discards
}

// Status is a member's gossip state.
type Status string

// Statuses as memberlist sees them.
const (
	Alive   Status = "alive"
	Suspect Status = "suspect"
	Dead    Status = "dead"
	Left    Status = "left"
)

// Member is one node as gossip knows it.
type Member struct {
	ID      string
	Addr    string // IP
	Port    int
	Meta    Meta
	Status  Status
	Changed time.Time // when Status last changed here
}

// GossipAddr is ip:port.
func (m Member) GossipAddr() string { return net.JoinHostPort(m.Addr, strconv.Itoa(m.Port)) }

type loadEntry struct {
	v    load.Vector
	seen time.Time
}

// Membership is a running gossip member.
type Membership struct {
	ml   atomic.Pointer[memberlist.Memberlist] // set once Create returns
	keys *memberlist.Keyring
	q    *memberlist.TransmitLimitedQueue
	id   string
	log  *slog.Logger
	meta Meta

	mu      sync.Mutex
	members map[string]*Member
	loads   map[string]loadEntry
	changed chan struct{} // closed and replaced on every member change
}

// Start starts gossip on the configured address. It does not join anyone.
func Start(c Config) (*Membership, error) {
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	m := &Membership{id: c.ID, log: c.Log, meta: c.Meta,
		members: map[string]*Member{}, loads: map[string]loadEntry{}, changed: make(chan struct{})}
	mc := memberlist.DefaultLANConfig()
	mc.Name = c.ID
	mc.BindAddr = c.Bind
	mc.BindPort = c.Port
	mc.AdvertiseAddr = c.Advertise
	mc.AdvertisePort = c.Port
	kr, err := memberlist.NewKeyring(nil, c.SecretKey)
	if err != nil {
		return nil, fmt.Errorf("gossip key: %w", err)
	}
	mc.Keyring, m.keys = kr, kr
	mc.GossipVerifyIncoming = true
	mc.GossipVerifyOutgoing = true
	mc.ProbeInterval = c.ProbeInterval
	mc.ProbeTimeout = c.ProbeTimeout
	mc.SuspicionMult = c.SuspicionMult
	mc.SuspicionMaxTimeoutMult = 3
	mc.GossipInterval = c.Gossip
	mc.GossipNodes = 4
	mc.IndirectChecks = 3
	mc.RetransmitMult = 4
	mc.PushPullInterval = 10 * time.Second
	mc.TCPTimeout = 2 * time.Second
	mc.GossipToTheDeadTime = 10 * time.Second
	mc.DeadNodeReclaimTime = 1 * time.Second
	// Compression costs more CPU than it saves bandwidth on a LAN.
	mc.EnableCompression = false
	out := c.LogOutput
	if out == nil {
		out = io.Discard
	}
	mc.Logger = log.New(out, "memberlist: ", log.LstdFlags|log.Lmicroseconds)
	mc.Delegate = (*delegate)(m)
	mc.Events = (*events)(m)
	// The queue must exist before memberlist starts listening: a ping that
	// arrives at once asks the delegate for broadcasts.
	m.q = &memberlist.TransmitLimitedQueue{NumNodes: m.numMembers, RetransmitMult: 3}
	ml, err := memberlist.Create(mc)
	if err != nil {
		return nil, fmt.Errorf("gossip on %s:%d: %w", c.Bind, c.Port, err)
	}
	m.ml.Store(ml)
	return m, nil
}

func (m *Membership) numMembers() int {
	if ml := m.ml.Load(); ml != nil {
		return ml.NumMembers()
	}
	return 1
}

// Join contacts the given gossip addresses (ip or ip:port); it succeeds if
// at least one answered.
func (m *Membership) Join(addrs []string) (int, error) {
	return m.ml.Load().Join(addrs)
}

// Members returns every member known, including dead and left ones.
func (m *Membership) Members() []Member {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Member, 0, len(m.members))
	for _, mb := range m.members {
		out = append(out, *mb)
	}
	return out
}

// Changed returns a channel closed at the next member change.
func (m *Membership) Changed() <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.changed
}

// NumAlive is memberlist's count of live members (self included).
func (m *Membership) NumAlive() int { return m.ml.Load().NumMembers() }

// Health is Lifeguard's local health score (0 is healthy).
func (m *Membership) Health() int { return m.ml.Load().GetHealthScore() }

// SetMeta changes what this node says of itself and gossips it.
func (m *Membership) SetMeta(meta Meta) error {
	m.mu.Lock()
	m.meta = meta
	m.mu.Unlock()
	return m.ml.Load().UpdateNode(2 * time.Second)
}

// PublishLoad records this node's vector and queues it for gossip.
func (m *Membership) PublishLoad(v load.Vector) error {
	msg, err := encodeLoad(m.id, v)
	if err != nil {
		return err
	}
	m.RecordLoad(v)
	m.q.QueueBroadcast(&loadBroadcast{id: m.id, msg: msg})
	return nil
}

// RecordLoad records this node's vector without gossiping it.
func (m *Membership) RecordLoad(v load.Vector) {
	m.mu.Lock()
	m.loads[m.id] = loadEntry{v: v, seen: time.Now()}
	m.mu.Unlock()
}

// Load returns the newest vector known for a node and when it was received.
func (m *Membership) Load(id string) (load.Vector, time.Time, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.loads[id]
	return e.v, e.seen, ok
}

// Leave announces a graceful leave and stops gossip.
func (m *Membership) Leave(timeout time.Duration) error {
	err := m.ml.Load().Leave(timeout)
	if serr := m.ml.Load().Shutdown(); err == nil {
		err = serr
	}
	return err
}

// Shutdown stops gossip without a leave message (others will see us die).
func (m *Membership) Shutdown() error { return m.ml.Load().Shutdown() }

func (m *Membership) notifyLocked() {
	close(m.changed)
	m.changed = make(chan struct{})
}

// set records a member's new status.
func (m *Membership) set(n *memberlist.Node, st Status) {
	meta, err := DecodeMeta(n.Meta)
	if err != nil {
		m.log.Warn("ignoring a member with bad meta", "id", n.Name, "addr", n.Addr.String(), "err", err)
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	old := m.members[n.Name]
	mb := &Member{ID: n.Name, Addr: n.Addr.String(), Port: int(n.Port), Meta: meta, Status: st, Changed: time.Now()}
	if old != nil && old.Status == st {
		mb.Changed = old.Changed
	}
	m.members[n.Name] = mb
	if st == Dead || st == Left {
		delete(m.loads, n.Name)
	}
	m.notifyLocked()
}

// delegate implements memberlist.Delegate.
type delegate Membership

func (d *delegate) NodeMeta(limit int) []byte {
	d.mu.Lock()
	meta := d.meta
	d.mu.Unlock()
	b, err := meta.Encode()
	if err != nil || len(b) > limit {
		d.log.Error("node meta does not fit", "err", err)
		return nil
	}
	return b
}

func (d *delegate) NotifyMsg(b []byte) {
	id, v, err := decodeLoad(b)
	if err != nil {
		d.log.Debug("dropping a bad gossip message", "err", err)
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if mb := d.members[id]; mb == nil || mb.Status == Dead || mb.Status == Left {
		return // a late vector of a node that is gone
	}
	if old, ok := d.loads[id]; ok && old.v.Stamp >= v.Stamp {
		return
	}
	d.loads[id] = loadEntry{v: v, seen: time.Now()}
}

func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte {
	return d.q.GetBroadcasts(overhead, limit)
}

func (d *delegate) LocalState(join bool) []byte            { return nil }
func (d *delegate) MergeRemoteState(buf []byte, join bool) {}

// events implements memberlist.EventDelegate.
type events Membership

func (e *events) NotifyJoin(n *memberlist.Node)   { (*Membership)(e).set(n, Alive) }
func (e *events) NotifyUpdate(n *memberlist.Node) { (*Membership)(e).set(n, Alive) }
func (e *events) NotifyLeave(n *memberlist.Node) {
	st := Dead
	if n.State == memberlist.StateLeft {
		st = Left
	}
	(*Membership)(e).set(n, st)
}

// Key rotation, in three steps so that no node drops the others' gossip:
// every node first accepts the new key (AddKey), then, once all have it,
// sends with it (UseKey), and at last forgets the others (DropKeysBut).

// AddKey makes gossip encrypted with key readable here.
func (m *Membership) AddKey(key []byte) error { return m.keys.AddKey(key) }

// UseKey makes this node encrypt its gossip with key (added before).
func (m *Membership) UseKey(key []byte) error { return m.keys.UseKey(key) }

// DropKeysBut forgets every key but key, so gossip encrypted with any
// other (a removed node's) is dropped.
func (m *Membership) DropKeysBut(key []byte) {
	for _, k := range m.keys.GetKeys() {
		if !bytes.Equal(k, key) {
			m.keys.RemoveKey(k)
		}
	}
}

// PrimaryKey returns the key gossip is encrypted with now.
func (m *Membership) PrimaryKey() []byte { return m.keys.GetPrimaryKey() }
