package checkpoint

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseMapsLine(t *testing.T) {
	tests := []struct {
		line string
		want Mapping
		bad  bool
	}{
		{line: "00400000-00401000 r--p 00000000 fe:00 9986228                            /tmp/ck/p",
			want: Mapping{Start: 0x400000, End: 0x401000, Prot: ProtRead, Dev: "fe:00", Inode: 9986228, Path: "/tmp/ck/p", Kind: KindFilePrivate}},
		{line: "004a9000-004ae000 rw-p 00000000 00:00 0 ",
			want: Mapping{Start: 0x4a9000, End: 0x4ae000, Prot: ProtRead | ProtWrite, Dev: "00:00", Kind: KindAnon}},
		{line: "34e2d000-34e4f000 rw-p 00000000 00:00 0                                  [heap]",
			want: Mapping{Start: 0x34e2d000, End: 0x34e4f000, Prot: 3, Dev: "00:00", Path: "[heap]", Kind: KindHeap}},
		{line: "7f7823b4e000-7f7823b50000 r-xp 00000000 00:00 0                          [vdso]",
			want: Mapping{Start: 0x7f7823b4e000, End: 0x7f7823b50000, Prot: ProtRead | ProtExec, Dev: "00:00", Path: "[vdso]", Kind: KindVDSO}},
		{line: "7f7823b4c000-7f7823b4e000 r--p 00000000 00:00 0                          [vvar_vclock]",
			want: Mapping{Start: 0x7f7823b4c000, End: 0x7f7823b4e000, Prot: ProtRead, Dev: "00:00", Path: "[vvar_vclock]", Kind: KindVVAR}},
		{line: "7ffd06101000-7ffd06122000 rw-p 00000000 00:00 0                          [stack]",
			want: Mapping{Start: 0x7ffd06101000, End: 0x7ffd06122000, Prot: 3, Dev: "00:00", Path: "[stack]", Kind: KindStack}},
		{line: "ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]",
			want: Mapping{Start: 0xffffffffff600000, End: 0xffffffffff601000, Prot: ProtExec, Dev: "00:00", Path: "[vsyscall]", Kind: KindVsyscall}},
		{line: "7f0000000000-7f0000001000 rw-s 00001000 00:05 12 /dev/shm/my file (deleted)",
			want: Mapping{Start: 0x7f0000000000, End: 0x7f0000001000, Prot: 3, Flags: MapShared, Offset: 0x1000, Dev: "00:05", Inode: 12, Path: "/dev/shm/my file (deleted)", Kind: KindAnonShared}},
		{line: "7f0000000000-7f0000001000 rw-s 00000000 00:05 12 /dev/shm/named",
			want: Mapping{Start: 0x7f0000000000, End: 0x7f0000001000, Prot: 3, Flags: MapShared, Dev: "00:05", Inode: 12, Path: "/dev/shm/named", Kind: KindFileShared}},
		{line: "1000-2000 ---p 0 00:00 0", want: Mapping{Start: 0x1000, End: 0x2000, Dev: "00:00", Kind: KindAnon}},
		{line: "2000-1000 r--p 0 00:00 0", bad: true},
		{line: "1000-2000 rwzp 0 00:00 0", bad: true},
		{line: "1000 r--p 0 00:00 0", bad: true},
		{line: "1000-2000 r--p 0 0000 0", bad: true},
		{line: "1000-2000 r--p 0 00:00", bad: true},
		{line: "1000-2000 r--p zz 00:00 0", bad: true},
	}
	for _, tt := range tests {
		got, err := parseMapsLine(tt.line)
		if tt.bad {
			if err == nil {
				t.Errorf("%q: no error", tt.line)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%q:\n got %+v, %v\nwant %+v", tt.line, got, err, tt.want)
		}
	}
}

func FuzzParseMapsLine(f *testing.F) {
	f.Add("00400000-00401000 r--p 00000000 fe:00 9986228    /tmp/ck/p")
	f.Add("1000-2000 rw-s 0 00:00 0 a  b")
	f.Fuzz(func(t *testing.T, line string) {
		m, err := parseMapsLine(line)
		if err != nil {
			return
		}
		if m.Start >= m.End || m.Kind == 0 {
			t.Fatalf("accepted %q as %+v", line, m)
		}
		if m.Path != "" && !strings.Contains(line, m.Path) {
			t.Fatalf("path %q not in %q", m.Path, line)
		}
	})
}

const sampleStat = "13340 (a b) c)) S 13312 13312 12252 0 -1 4194304 101 0 0 0 0 0 0 0 20 0 3 0 389510 3133440 412 " +
	"18446744073709551615 94502702542848 94502702562729 140734740238688 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0 " +
	"94502702578736 94502702580352 94503162851328 140734740241085 140734740241105 140734740241105 140734740242411 0\n"

func TestParseStat(t *testing.T) {
	st, err := parseStat(sampleStat)
	if err != nil {
		t.Fatal(err)
	}
	want := statInfo{Comm: "a b) c)", State: 'S', Threads: 3, MM: MM{StartCode: 94502702542848, EndCode: 94502702562729,
		StartStack: 140734740238688, StartData: 94502702578736, EndData: 94502702580352, StartBrk: 94503162851328,
		ArgStart: 140734740241085, ArgEnd: 140734740241105, EnvStart: 140734740241105, EnvEnd: 140734740242411}}
	if st != want {
		t.Fatalf("got %+v\nwant %+v", st, want)
	}
	for _, bad := range []string{"", "1 (x S 1", "1 (x) S 1 2 3", "1 (x) SS" + sampleStat[strings.Index(sampleStat, ") S")+3:],
		strings.Replace(sampleStat, "94502702542848", "x", 1)} {
		if _, err := parseStat(bad); err == nil {
			t.Errorf("parseStat(%q): no error", bad)
		}
	}
}

func FuzzParseStat(f *testing.F) {
	f.Add(sampleStat)
	f.Fuzz(func(t *testing.T, s string) {
		st, err := parseStat(s)
		if err == nil && !strings.Contains(s, "("+st.Comm+")") {
			t.Fatalf("comm %q not in %q", st.Comm, s)
		}
	})
}

const sampleStatus = "Name:\tcat\nUmask:\t0022\nState:\tR (running)\nTracerPid:\t0\nThreads:\t1\n" +
	"SigQ:\t0/96365\nSigPnd:\t0000000000000000\nShdPnd:\t0000000000000100\nSigBlk:\t0000000000010000\n" +
	"SigIgn:\t0000000000001000\nSigCgt:\t0000000000000400\n"

func TestParseStatus(t *testing.T) {
	st, err := parseStatus(sampleStatus)
	if err != nil {
		t.Fatal(err)
	}
	want := statusInfo{Umask: 0o22, Threads: 1, ShdPnd: 0x100, SigBlk: 0x10000, SigIgn: 0x1000, SigCgt: 0x400}
	if st != want {
		t.Fatalf("got %+v, want %+v", st, want)
	}
	if _, err := parseStatus(strings.Replace(sampleStatus, "Threads:\t1\n", "", 1)); err == nil {
		t.Error("missing Threads accepted")
	}
	if _, err := parseStatus(strings.Replace(sampleStatus, "0000000000010000", "xyz", 1)); err == nil {
		t.Error("bad SigBlk accepted")
	}
}

func TestParseFdinfo(t *testing.T) {
	pos, flags, err := parseFdinfo("pos:\t77\nflags:\t02102001\nmnt_id:\t24\nino:\t3\n")
	if err != nil || pos != 77 || flags != 0o2102001 {
		t.Fatalf("got %d %o %v", pos, flags, err)
	}
	if _, _, err := parseFdinfo("flags:\t01\n"); err == nil {
		t.Error("missing pos accepted")
	}
}

func TestResumeRegs(t *testing.T) {
	neg := func(n int64) uint64 { return uint64(n) }
	tests := []struct {
		name    string
		in, out Regs
	}{
		{"not in syscall", Regs{Rax: 5, OrigRax: neg(-1), Rip: 100}, Regs{Rax: 5, OrigRax: neg(-1), Rip: 100}},
		{"done syscall", Regs{Rax: 0, OrigRax: 1, Rip: 100}, Regs{Rax: 0, OrigRax: neg(-1), Rip: 100}},
		{"ERESTARTSYS", Regs{Rax: neg(-512), OrigRax: 0, Rip: 100}, Regs{Rax: 0, OrigRax: neg(-1), Rip: 98}},
		{"ERESTARTNOINTR", Regs{Rax: neg(-513), OrigRax: 7, Rip: 100}, Regs{Rax: 7, OrigRax: neg(-1), Rip: 98}},
		{"ERESTARTNOHAND", Regs{Rax: neg(-514), OrigRax: 34, Rip: 100}, Regs{Rax: 34, OrigRax: neg(-1), Rip: 98}},
		{"ERESTART_RESTARTBLOCK", Regs{Rax: neg(-516), OrigRax: 230, Rip: 100}, Regs{Rax: neg(-4), OrigRax: neg(-1), Rip: 100}},
		{"relative nanosleep", Regs{Rax: neg(-516), OrigRax: 35, Rip: 100}, Regs{Rax: neg(-4), OrigRax: neg(-1), Rip: 100}},
		{"poll again", Regs{Rax: neg(-516), OrigRax: 7, Rdx: neg(-1), Rip: 100}, Regs{Rax: 7, Rdx: neg(-1), OrigRax: neg(-1), Rip: 98}},
		{"absolute clock_nanosleep again", Regs{Rax: neg(-516), OrigRax: 230, Rsi: 1, Rip: 100}, Regs{Rax: 230, Rsi: 1, OrigRax: neg(-1), Rip: 98}},
		{"FUTEX_WAIT_BITSET_PRIVATE again", Regs{Rax: neg(-516), OrigRax: 202, Rsi: 9 | 128, Rip: 100}, Regs{Rax: 202, Rsi: 9 | 128, OrigRax: neg(-1), Rip: 98}},
		{"relative FUTEX_WAIT", Regs{Rax: neg(-516), OrigRax: 202, Rsi: 128, Rip: 100}, Regs{Rax: neg(-4), Rsi: 128, OrigRax: neg(-1), Rip: 100}},
		{"restart code outside a syscall", Regs{Rax: neg(-512), OrigRax: neg(-1), Rip: 100}, Regs{Rax: neg(-512), OrigRax: neg(-1), Rip: 100}},
	}
	for _, tt := range tests {
		if got := resumeRegs(tt.in); got != tt.out {
			t.Errorf("%s: got %+v, want %+v", tt.name, got, tt.out)
		}
	}
}

func TestPickScratch(t *testing.T) {
	a := []Mapping{{Start: 1 << 32, End: 1<<32 + 4096}}
	b := []Mapping{{Start: 2 << 32, End: 3<<32 + 1}}
	got, ok := pickScratch(a, b)
	if !ok || got != 4<<32 {
		t.Fatalf("got %#x %v, want %#x", got, ok, uint64(4<<32))
	}
}

func TestFindSyscall(t *testing.T) {
	if a, ok := findSyscall([]byte{0x90, 0x0f, 0x05, 0xc3}, 0x1000); !ok || a != 0x1001 {
		t.Fatalf("got %#x %v", a, ok)
	}
	if _, ok := findSyscall([]byte{0x0f, 0x90, 0x05}, 0); ok {
		t.Fatal("found a syscall in none")
	}
}
