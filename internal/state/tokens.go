package state

import (
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/ssi-cluster/ssi/internal/api"
)

// Join tokens live in the registry, hashed: the secret is shown once, when
// a token is made, and the cluster keeps only the SHA-256 of it (as
// kubeadm and Nomad do). A join names its token by that hash; the register
// command that admits the node checks the token and counts the use in the
// same log entry, so two joins racing for a token's last use cannot both
// get it, and every node agrees on why a token was refused.

// MaxTokens bounds how many tokens the registry keeps (revoked and spent
// ones included, so that a refusal can say why).
const MaxTokens = 1024

// Token errors. A refused join says which.
var (
	ErrTokenUnknown = errors.New("the join token is not one of this cluster's")
	ErrTokenExpired = errors.New("the join token has expired")
	ErrTokenUsedUp  = errors.New("the join token has been used up")
	ErrTokenRevoked = errors.New("the join token has been revoked")
	ErrRemoved      = errors.New("the node was removed from the cluster")
)

// TokenRec is a join token as the registry keeps it.
type TokenRec struct {
	ID          string    `json:"id"`   // first 12 hex digits of Hash
	Hash        string    `json:"hash"` // hex SHA-256 of the secret
	Description string    `json:"description,omitempty"`
	Voter       bool      `json:"voter,omitempty"` // admits voters, which receive the CA key
	Created     time.Time `json:"created"`
	Expires     time.Time `json:"expires,omitzero"` // zero: never
	MaxUses     int       `json:"max_uses,omitempty"`
	Uses        int       `json:"uses"`
	Revoked     time.Time `json:"revoked,omitzero"`
}

// status says whether the token admits a node at time now: nil or the
// reason it does not.
func (t *TokenRec) status(now time.Time) error {
	switch {
	case !t.Revoked.IsZero():
		return fmt.Errorf("%w (token %s, revoked %s)", ErrTokenRevoked, t.ID, t.Revoked.UTC().Format(time.RFC3339))
	case !t.Expires.IsZero() && !now.Before(t.Expires):
		return fmt.Errorf("%w (token %s expired %s)", ErrTokenExpired, t.ID, t.Expires.UTC().Format(time.RFC3339))
	case t.MaxUses > 0 && t.Uses >= t.MaxUses:
		return fmt.Errorf("%w (token %s, %d of %d uses)", ErrTokenUsedUp, t.ID, t.Uses, t.MaxUses)
	}
	return nil
}

// View returns the token as `ssi token list` shows it at time now.
func (t *TokenRec) View(now time.Time) api.Token {
	st := "valid"
	switch err := t.status(now); {
	case errors.Is(err, ErrTokenRevoked):
		st = "revoked"
	case errors.Is(err, ErrTokenExpired):
		st = "expired"
	case errors.Is(err, ErrTokenUsedUp):
		st = "used up"
	}
	return api.Token{ID: t.ID, Description: t.Description, Voter: t.Voter, Created: t.Created,
		Expires: t.Expires, MaxUses: t.MaxUses, Uses: t.Uses, Revoked: t.Revoked, Status: st}
}

// RemovedRec is a node removed for good: its ID is refused everywhere.
type RemovedRec struct {
	Number  int       `json:"number"`
	ID      string    `json:"id"`
	Name    string    `json:"name"`
	Time    time.Time `json:"time"`
	RPCAddr string    `json:"rpc_addr,omitempty"` // where it served, so clients drop their connections
}

// checkTokenRec validates a token record from a command.
func checkTokenRec(t *TokenRec) error {
	h, err := hex.DecodeString(t.Hash)
	switch {
	case err != nil || len(h) != 32:
		return errors.New("token hash must be 64 hex digits")
	case t.ID != t.Hash[:12]:
		return errors.New("token id must be the first 12 hex digits of its hash")
	case t.MaxUses < 0:
		return errors.New("token max uses must not be negative")
	case len(t.Description) > 256:
		return errors.New("token description is longer than 256 bytes")
	case t.Uses != 0 || !t.Revoked.IsZero():
		return errors.New("a new token has no uses and is not revoked")
	}
	return nil
}

