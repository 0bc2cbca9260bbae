package agent

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/ssi-cluster/ssi/internal/statedir"
)

// IdentityFile holds who this node is, in the state directory.
const IdentityFile = "node.json"

// Identity is this node's lasting identity.
type Identity struct {
	ID          string `json:"id"`      // random, made once; the raft and gossip name
	Name        string `json:"name"`    // human name (hostname by default)
	Cluster     string `json:"cluster"` // cluster name
	Number      int    `json:"number"`  // 0 until registered
	Incarnation uint64 `json:"incarnation"`
	Bootstrap   bool   `json:"bootstrap,omitempty"` // made by `ssi init`: bootstraps raft on first start
	// InitTokenExpires is when the join token `ssi init` wrote expires
	// (zero: never); the first master commits that token with it.
	InitTokenExpires time.Time `json:"init_token_expires,omitzero"`
}

// NewNodeID returns a fresh random node ID.
func NewNodeID() (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}

// LoadIdentity reads node.json; os.ErrNotExist if this node never joined.
func LoadIdentity(dir string) (*Identity, error) {
	b, err := os.ReadFile(filepath.Join(dir, IdentityFile))
	if err != nil {
		return nil, err
	}
	return DecodeIdentity(b)
}

// DecodeIdentity parses and checks node.json.
func DecodeIdentity(b []byte) (*Identity, error) {
	id := new(Identity)
	if err := json.Unmarshal(b, id); err != nil {
		return nil, fmt.Errorf("%s: %w", IdentityFile, err)
	}
	if id.ID == "" || id.Name == "" || id.Cluster == "" {
		return nil, fmt.Errorf("%s: id, name and cluster must be set", IdentityFile)
	}
	if id.Number < 0 {
		return nil, fmt.Errorf("%s: bad number %d", IdentityFile, id.Number)
	}
	return id, nil
}

// Save writes node.json atomically.
func (id *Identity) Save(dir string) error {
	b, err := json.MarshalIndent(id, "", "  ")
	if err != nil {
		return err
	}
	return statedir.WriteFile(dir, IdentityFile, append(b, '\n'), 0o600)
}

// CheckStateDir makes sure dir exists and can be written and synced,
// naming the problem (read-only file system, no space left) if not.
func CheckStateDir(dir string) error { return statedir.Check(dir) }
