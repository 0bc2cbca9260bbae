package agent

import (
	"slices"
	"testing"

	"github.com/ssi-cluster/ssi/internal/authz"
	"github.com/ssi-cluster/ssi/internal/checkpoint"
)

// An image is judged by the credentials the restore gives it: none
// (kept from the agent's stager) is root's.
func TestImageCredentials(t *testing.T) {
	img := &checkpoint.Image{}
	if o := imageOwner(img); o != authz.OwnedBy(0) || imageGIDs(img) != nil {
		t.Errorf("no credentials: owner %v, gids %v; want root's, none", o, imageGIDs(img))
	}
	img.Creds = &checkpoint.Creds{Uid: [3]uint32{1000, 0, 1000}, Gid: [3]uint32{100, 100, 6}, Groups: []uint32{42}}
	if o := imageOwner(img); o != (authz.Owner{1000, 0, 1000}) || !o.Root() {
		t.Errorf("owner %v, want 1000 0 1000 (root's: its effective uid)", o)
	}
	if g := imageGIDs(img); !slices.Equal(g, []int{100, 100, 6, 42}) {
		t.Errorf("gids %v", g)
	}
	img.Creds.Uid = [3]uint32{1<<32 - 1, 5, 5}
	if o := imageOwner(img); o[0] != 1<<31-1 {
		t.Errorf("uid 2^32-1 is %d, want clamped to 2^31-1", o[0])
	}
}
