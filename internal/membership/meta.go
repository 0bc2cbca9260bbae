package membership

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/hashicorp/memberlist"
)

// Meta is what a node says of itself in gossip.
type Meta struct {
	Name        string `json:"n"`
	Number      int    `json:"num,omitempty"`
	RPCPort     int    `json:"rpc"`
	RaftPort    int    `json:"raft"`
	Incarnation uint64 `json:"inc"`
}

// Encode encodes m; it fails if the result exceeds memberlist's limit.
func (m Meta) Encode() ([]byte, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	if len(b) > memberlist.MetaMaxSize {
		return nil, fmt.Errorf("node meta is %d bytes, over memberlist's %d", len(b), memberlist.MetaMaxSize)
	}
	return b, nil
}

// DecodeMeta decodes and checks a peer's meta.
func DecodeMeta(b []byte) (Meta, error) {
	var m Meta
	if len(b) == 0 {
		return m, errors.New("node meta: empty")
	}
	if len(b) > memberlist.MetaMaxSize {
		return m, fmt.Errorf("node meta: %d bytes, over %d", len(b), memberlist.MetaMaxSize)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("node meta: %w", err)
	}
	if m.Name == "" {
		return m, errors.New("node meta: no name")
	}
	if m.RPCPort < 1 || m.RPCPort > 65535 || m.RaftPort < 1 || m.RaftPort > 65535 {
		return m, fmt.Errorf("node meta: bad ports rpc=%d raft=%d", m.RPCPort, m.RaftPort)
	}
	if m.Number < 0 {
		return m, fmt.Errorf("node meta: bad number %d", m.Number)
	}
	return m, nil
}
