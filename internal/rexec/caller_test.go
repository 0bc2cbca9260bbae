package rexec

import (
	"os"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestParseStatus(t *testing.T) {
	groups, umask, err := parseStatus([]byte("Name:\tsh\nUmask:\t0027\nGroups:\t4 24 27 \nUid:\t1000\n"))
	if err != nil || umask != 0o27 || len(groups) != 3 || groups[2] != 27 {
		t.Fatalf("parseStatus = %v %o %v", groups, umask, err)
	}
	for _, bad := range []string{"Groups:\t1\n", "Umask:\t0022\n", "Umask:\t9\nGroups:\n", "Umask:\t0022\nGroups:\tx\n"} {
		if _, _, err := parseStatus([]byte(bad)); err == nil {
			t.Errorf("parseStatus(%q) accepted", bad)
		}
	}
}

func TestParseStatNice(t *testing.T) {
	stat := "42 (a (b) c) S 7 42 42 0 -1 4194304 1 0 0 0 0 0 0 0 20 -5 1 0 100 0 0"
	ppid, pgid, nice, err := parseStatNice([]byte(stat))
	if err != nil || ppid != 7 || pgid != 42 || nice != -5 {
		t.Fatalf("parseStatNice = %d %d %d %v", ppid, pgid, nice, err)
	}
	if _, _, _, err := parseStatNice([]byte("42 (x) S 1 2")); err == nil {
		t.Error("a short stat was accepted")
	}
}

func TestParseLimits(t *testing.T) {
	b, err := os.ReadFile("/proc/self/limits")
	if err != nil {
		t.Skip(err)
	}
	lims, err := parseLimits(b)
	if err != nil {
		t.Fatal(err)
	}
	var want unix.Rlimit
	unix.Getrlimit(unix.RLIMIT_STACK, &want)
	if got := lims[unix.RLIMIT_STACK]; got.Cur != want.Cur || got.Max != want.Max {
		t.Errorf("stack limit %+v, getrlimit says %+v", got, want)
	}
	if _, err := parseLimits([]byte(strings.Replace(string(b), "Max open files", "Max open filez", 1))); err == nil {
		t.Error("a limits file without open files was accepted")
	}
}

func TestPermits(t *testing.T) {
	file := func(mode, uid, gid uint32) *unix.Stat_t {
		return &unix.Stat_t{Mode: unix.S_IFREG | mode, Uid: uid, Gid: gid}
	}
	user := &Spec{UID: 1000, GID: 1000, Groups: []int{1000, 27}}
	root := &Spec{}
	tests := []struct {
		name string
		st   *unix.Stat_t
		s    *Spec
		want bool
	}{
		{"owner may", file(0o700, 1000, 0), user, true},
		{"owner bits rule even if other may", file(0o007, 1000, 0), user, false},
		{"group may", file(0o070, 0, 27), user, true},
		{"other may", file(0o001, 0, 0), user, true},
		{"nobody may", file(0o600, 0, 0), user, false},
		{"root needs an x bit", file(0o600, 0, 0), root, false},
		{"root with any x bit", file(0o010, 5, 5), root, true},
	}
	for _, tc := range tests {
		if got := permits(tc.st, tc.s, 0o1); got != tc.want {
			t.Errorf("%s: permits = %v", tc.name, got)
		}
	}
}

func TestConfine(t *testing.T) {
	hard := func(res int) (uint64, bool) {
		switch res {
		case 7: // RLIMIT_NOFILE
			return 4096, true
		case 3: // RLIMIT_STACK
			return ^uint64(0), true
		}
		return 0, false
	}
	for _, tc := range []struct {
		name     string
		nice     int
		in, want []Rlimit
		wantNice int
	}{
		{"nice -20 becomes 0", -20, nil, nil, 0},
		{"nice 10 stays", 10, nil, nil, 10},
		{"nofile above the node's hard limit", 0, []Rlimit{{7, 1 << 20, 1 << 20}}, []Rlimit{{7, 4096, 4096}}, 0},
		{"nofile within it", 0, []Rlimit{{7, 1024, 2048}}, []Rlimit{{7, 1024, 2048}}, 0},
		{"soft above a lowered hard", 0, []Rlimit{{7, 8192, 10000}}, []Rlimit{{7, 4096, 4096}}, 0},
		{"unlimited where the node is unlimited", 0, []Rlimit{{3, ^uint64(0), ^uint64(0)}}, []Rlimit{{3, ^uint64(0), ^uint64(0)}}, 0},
		{"unknown resource left as asked", 0, []Rlimit{{9, 5, 6}}, []Rlimit{{9, 5, 6}}, 0},
	} {
		s := Spec{Nice: tc.nice, Rlimits: tc.in}
		s.Confine(hard)
		if s.Nice != tc.wantNice || !reflect.DeepEqual(s.Rlimits, tc.want) {
			t.Errorf("%s: nice %d, limits %v; want %d, %v", tc.name, s.Nice, s.Rlimits, tc.wantNice, tc.want)
		}
	}
}
