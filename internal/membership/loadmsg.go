package membership

import (
	"errors"
	"fmt"

	"github.com/hashicorp/memberlist"

	"github.com/ssi-cluster/ssi/internal/load"
)

// msgLoad is the first byte of a load-vector user message:
//
//	[0] msgLoad  [1] len(id)  [2:2+len(id)] node id  [...] load.Vector binary
const msgLoad = 1

func encodeLoad(id string, v load.Vector) ([]byte, error) {
	if len(id) == 0 || len(id) > 255 {
		return nil, fmt.Errorf("node id of %d bytes", len(id))
	}
	vb, err := v.MarshalBinary()
	if err != nil {
		return nil, err
	}
	b := make([]byte, 0, 2+len(id)+len(vb))
	b = append(b, msgLoad, byte(len(id)))
	b = append(b, id...)
	return append(b, vb...), nil
}

// decodeLoad decodes a load message received from the network.
func decodeLoad(b []byte) (string, load.Vector, error) {
	var v load.Vector
	if len(b) < 2 {
		return "", v, errors.New("load message: too short")
	}
	if b[0] != msgLoad {
		return "", v, fmt.Errorf("load message: unknown type %d", b[0])
	}
	n := int(b[1])
	if n == 0 || len(b) < 2+n {
		return "", v, errors.New("load message: bad node id length")
	}
	id := string(b[2 : 2+n])
	if err := v.UnmarshalBinary(b[2+n:]); err != nil {
		return "", v, err
	}
	return id, v, nil
}

// loadBroadcast is one queued vector; a newer one of the same node
// invalidates it.
type loadBroadcast struct {
	id  string
	msg []byte
}

func (b *loadBroadcast) Invalidates(o memberlist.Broadcast) bool {
	ob, ok := o.(*loadBroadcast)
	return ok && ob.id == b.id
}
func (b *loadBroadcast) Message() []byte { return b.msg }
func (b *loadBroadcast) Finished()       {}