func (r *Registry) createToken(c *Command) (any, error) {
	t := c.Token
	if t == nil {
		return nil, fmt.Errorf("%w: token create needs a token", ErrBadCommand)
	}
	if err := checkTokenRec(t); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadCommand, err)
	}
	if _, dup := r.Tokens[t.ID]; dup {
		return nil, fmt.Errorf("%w: token %s exists", ErrBadCommand, t.ID)
	}
	if len(r.Tokens) >= MaxTokens {
		dead := r.oldestDeadToken(c.Time)
		if dead == nil {
			return nil, fmt.Errorf("%w: %d tokens are kept, all still valid: revoke some", ErrBadCommand, MaxTokens)
		}
		delete(r.Tokens, dead.ID)
	}
	cp := *t
	cp.Created = c.Time
	r.Tokens[cp.ID] = &cp
	return cp.View(c.Time), nil
}

// oldestDeadToken returns the oldest token that can no longer admit
// anyone (the first to forget when the table is full), or nil.
func (r *Registry) oldestDeadToken(now time.Time) *TokenRec {
	var oldest *TokenRec
	for _, t := range r.Tokens {
		if t.status(now) != nil && (oldest == nil || t.Created.Before(oldest.Created) ||
			t.Created.Equal(oldest.Created) && t.ID < oldest.ID) {
			oldest = t
		}
	}
	return oldest
}

func (r *Registry) revokeToken(c *Command) (any, error) {
	t := r.Tokens[c.TokenID]
	if t == nil {
		return nil, fmt.Errorf("%w: no token %q", ErrTokenUnknown, c.TokenID)
	}
	if t.Revoked.IsZero() {
		t.Revoked = c.Time
	}
	return t.View(c.Time), nil
}

// CheckToken says whether the token whose secret hashes to hash (hex)
// admits a node at now, without counting a use: any member checks a join's
// token this way before it reads the rest of the request; the master's
// register is what counts.
func (r *Registry) CheckToken(hash string, now time.Time) error {
	_, err := r.findToken(hash, now)
	return err
}

func (r *Registry) findToken(hash string, now time.Time) (*TokenRec, error) {
	if len(hash) != 64 {
		return nil, ErrTokenUnknown
	}
	t := r.Tokens[hash[:12]]
	if t == nil || subtle.ConstantTimeCompare([]byte(t.Hash), []byte(hash)) != 1 {
		return nil, ErrTokenUnknown
	}
	if err := t.status(now); err != nil {
		return nil, err
	}
	return t, nil
}

// useToken checks the token whose secret hashes to hash and counts one
// use. It returns the token.
func (r *Registry) useToken(hash string, now time.Time) (*TokenRec, error) {
	t, err := r.findToken(hash, now)
	if err != nil {
		return nil, err
	}
	t.Uses++
	return t, nil
}

// TokenViews returns every token as `ssi token list` shows it, newest last.
func (r *Registry) TokenViews(now time.Time) []api.Token {
	out := make([]api.Token, 0, len(r.Tokens))
	for _, t := range r.Tokens {
		out = append(out, t.View(now))
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.Before(out[j].Created)
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// IsRemoved reports whether the node with this ID was removed for good.
func (r *Registry) IsRemoved(id string) bool { return r.Removed[id] != nil }

// remove forgets a node for good: it leaves the registry's node table, its
// ID is kept as removed (refused at every TLS handshake and every
// registration), and a remove transition is recorded.
func (r *Registry) remove(c *Command) (any, error) {
	n := r.Nodes[c.Number]
	if n == nil {
		return nil, fmt.Errorf("%w: %d", ErrUnknownNode, c.Number)
	}
	r.Epoch++
	t := api.Transition{Epoch: r.Epoch, Kind: api.KindRemove, Node: n.Number, Name: n.Name,
		Incarnation: n.Incarnation, Time: c.Time, Reason: c.Reason}
	r.appendTransition(t)
	r.LastRemoval = r.Epoch
	r.Removed[n.ID] = &RemovedRec{Number: n.Number, ID: n.ID, Name: n.Name, Time: c.Time, RPCAddr: n.RPCAddr()}
	delete(r.Nodes, n.Number)
	delete(r.byID, n.ID)
	return t, nil
}

// KeyStale reports whether a node was removed since the gossip key was
// last rotated: the master then rotates it.
func (r *Registry) KeyStale() bool { return r.LastRemoval > r.KeyedAt }

// RemovedList returns the removed nodes by number.
func (r *Registry) RemovedList() []api.Removed {
	out := make([]api.Removed, 0, len(r.Removed))
	for _, n := range r.Removed {
		out = append(out, api.Removed{Number: n.Number, ID: n.ID, Name: n.Name, Time: n.Time})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Number < out[j].Number })
	return out
}
