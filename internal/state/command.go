package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ssi-cluster/ssi/internal/api"
)

// Ops of a Command.
const (
	OpInit        = "init"         // name the cluster
	OpRegister    = "register"     // give a node its number (or refresh a known node)
	OpTransition  = "transition"   // commit a membership transition
	OpTokenCreate = "token-create" // keep a new join token (hashed)
	OpTokenRevoke = "token-revoke" // revoke a join token
	OpRemove      = "remove"       // remove a node for good (revokes its certificate)
	OpGossipKey   = "gossip-key"   // a new gossip key (the master rotates it after a removal)
)

// Command is one entry of the raft log.
type Command struct {
	Op   string    `json:"op"`
	Time time.Time `json:"time"` // the leader's clock when proposed

	Cluster string `json:"cluster,omitempty"` // OpInit

	Node *NodeRec `json:"node,omitempty"` // OpRegister
	// TokenHash names the join token a joining node presented (hex SHA-256
	// of its secret); the register checks it and counts the use.
	TokenHash string `json:"token_hash,omitempty"`

	Token   *TokenRec `json:"token,omitempty"`    // OpTokenCreate
	TokenID string    `json:"token_id,omitempty"` // OpTokenRevoke

	GossipKey string `json:"gossip_key,omitempty"` // OpGossipKey: 64 hex digits

	Migration *MigrationRec `json:"migration,omitempty"` // OpMigration

	Number      int    `json:"number,omitempty"` // OpTransition, OpRemove
	Kind        string `json:"kind,omitempty"`
	Incarnation uint64 `json:"incarnation,omitempty"`
	Reason      string `json:"reason,omitempty"`
}

// MaxCommand bounds an encoded command.
const MaxCommand = 64 << 10

// Encode encodes a command for the log.
func (c *Command) Encode() ([]byte, error) { return json.Marshal(c) }

// DecodeCommand decodes a log entry or a forwarded command.
func DecodeCommand(b []byte) (*Command, error) {
	if len(b) > MaxCommand {
		return nil, fmt.Errorf("%w: %d bytes", ErrBadCommand, len(b))
	}
	c := new(Command)
	if err := json.Unmarshal(b, c); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadCommand, err)
	}
	return c, nil
}

// Result is the outcome of an applied command, as returned through raft and
// forwarded between nodes.
type Result struct {
	Value json.RawMessage `json:"value,omitempty"`
	Error string          `json:"error,omitempty"`
	Code  string          `json:"code,omitempty"` // "duplicate_name", "bad_transition", ...
}

func codeOf(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, ErrDuplicateName):
		return "duplicate_name"
	case errors.Is(err, ErrBadTransition):
		return "bad_transition"
	case errors.Is(err, ErrUnknownNode):
		return "unknown_node"
	case errors.Is(err, ErrTokenUnknown):
		return "token_unknown"
	case errors.Is(err, ErrTokenExpired):
		return "token_expired"
	case errors.Is(err, ErrTokenUsedUp):
		return "token_used_up"
	case errors.Is(err, ErrTokenRevoked):
		return "token_revoked"
	case errors.Is(err, ErrRemoved):
		return "removed"
	}
	return "bad_command"
}

// Err turns a forwarded Result back into an error that errors.Is
// recognises.
func (r *Result) Err() error {
	if r.Error == "" {
		return nil
	}
	base := map[string]error{"duplicate_name": ErrDuplicateName, "bad_transition": ErrBadTransition,
		"unknown_node": ErrUnknownNode, "token_unknown": ErrTokenUnknown, "token_expired": ErrTokenExpired,
		"token_used_up": ErrTokenUsedUp, "token_revoked": ErrTokenRevoked, "removed": ErrRemoved}[r.Code]
	if base == nil {
		base = ErrBadCommand
	}
	return &appliedError{msg: r.Error, base: base}
}

type appliedError struct {
	msg  string
	base error
}

func (e *appliedError) Error() string { return e.msg }
func (e *appliedError) Unwrap() error { return e.base }

// MayForward says whether a member may have the master commit c: its
// own leave, and, for a voter (a node trusted with the CA key), the
// administrator's commands. Everything else the master proposes itself.
func MayForward(c *Command, caller *NodeRec) error {
	if caller == nil {
		return errors.New("only a registered member may forward commands")
	}
	switch c.Op {
	case OpTransition:
		if c.Kind == api.KindLeave && c.Number == caller.Number {
			return nil
		}
		return fmt.Errorf("node %d may commit only its own leave, not %s of node %d", caller.Number, c.Kind, c.Number)
	case OpTokenCreate, OpTokenRevoke, OpRemove:
		if caller.Voter {
			return nil
		}
		return fmt.Errorf("node %d is not a voter: tokens and removals are managed on voters only", caller.Number)
	case OpMigration:
		return mayForwardMigration(c, caller)
	}
	return fmt.Errorf("node %d may not forward %q commands", caller.Number, c.Op)
}
