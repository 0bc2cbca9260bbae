package checkpoint

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
	"time"
)

func sampleImage() *Image {
	data := bytes.Repeat([]byte{1, 2, 3, 4}, 1024)
	return &Image{
		Arch: "x86_64", Kernel: "6.18.0", Pid: 42, Comm: "a b)c",
		Regs:       Regs{Rax: ^uint64(515), OrigRax: 230, Rip: 0x401000, Rsp: 0x7ffc0000, FSBase: 0x4a0000},
		XState:     []byte{9, 8, 7},
		SigMask:    1 << 9,
		SigActions: []SigAction{{Sig: 10, Handler: 0x401100, Flags: 0x04000000, Restorer: 0x401200, Mask: 3}},
		AltStack:   AltStack{SP: 0x1000, Flags: 2, Size: 8192},
		TIDAddress: 0x4a1000, RobustList: RobustList{Head: 0x4a1010, Len: 24},
		Rseq: Rseq{Ptr: 0x4a1100, Size: 32, Sig: 0x53053053},
		MM:   MM{StartCode: 0x401000, EndCode: 0x402000, StartBrk: 0x500000, Brk: 0x521000},
		Auxv: []byte{33, 0, 0, 0, 0, 0, 0, 0}, Exe: "/bin/x", Cwd: "/tmp", Umask: 0o22,
		Rlimits: []Rlimit{{Resource: 7, Cur: 1024, Max: 4096}},
		Mappings: []Mapping{
			{Start: 0x400000, End: 0x401000, Prot: ProtRead, Offset: 0, Dev: "fe:00", Inode: 7, Path: "/bin/x", Kind: KindFilePrivate, Data: data},
			{Start: 0x500000, End: 0x501000, Prot: ProtRead | ProtWrite, Dev: "00:00", Path: "[heap]", Kind: KindHeap, Data: data},
			{Start: 0x600000, End: 0x601000, Prot: ProtRead | ProtWrite, Flags: MapShared, Dev: "fe:00", Path: "/var/d", Kind: KindFileShared},
		},
		Files:   []File{{Fd: 1, Path: "/tmp/out", Flags: 0o2101, Offset: 77}},
		ITimers: [3]ITimer{{Interval: 20 * time.Millisecond, Value: 13 * time.Millisecond}, {}, {Value: time.Second}},
		Pending: []PendingSignal{{Info: [128]byte{35, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 7}},
			{Shared: true, Info: [128]byte{10}}},
		Creds: &Creds{Uid: [3]uint32{1000, 1000, 1001}, Gid: [3]uint32{100, 100, 100}, Groups: []uint32{4, 27}},
		Threads: []Thread{{Tid: 43, Regs: Regs{Rip: 0x401010, FSBase: 0x7f0000}, XState: []byte{1, 2}, SigMask: 5,
			AltStack: AltStack{Flags: 2}, TIDAddress: 0x7f0010, RobustList: RobustList{Head: 0x7f0020, Len: 24},
			Rseq: Rseq{Ptr: 0x7f0100, Size: 32, Sig: 0x53053053}, Pending: []PendingSignal{{Info: [128]byte{12}}}},
			{Tid: 44}},
		External: []ExternalFile{{Fd: 0, Flags: 0o2, Target: "/dev/pts/3", TTY: true, CtlTTY: true},
			{Fd: 2, Flags: 0o4001, Target: "pipe:[77]"}},
		CPU: CPU{XFeatures: 0x2e7, XStateSize: 2696, Flags: []string{"avx", "avx2", "sse"}},
		Objects: []KObject{
			{Fd: 3, Kind: ObjEventfd, Flags: 0o4002, Count: 1 << 40, Semaphore: true},
			{Fd: 4, Kind: ObjEpoll, Flags: 0o2000002, Watches: []EpollWatch{{Fd: 3, Events: 0x80000019, Data: 0x630000004d}, {Fd: 7, Events: 0x40000001}}},
			{Fd: 5, Kind: ObjTimerfd, Flags: 0o4002, Clock: 1, TimerFlags: 1, Value: 99*time.Second + 5, Interval: 2 * time.Second, Ticks: 3},
			{Fd: 6, Kind: ObjSignalfd, Flags: 0o2000002, SigMask: 0x4200},
			{Fd: 7, Kind: ObjEpoll, Watches: []EpollWatch{{Fd: 5, Events: 1}}},
			{Fd: 8, Kind: ObjInotify, Flags: 0o4000, Inotify: []InotifyWatch{{WD: 1, Mask: 2, Ino: 7, Dev: 0xfe00, Path: "/var/log/x"},
				{WD: 4, Mask: 0x300, Ino: 9, Dev: 0xfe00, Path: "/var/log"}}},
			{Fd: 9, Kind: ObjDeleted, Flags: 0o2102, Offset: 3, Mode: 0o600, Uid: 1000, Gid: 100, Path: "/tmp/#77", Data: []byte("abcdef")},
			{Fd: 10, Kind: ObjPipe, Flags: 0o4000, Pipe: 77, PipeSize: 65536, Data: []byte("queued")},
			{Fd: 11, Kind: ObjPipe, Flags: 0o1, Pipe: 77},
			{Fd: 12, Kind: ObjUnixPair, Flags: 0o2, Sock: 80, Peer: 81, Data: []byte("back")},
			{Fd: 13, Kind: ObjUnixPair, Flags: 0o4002, Sock: 81, Peer: 80},
		},
		Attrs: &ProcAttrs{OOMScoreAdj: -17, LoginUID: 1000, Personality: 0x0040000, Dumpable: 0, THPDisable: true,
			ChildSubreaper: true, NoNewPrivs: true, Membarrier: 1<<4 | 1<<8,
			Advice: []MapAdvice{{Start: 0x400000, End: 0x401000, Flags: AdvDontDump | AdvLocked}, {Start: 0x500000, End: 0x501000, Flags: AdvWipeOnFork}},
			Timers: []PosixTimer{{ID: 1, Clock: 1, Notify: sigevThreadID, Signo: 35, Value: 0x1234, Tid: 44, Left: 7 * time.Millisecond, Interval: 20 * time.Millisecond},
				{ID: 3, Clock: 0, Notify: sigevNone, Left: 1000 * time.Second}}},
	}
}

