package checkpoint

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// MAP_SHARED anonymous memory (mmap(-1) in python, a page a parent shared
// with a child that has ended) is a shmem object of its own, shown in
// maps as "/dev/zero (deleted)" with its inode. When no other process
// maps it, it is the process's alone: its contents are copied like
// private memory and a restore maps a new one (MAP_SHARED|MAP_ANONYMOUS)
// and fills it. Shared with another process, or mapped in several parts
// (the offset of a part is not 0), it is refused.

// anonSharedRefusal says why the MAP_SHARED anonymous mapping m (of maps,
// the process's) cannot move, or "". with gives, by inode, another
// process that maps it.
func anonSharedRefusal(m Mapping, maps []Mapping, with map[uint64]int) string {
	if pid, ok := with[m.Inode]; ok {
		return fmt.Sprintf("shared with process %d", pid)
	}
	if m.Offset != 0 {
		return "a part of a larger shared mapping (offset not 0)"
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
