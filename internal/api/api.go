// Package api holds the types the agent's local API speaks: the JSON bodies
// of the HTTP endpoints served on the agent's Unix socket and its localhost
// HTTP listener, and printed by `ssi ... -o json`. They are plain data with
// no behaviour, shared by the agent, the CLI client and the test harness.
//
// Endpoints (all under /v1, JSON):
//
//	GET  /v1/cluster          Cluster
//	GET  /v1/nodes            []Node
//	GET  /v1/nodes/{n|self}   Node
//	GET  /v1/transitions?after=E&wait=1   []Transition (long-poll when wait=1)
//	GET  /v1/self             Self
//	POST /v1/leave            (root only) makes this node leave the cluster
//	GET  /v1/procs?node=N&user=U  []Proc of every node (or one)
//	GET  /v1/procs/{cpid}     Proc: where a process runs
//	POST /v1/signal           SignalRequest: signal a process or group (owner or root)
//	GET  /v1/tokens           (root) []Token: the join tokens, never their secrets
//	POST /v1/tokens           (root, on a voter) TokenCreate -> TokenCreated
//	DELETE /v1/tokens/{id}    (root, on a voter) Token: revoked
//	POST /v1/nodes/{n}/remove (root, on a voter) Transition: node n removed for good
//	GET  /v1/removed          []Removed
//
// Errors are returned as an Error body with a non-2xx status.
package api

import "time"

// Node states as committed in the replicated registry.
const (
	StateUp   = "up"
	StateDown = "down"
	StateLeft = "left"
)

// Transition kinds: every membership change is one numbered epoch.
const (
	KindJoin   = "join"
	KindLeave  = "leave"
	KindDown   = "down"
	KindReturn = "return"
)

// Cluster answers `ssi cluster name`.
type Cluster struct {
	Name   string `json:"name"`
	Epoch  uint64 `json:"epoch"`
	Master int    `json:"master"` // number of the CLMS master (raft leader), 0 when none
	Nodes  int    `json:"nodes"`
	Up     int    `json:"up"`
}

// Load is a node's gossiped load vector as shown to users.
type Load struct {
	RunQueue uint32  `json:"run_queue"`
	Load1    float64 `json:"load1"`
	Load5    float64 `json:"load5"`
	Load15   float64 `json:"load15"`
	CPUUse   float64 `json:"cpu_use"`
	Cores    uint32  `json:"cores"`
	Speed    uint32  `json:"speed"`
	MemTotal uint64  `json:"mem_total"`
	MemFree  uint64  `json:"mem_free"`
	Procs    uint32  `json:"procs"`
	Age      float64 `json:"age_seconds"` // how old the newest vector heard is; -1 when none
}

// Node is one entry of the node registry merged with its latest load.
type Node struct {
	Number      int       `json:"number"`
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Address     string    `json:"address"`
	State       string    `json:"state"`
	Incarnation uint64    `json:"incarnation"`
	Voter       bool      `json:"voter"`
	Master      bool      `json:"master"`
	Since       time.Time `json:"since"` // when the current state was committed
	Epoch       uint64    `json:"epoch"` // epoch of the last transition of this node
	Load        *Load     `json:"load,omitempty"`
}

// Transition is one committed membership epoch.
type Transition struct {
	Epoch       uint64    `json:"epoch"`
	Kind        string    `json:"kind"`
	Node        int       `json:"node"`
	Name        string    `json:"name"`
	Incarnation uint64    `json:"incarnation"`
	Time        time.Time `json:"time"`
	Reason      string    `json:"reason,omitempty"`
	Seen        time.Time `json:"seen,omitempty"` // when the answering node applied it (its clock)
}

// Self describes the agent answering.
type Self struct {
	Number  int    `json:"number"` // 0 until the node is registered
	ID      string `json:"id"`
	Name    string `json:"name"`
	Cluster string `json:"cluster"`
	Member  bool   `json:"member"` // false while fenced (excluded or without quorum)
	Fenced  string `json:"fenced,omitempty"`
	Version string `json:"version"`
}

