package load

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// writeFiles creates each file (path relative to root) with its contents.
func writeFiles(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for name, data := range files {
		path := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCgroupLimits(t *testing.T) {
	tests := []struct {
		name      string
		files     map[string]string // under a temp dir; proc/ and fs/ subtrees
		wantQuota uint32
		wantLimit uint64
		wantUsage uint64
		wantOK    bool
	}{
		{name: "no cgroup file", files: map[string]string{"fs/cgroup.controllers": ""}},
		{
			name: "v2 limits on leaf and ancestor",
			files: map[string]string{
				"proc/self/cgroup":        "0::/a/b\n",
				"fs/cgroup.controllers":   "cpu memory",
				"fs/a/cpu.max":            "max 100000\n",
				"fs/a/memory.max":         "1000000\n",
				"fs/a/memory.current":     "400000\n",
				"fs/a/b/cpu.max":          "150000 100000\n",
				"fs/a/b/memory.max":       "max\n",
				"fs/a/b/memory.current":   "300000\n",
				"fs/a/b/cgroup.procs":     "1\n",
				"fs/a/cgroup.subtree_ctl": "",
			},
			wantQuota: 2, wantLimit: 1000000, wantUsage: 400000, wantOK: true,
		},
		{
			name: "v2 tighter limit deeper",
			files: map[string]string{
				"proc/self/cgroup":      "0::/a/b\n",
				"fs/cgroup.controllers": "",
				"fs/a/cpu.max":          "50000 100000\n",
				"fs/a/b/cpu.max":        "400000 100000\n",
				"fs/a/memory.max":       "1000000\n",
				"fs/a/memory.current":   "400000\n",
				"fs/a/b/memory.max":     "500000\n",
				"fs/a/b/memory.current": "100000\n",
			},
			wantQuota: 1, wantLimit: 500000, wantUsage: 100000, wantOK: true,
		},
		{
			name: "v2 path not visible falls back to mount root",
			files: map[string]string{
				"proc/self/cgroup":      "0::/elsewhere/x\n",
				"fs/cgroup.controllers": "",
				"fs/cpu.max":            "250000 100000\n",
			},
			wantQuota: 3,
		},
		{
			name: "hybrid: v1 controllers, unified without them",
			files: map[string]string{
				"proc/self/cgroup":                     "4:memory:/job\n2:cpu,cpuacct:/job\n0::/\n",
				"fs/unified/cgroup.controllers":        "",
				"fs/cpu,cpuacct/cpu.cfs_quota_us":      "-1\n",
				"fs/cpu,cpuacct/cpu.cfs_period_us":     "100000\n",
				"fs/cpu,cpuacct/job/cpu.cfs_quota_us":  "350000\n",
				"fs/cpu,cpuacct/job/cpu.cfs_period_us": "100000\n",
				"fs/memory/memory.limit_in_bytes":      "9223372036854771712\n",
				"fs/memory/memory.usage_in_bytes":      "5000000000\n",
				"fs/memory/job/memory.limit_in_bytes":  "2000000\n",
				"fs/memory/job/memory.usage_in_bytes":  "2500000\n",
			},
			wantQuota: 4, wantLimit: 2000000, wantUsage: 2500000, wantOK: true,
		},
		{
			name: "v1 no quota",
			files: map[string]string{
				"proc/self/cgroup":         "1:cpu:/\n",
				"fs/cpu/cpu.cfs_quota_us":  "-1\n",
				"fs/cpu/cpu.cfs_period_us": "100000\n",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFiles(t, dir, tt.files)
			c := findCgroups(filepath.Join(dir, "proc"), filepath.Join(dir, "fs"))
			if q := c.cpuQuota(); q != tt.wantQuota {
				t.Errorf("cpuQuota() = %d, want %d (cgroups %+v)", q, tt.wantQuota, c)
			}
			l, u, ok := c.memLimit()
			if l != tt.wantLimit || u != tt.wantUsage || ok != tt.wantOK {
				t.Errorf("memLimit() = %d, %d, %v; want %d, %d, %v (cgroups %+v)",
					l, u, ok, tt.wantLimit, tt.wantUsage, tt.wantOK, c)
			}
		})
	}
}

// TestSamplerCgroupLimits checks that limits reach the vector: Cores drops
// to the quota and memory to the limit, with MemFree what is left under it.
func TestSamplerCgroupLimits(t *testing.T) {
	dir := t.TempDir()
	proc := filepath.Join(dir, "proc")
	writeFakeProc(t, proc, []fakeProc{{pid: 1, start: 1, threads: "S"}}, "")
	writeFiles(t, dir, map[string]string{
		"proc/self/cgroup":      "0::/job\n",
		"fs/cgroup.controllers": "",
		"fs/job/cpu.max":        "100000 100000\n",
		"fs/job/memory.max":     "1048576\n",
		"fs/job/memory.current": "1048000\n",
	})
	s := NewSampler(proc, ScopeAll, 0, 1000)
	s.cgroups = findCgroups(proc, filepath.Join(dir, "fs"))
	v, err := s.Sample(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if v.Cores != 1 || v.MemTotal != 1048576 || v.MemFree != 576 {
		t.Errorf("Cores %d, MemTotal %d, MemFree %d; want 1, 1048576, 576", v.Cores, v.MemTotal, v.MemFree)
	}
}
