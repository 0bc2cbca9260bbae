package checkpoint

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// MAP_SHARED anonymous memory (mmap(-1) in python, a page a parent shared
// with a child that has ended) is a shmem object of its own, shown in
// maps as "/dev/zero (deleted)" with its inode. When no other process
// maps it, it is the process's alone: its contents are copied like
// private memory and a restore maps a new one (MAP_SHARED|MAP_ANONYMOUS)
// and fills it. Shared with another process, or mapped in several parts
// (the offset of a part is not 0), it is refused.
//
// So is shared memory whose name is gone (goneShmem): a POSIX semaphore
// or shared memory object unlinked after it was mapped (sem_open and
// sem_unlink: python's multiprocessing locks), or a memfd mapped and its
// descriptor closed. Nothing can open it again; it is the same shmem
// memory, and moves the same way (maps then shows it as
// "/dev/zero (deleted)"). Refused besides: a descriptor of the process
// still open to it (the two would no longer share), a mapping longer
// than the object (its end faults), or the object's size unknown.

// goneShmem reports whether a mapping's path names tmpfs memory that
// has no name any more: an unlinked /dev/shm object or a memfd.
func goneShmem(path string) bool {
	return strings.HasSuffix(path, " (deleted)") && (strings.HasPrefix(path, "/dev/shm/") || strings.HasPrefix(path, "/memfd:"))
}

// shmemSizes gives, by start address, the size of the object behind each
// gone-shmem mapping of pid (-1 if it cannot be read), through
// /proc/PID/map_files.
func shmemSizes(pid int, maps []Mapping) map[uint64]int64 {
	var sizes map[uint64]int64
	for _, m := range maps {
		if m.Kind != KindAnonShared || !goneShmem(m.Path) {
			continue
		}
		if sizes == nil {
			sizes = map[uint64]int64{}
		}
		sizes[m.Start] = -1
		if fi, err := os.Stat(fmt.Sprintf("/proc/%d/map_files/%x-%x", pid, m.Start, m.End)); err == nil {
			sizes[m.Start] = fi.Size()
		}
	}
	return sizes
}

// mapDev is a mapping's device ("fe:01" in maps) as stat gives it.
func mapDev(m Mapping) uint64 {
	maj, min, ok := strings.Cut(m.Dev, ":")
	a, err1 := strconv.ParseUint(maj, 16, 32)
	b, err2 := strconv.ParseUint(min, 16, 32)
	if !ok || err1 != nil || err2 != nil {
		return 0
	}
	return unix.Mkdev(uint32(a), uint32(b))
}

// anonSharedRefusal says why the MAP_SHARED anonymous mapping m (of maps,
// the process's) cannot move, or "". with gives, by inode, another
// process that maps it.
func anonSharedRefusal(m Mapping, v *procView) string {
	maps, with := v.Maps, v.SharedWith
	if pid, ok := with[m.Inode]; ok {
		return fmt.Sprintf("shared with process %d", pid)
	}
	if m.Offset != 0 {
		return "a part of a larger shared mapping (offset not 0)"
	}
	if goneShmem(m.Path) {
		id := fileID{mapDev(m), m.Inode}
		for _, f := range v.Fds {
			if f.ID == id {
				return fmt.Sprintf("also open at fd %d (a descriptor and a mapping of it would no longer share it)", f.Fd)
			}
		}
		switch size := v.ShmemSize[m.Start]; {
		case size < 0:
			return "its size cannot be read"
		case (uint64(size)+pageSize-1)&^(pageSize-1) < m.End-m.Start:
			return fmt.Sprintf("the mapping (%d bytes) is longer than the object (%d bytes)", m.End-m.Start, size)
		}
	}
	for i := range maps {
		if o := &maps[i]; o.Kind == KindAnonShared && o.Inode == m.Inode && o.Start != m.Start {
			return fmt.Sprintf("mapped again at %#x", o.Start)
		}
	}
	return ""
}

// sharedWith looks through every other process's maps for the inodes of
// pid's MAP_SHARED anonymous mappings, and returns the first process that
// maps each one it finds. Only a process with such mappings pays for the
// look (about 30 us a process).
func sharedWith(pid int, maps []Mapping) map[uint64]int {
	want := map[string]uint64{}
	for _, m := range maps {
		if m.Kind == KindAnonShared {
			want[" "+m.Dev+" "+strconv.FormatUint(m.Inode, 10)+" "] = m.Inode
		}
	}
	if len(want) == 0 {
		return nil
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	with := map[uint64]int{}
	for _, e := range ents {
		other, err := strconv.Atoi(e.Name())
		if err != nil || other == pid {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/maps")
		if err != nil {
			continue
		}
		for key, ino := range want {
			if _, seen := with[ino]; !seen && strings.Contains(string(b), key) {
				with[ino] = other
			}
		}
	}
	return with
}