// Error is the body of every failed request.
type Error struct {
	Error string `json:"error"`
}

// Proc is one process of the cluster, as `ssi ps` shows it.
type Proc struct {
	CPID int64 `json:"cpid"`
	Node int   `json:"node"` // where it runs
	Pid  int   `json:"pid"`  // its pid there
	PPid int   `json:"ppid"`
	PGid int   `json:"pgid"`
	// PCPID is the cluster pid of its parent: for a process run by
	// `ssi run`, the parent of its deputy on the home node.
	PCPID   int64   `json:"pcpid,omitempty"`
	UID     int     `json:"uid"`
	User    string  `json:"user"`
	State   string  `json:"state"`
	CPU     float64 `json:"cpu_percent"`
	RSS     uint64  `json:"rss"`
	Time    float64 `json:"cpu_seconds"`
	Threads int     `json:"threads"`
	Command string  `json:"command"`
}

// ProcsReply is the answer to GET /v1/procs: the processes, and the nodes
// that could not be asked.
type ProcsReply struct {
	Procs       []Proc            `json:"procs"`
	Unreachable map[string]string `json:"unreachable,omitempty"` // node number -> why
}

// SignalRequest is the body of POST /v1/signal.
type SignalRequest struct {
	CPID   int64 `json:"cpid"`
	Group  bool  `json:"group,omitempty"` // CPID names a process group leader: signal the group
	Signal int   `json:"signal"`
}

// KindRemove is the transition of a node removed for good (`ssi node
// remove`): its certificate is revoked and it can come back only by a new
// join with a valid token.
const KindRemove = "remove"

// Token is a join token as `ssi token list` shows it: never its secret.
type Token struct {
	ID          string    `json:"id"`
	Description string    `json:"description,omitempty"`
	Voter       bool      `json:"voter"` // admits voters (they receive the CA key)
	Created     time.Time `json:"created"`
	Expires     time.Time `json:"expires,omitzero"` // zero: never
	MaxUses     int       `json:"max_uses,omitempty"`
	Uses        int       `json:"uses"`
	Revoked     time.Time `json:"revoked,omitzero"`
	Status      string    `json:"status"` // valid, expired, used up, revoked
}

// TokenCreate asks for a new join token (POST /v1/tokens, root only).
type TokenCreate struct {
	TTL         string `json:"ttl,omitempty"` // Go duration; "" or "0": never expires
	MaxUses     int    `json:"max_uses,omitempty"`
	Description string `json:"description,omitempty"`
	Voter       bool   `json:"voter,omitempty"`
}

// TokenCreated is the answer: the token's text, shown once.
type TokenCreated struct {
	Token
	Secret string `json:"token"` // ssi1.SECRET.CAHASH
}

// Removed is a node removed for good, as GET /v1/removed lists them.
type Removed struct {
	Number int       `json:"number"`
	ID     string    `json:"id"`
	Name   string    `json:"name"`
	Time   time.Time `json:"time"`
}

// BalanceEvent is one move the balancer decided (GET /v1/balance/log).
type BalanceEvent struct {
	Time     time.Time `json:"time"`
	CPID     int64     `json:"cpid"`
	UID      int       `json:"uid"` // the process's owner
	From     int       `json:"from"`
	To       int       `json:"to"`
	Reason   string    `json:"reason"`          // load, memory or drain
	Gain     float64   `json:"gain"`            // seconds expected to be saved (load), bytes freed (memory)
	Detail   string    `json:"detail"`          // the figures behind the decision
	FreezeMS float64   `json:"freeze_ms"`       // the move's freeze, if it was made
	Error    string    `json:"error,omitempty"` // why it was not made
}

// BalanceLog is a node's balancer and its last automatic moves, oldest
// first (GET /v1/balance/log).
type BalanceLog struct {
	On    bool           `json:"on"`
	Moves []BalanceEvent `json:"moves"`
}
