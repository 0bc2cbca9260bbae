package checkpoint

import (
	"io/fs"
	"reflect"
	"strings"
	"testing"
)

func TestUnrestorable(t *testing.T) {
	dir, exe, file := fileID{1, 2}, fileID{1, 3}, fileID{1, 4}
	libMap := Mapping{Start: 0x1000, End: 0x3000, Prot: ProtRead, Kind: KindFilePrivate, Path: "/lib/libc.so", Dev: "fe:00", Inode: 5}
	lib := fileID{fe00, 5}
	base := func() (restoreView, []fdView, []Mapping) {
		r := restoreView{Cwd: "/work", CwdID: dir, Root: "/", RootID: fileID{1, 1}, OurRoot: fileID{1, 1},
			Exe: "/bin/x", ExeID: exe,
			Now:    map[string]pathNow{"/work": {ID: dir}, "/bin/x": {ID: exe}, "/work/f": {ID: file}, "/lib/libc.so": {ID: lib}},
			MapIDs: map[uint64]fileID{}}
		return r, []fdView{{3, "/work/f", 0, 0, file, 0, 0}, {4, "socket:[9]", fs.ModeSocket, 0, fileID{}, 0, 0}}, []Mapping{libMap}
	}
	long := "/" + strings.Repeat("d", maxRestorePath)
	tests := []struct {
		name string
		f    func(r *restoreView, fds *[]fdView, maps *[]Mapping)
		want []string
	}{
		{"restorable", func(*restoreView, *[]fdView, *[]Mapping) {}, nil},
		{"cwd deleted", func(r *restoreView, _ *[]fdView, _ *[]Mapping) {
			r.Cwd = "/work/x (deleted)"
			r.Now[r.Cwd] = pathNow{Err: "no such file or directory"}
		}, []string{"its working directory /work/x was deleted"}},
		{"cwd really named (deleted)", func(r *restoreView, _ *[]fdView, _ *[]Mapping) {
			r.Cwd = "/work/x (deleted)"
			r.Now[r.Cwd] = pathNow{ID: dir}
		}, nil},
		{"cwd in a gone /proc/PID", func(r *restoreView, _ *[]fdView, _ *[]Mapping) {
			r.Cwd = "/proc/4321 (deleted)"
		}, []string{"its working directory /proc/4321 was deleted (process 4321 ended)"}},
		{"cwd in a live /proc/PID", func(r *restoreView, _ *[]fdView, _ *[]Mapping) {
			r.Cwd = "/proc/4321/fd"
		}, []string{"its working directory /proc/4321/fd is in the /proc directory of process 4321, which stays on this node"}},
		{"cwd replaced", func(r *restoreView, _ *[]fdView, _ *[]Mapping) {
			r.Now["/work"] = pathNow{ID: fileID{1, 99}}
		}, []string{"its working directory /work is no longer the file it has open: another file is at that path now"}},
		{"cwd out of reach", func(r *restoreView, _ *[]fdView, _ *[]Mapping) {
			r.Now["/work"] = pathNow{Err: "permission denied"}
		}, []string{"its working directory /work cannot be opened here: permission denied"}},
		{"cwd too long", func(r *restoreView, _ *[]fdView, _ *[]Mapping) {
			r.Cwd = long
			r.Now[long] = pathNow{ID: dir}
		}, []string{"its working directory " + long[:60] + "... has a path of 960 bytes, longer than a restore opens (959)"}},
		{"chroot", func(r *restoreView, _ *[]fdView, _ *[]Mapping) {
			r.Root, r.RootID = "/srv/jail", fileID{1, 7}
		}, []string{"its root directory is /srv/jail, not this node's / (chroot or another mount namespace): a restore does not keep it"}},
		{"another mount namespace", func(r *restoreView, _ *[]fdView, _ *[]Mapping) {
			r.RootID = fileID{2, 1}
		}, []string{"its root directory is /, not this node's / (chroot or another mount namespace): a restore does not keep it"}},
		{"exe replaced", func(r *restoreView, _ *[]fdView, _ *[]Mapping) {
			r.Now["/bin/x"] = pathNow{ID: fileID{1, 98}}
		}, []string{"its executable /bin/x is no longer the file it has open: another file is at that path now"}},
		{"exe deleted, mapped: said by DeletedFile", func(r *restoreView, _ *[]fdView, maps *[]Mapping) {
			r.Exe = "/bin/x (deleted)"
			*maps = append(*maps, Mapping{Start: 0x5000, End: 0x6000, Kind: KindFilePrivate, Path: "/bin/x (deleted)", Dev: "fe:00", Inode: 3})
		}, nil},
		{"exe deleted, not mapped", func(r *restoreView, _ *[]fdView, _ *[]Mapping) {
			r.Exe = "/bin/x (deleted)"
		}, []string{"its executable /bin/x was deleted"}},
		{"file replaced", func(r *restoreView, _ *[]fdView, _ *[]Mapping) {
			r.Now["/work/f"] = pathNow{ID: fileID{1, 97}}
		}, []string{"fd 3: /work/f is no longer the file it has open: another file is at that path now"}},
		{"file gone without (deleted)", func(r *restoreView, _ *[]fdView, _ *[]Mapping) {
			r.Now["/work/f"] = pathNow{Err: "no such file or directory"}
		}, []string{"fd 3: /work/f cannot be opened here: no such file or directory"}},
		{"file deleted: said by DeletedFile", func(r *restoreView, fds *[]fdView, _ *[]Mapping) {
			(*fds)[0].Target = "/work/f (deleted)"
		}, nil},
		{"file in /proc", func(r *restoreView, fds *[]fdView, _ *[]Mapping) {
			(*fds)[0].Target = "/proc/77/status"
		}, []string{"fd 3: /proc/77/status is in the /proc directory of process 77, which stays on this node"}},
		{"mapping replaced, twice mapped: once", func(r *restoreView, _ *[]fdView, maps *[]Mapping) {
			r.Now["/lib/libc.so"] = pathNow{ID: fileID{fe00, 96}}
			m := libMap
			m.Start, m.End = 0x1000, 0x2000
			m2 := libMap
			m2.Start, m2.End = 0x2000, 0x3000
			*maps = []Mapping{m, m2}
		}, []string{"mapped file /lib/libc.so is no longer the file it has open: another file is at that path now"}},
		{"mapping on an overlay: map_files says the same", func(r *restoreView, _ *[]fdView, _ *[]Mapping) {
			r.Now["/lib/libc.so"] = pathNow{ID: fileID{0x2a, 5000}}
			r.MapIDs[0x1000] = fileID{0x2a, 5000}
		}, nil},
		{"anonymous and shared memory are not reopened", func(r *restoreView, _ *[]fdView, maps *[]Mapping) {
			*maps = append(*maps, Mapping{Start: 0x9000, End: 0xa000, Kind: KindAnon},
				Mapping{Start: 0xa000, End: 0xb000, Kind: KindFileShared, Flags: MapShared, Path: "/dev/shm/x", Dev: "00:1a", Inode: 4})
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, fds, maps := base()
			tt.f(&r, &fds, &maps)
			var got []string
			for _, x := range unrestorable(r, fds, maps) {
				if x.Code != Unrestorable {
					t.Errorf("code %v", x.Code)
				}
				got = append(got, x.Detail)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}