func encode(t testing.TB, img *Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := img.Encode(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestDecodeMeta: the metadata alone is the image without its pages, read
// without reading them (a stream cut right after the metadata will do).
func TestDecodeMeta(t *testing.T) {
	img := sampleImage()
	b := encode(t, img)
	meta, err := DecodeMeta(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	want := *img
	want.Mappings = append([]Mapping(nil), img.Mappings...)
	for i := range want.Mappings {
		want.Mappings[i].Data = meta.Mappings[i].Data
		if meta.Mappings[i].Data != nil && len(meta.Mappings[i].Data) != 0 {
			t.Errorf("mapping %d has %d bytes of data from DecodeMeta", i, len(meta.Mappings[i].Data))
		}
	}
	if !reflect.DeepEqual(meta, &want) {
		t.Fatalf("DecodeMeta:\n got %+v\nwant %+v", meta, &want)
	}
	// A stream cut in its pages: Decode refuses it, DecodeMeta never
	// gets there.
	cut := b[:len(b)-100]
	if _, err := Decode(bytes.NewReader(cut)); err == nil {
		t.Fatal("Decode of a cut stream: no error")
	}
	if _, err := DecodeMeta(bytes.NewReader(cut)); err != nil {
		t.Errorf("DecodeMeta of a stream cut in its pages: %v", err)
	}
	if _, err := DecodeMeta(bytes.NewReader(b[:40])); err == nil {
		t.Error("DecodeMeta of a cut metadata section: no error")
	}
}

func TestCodecRoundTrip(t *testing.T) {
	img := sampleImage()
	got, err := Decode(bytes.NewReader(encode(t, img)))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, img) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, img)
	}
}

func TestDecodeRejects(t *testing.T) {
	good := encode(t, sampleImage())
	flip := func(i int) []byte {
		b := bytes.Clone(good)
		b[i] ^= 0x40
		return b
	}
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, ErrTruncated},
		{"magic", flip(0), ErrBadMagic},
		{"version", flip(8), ErrVersion},
		{"core payload", flip(12 + 12 + 3), ErrChecksum},
		{"core type", flip(12), ErrCorrupt},
		{"page byte", flip(len(good) - 100), ErrChecksum},
		{"no end", good[:len(good)-16], ErrTruncated},
	}
	for cut := 1; cut < len(good); cut += 97 {
		tests = append(tests, struct {
			name string
			in   []byte
			want error
		}{"cut", good[:cut], ErrTruncated})
	}
	for _, tt := range tests {
		_, err := Decode(bytes.NewReader(tt.in))
		if !errors.Is(err, tt.want) {
			t.Errorf("%s (%d bytes): got %v, want %v", tt.name, len(tt.in), err, tt.want)
		}
	}
}

func TestEncodeRejectsBadData(t *testing.T) {
	img := sampleImage()
	img.Mappings[0].Data = img.Mappings[0].Data[:10]
	if err := img.Encode(&bytes.Buffer{}); err == nil {
		t.Fatal("Encode accepted data shorter than its mapping")
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(encode(f, sampleImage()))
	f.Add(encode(f, &Image{}))
	f.Fuzz(func(t *testing.T, in []byte) {
		img, err := Decode(bytes.NewReader(in))
		if err != nil {
			return
		}
		// Whatever decodes must encode and decode to the same image.
		again, err := Decode(bytes.NewReader(encode(t, img)))
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if !reflect.DeepEqual(again, img) {
			t.Fatalf("re-decode differs")
		}
	})
}

// FuzzDecodeMeta: the agent reads an image's metadata, from any local
// user, before its pages (to check the image against the user's rights):
// nothing panics, and whatever Decode accepts, DecodeMeta accepts with the
// same metadata.
func FuzzDecodeMeta(f *testing.F) {
	f.Add(encode(f, sampleImage()))
	f.Add(encode(f, &Image{}))
	f.Fuzz(func(t *testing.T, in []byte) {
		meta, merr := DecodeMeta(bytes.NewReader(in))
		img, err := Decode(bytes.NewReader(in))
		if err != nil {
			return
		}
		if merr != nil {
			t.Fatalf("Decode accepts what DecodeMeta refuses: %v", merr)
		}
		if meta.Pid != img.Pid || meta.Cwd != img.Cwd || len(meta.Mappings) != len(img.Mappings) {
			t.Fatalf("metadata differs: pid %d/%d, %d/%d mappings", meta.Pid, img.Pid, len(meta.Mappings), len(img.Mappings))
		}
	})
}
