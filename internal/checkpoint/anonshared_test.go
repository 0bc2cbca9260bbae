package checkpoint

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
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

// TestRestoreGoneShmem migrates, twice, plainly and pre-copied, a process
// with a POSIX semaphore and a POSIX shared memory object that were
// unlinked after they were mapped, and a memfd mapped and closed, all
// written to by a child it reaped: their contents and the semaphore's
// count come along, and they are still shared (a child forked after the
// moves writes into them and posts the semaphore; the parent sees it).
// With the memfd's descriptor still open, the process is refused, naming
// it.
func TestRestoreGoneShmem(t *testing.T) {
	needTracing(t)
	stub := buildC(t, "stub")
	bin := buildC(t, "shmdeleted")
	for _, how := range []string{"plain", "pre-copied"} {
		t.Run(how, func(t *testing.T) {
			moveAndCheck(t, stub, bin, how, "its semaphore, shm object or memfd lost its contents or is no longer shared", 2, outOnly,
				func(round int, img *Image, _ int) {
					if img == nil {
						return
					}
					gone, shared := 0, 0
					for _, m := range img.Mappings {
						if m.Kind == KindAnonShared {
							shared++
							if goneShmem(m.Path) {
								gone++
							}
						}
					}
					// Restored, they are shared anonymous memory.
					if want := 3 * (1 - min(round, 1)); gone != want || shared != 3 {
						t.Fatalf("round %d: %d shared mappings, %d of them of gone names; want 3 and %d", round, shared, gone, want)
					}
				})
		})
	}
	t.Run("memfd descriptor open", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "out")
		cmd, _ := start(t, bin, out, "fd")
		waitLines(t, out, 2)
		err := Check(cmd.Process.Pid)
		var re *RefusalError
		if !errors.As(err, &re) || !re.Has(SharedMemory) || !strings.Contains(err.Error(), "/memfd:ssi-test (deleted): also open at fd") {
			t.Fatalf("Check: %v; want a refusal: shared memory, memfd also open at fd N", err)
		}
		if strings.Contains(err.Error(), "/dev/shm/") {
			t.Errorf("Check: %v; the unlinked semaphore and shm object should move", err)
		}
	})
}

// TestGoneShmemRefusal: the pure rule for shared memory whose name is
// gone.
func TestGoneShmemRefusal(t *testing.T) {
	m := Mapping{Start: 0x10000, End: 0x12000, Kind: KindAnonShared, Path: "/dev/shm/x (deleted)", Dev: "00:1a", Inode: 15}
	for _, tc := range []struct {
		name string
		v    procView
		want string
	}{
		{"alone", procView{ShmemSize: map[uint64]int64{0x10000: 8192}}, ""},
		{"object of a part of a page", procView{ShmemSize: map[uint64]int64{0x10000: 4097}}, ""},
		{"mapping beyond the object", procView{ShmemSize: map[uint64]int64{0x10000: 4096}}, "longer than the object"},
		{"size unknown", procView{ShmemSize: map[uint64]int64{0x10000: -1}}, "cannot be read"},
		{"open too", procView{ShmemSize: map[uint64]int64{0x10000: 8192}, Fds: []fdView{{Fd: 5, ID: fileID{unix.Mkdev(0, 0x1a), 15}}}}, "also open at fd 5"},
		{"another file open", procView{ShmemSize: map[uint64]int64{0x10000: 8192}, Fds: []fdView{{Fd: 5, ID: fileID{unix.Mkdev(0, 0x1a), 16}}}}, ""},
		{"mapped elsewhere", procView{ShmemSize: map[uint64]int64{0x10000: 8192}, SharedWith: map[uint64]int{15: 77}}, "shared with process 77"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.v.Maps = []Mapping{m}
			got := anonSharedRefusal(m, &tc.v)
			if tc.want == "" && got != "" || !strings.Contains(got, tc.want) {
				t.Errorf("refusal %q, want %q", got, tc.want)
			}
		})
	}
	for path, want := range map[string]bool{"/dev/shm/sem.x (deleted)": true, "/memfd:a (deleted)": true, "/dev/shm/x": false, "/tmp/x (deleted)": false} {
		if goneShmem(path) != want {
			t.Errorf("goneShmem(%q) = %v", path, !want)
		}
	}
}
