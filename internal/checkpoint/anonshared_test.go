package checkpoint

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

// TestRestoreAnonShared migrates, twice, plainly and pre-copied, a
// process with MAP_SHARED anonymous memory that a child it reaped wrote
// into: the contents come along, and the memory is still shared (a child
// forked after the moves writes into it and the parent sees it). With the
// child alive, sharing it, the process is refused.
func TestRestoreAnonShared(t *testing.T) {
	needTracing(t)
	stub := buildC(t, "stub")
	bin := buildC(t, "anonshared")
	for _, how := range []string{"plain", "pre-copied"} {
		t.Run(how, func(t *testing.T) {
			moveAndCheck(t, stub, bin, how, "its shared memory lost its contents or is no longer shared", 2, outOnly,
				func(_ int, img *Image, _ int) {
					if img != nil && !hasKind(img, KindAnonShared) {
						t.Fatal("no shared anonymous mapping in the image")
					}
				})
		})
	}
	t.Run("shared with a live child", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "out")
		cmd, _ := start(t, bin, out, "keep")
		waitLines(t, out, 2)
		err := Check(cmd.Process.Pid)
		var re *RefusalError
		if !errors.As(err, &re) || !re.Has(SharedMemory) || !strings.Contains(err.Error(), "shared with process") {
			t.Fatalf("Check: %v; want a refusal: shared memory, shared with process N", err)
		}
	})
}
