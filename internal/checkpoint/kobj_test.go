package checkpoint

import (
	"encoding/binary"
	"fmt"
	"io/fs"
	"reflect"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// fdinfo texts as Linux 6.18 writes them.
const (
	fdinfoEventfd = "pos:\t0\nflags:\t02004002\nmnt_id:\t17\nino:\t1038\neventfd-count:        1fffffffd\neventfd-id: 2\neventfd-semaphore: 1\n"
	fdinfoTimerfd = "pos:\t0\nflags:\t04002\nmnt_id:\t17\nino:\t1038\nclockid: 1\nticks: 3\nsettime flags: 01\nit_value: (99, 999520178)\nit_interval: (2, 0)\n"
	fdinfoSigfd   = "pos:\t0\nflags:\t02000002\nmnt_id:\t17\nino:\t1038\nsigmask:\t0000000000004200\n"
	fdinfoEpoll   = "pos:\t0\nflags:\t02000002\nmnt_id:\t17\nino:\t1038\n" +
		"tfd:        7 events: 40000019 data:                0  pos:0 ino:630c84 sdev:f\n" +
		"tfd:        5 events: 80000019 data:       630000004d  pos:0 ino:40e sdev:10\n"
)

func TestParseObject(t *testing.T) {
	tests := []struct {
		kind ObjKind
		info string
		want KObject
	}{
		{ObjEventfd, fdinfoEventfd, KObject{Fd: 4, Kind: ObjEventfd, Flags: 0o2004002, Count: 0x1fffffffd, Semaphore: true}},
		{ObjEventfd, "pos:\t0\nflags:\t02\neventfd-count:                0\n", KObject{Fd: 4, Kind: ObjEventfd, Flags: 2}}, // before 6.6: no semaphore line
		{ObjTimerfd, fdinfoTimerfd, KObject{Fd: 4, Kind: ObjTimerfd, Flags: 0o4002, Clock: 1, TimerFlags: 1, Ticks: 3,
			Value: 99*time.Second + 999520178, Interval: 2 * time.Second}},
		{ObjSignalfd, fdinfoSigfd, KObject{Fd: 4, Kind: ObjSignalfd, Flags: 0o2000002, SigMask: 0x4200}},
		{ObjEpoll, fdinfoEpoll, KObject{Fd: 4, Kind: ObjEpoll, Flags: 0o2000002, Watches: []EpollWatch{
			{Fd: 7, Events: 0x40000019, ino: 0x630c84}, {Fd: 5, Events: 0x80000019, Data: 0x630000004d, ino: 0x40e}}}},
		{ObjEpoll, "pos:\t0\nflags:\t02\n", KObject{Fd: 4, Kind: ObjEpoll, Flags: 2}}, // an empty interest list
		{ObjInotify, "pos:\t0\nflags:\t04000\n" +
			"inotify wd:3 ino:3c4a3 sdev:fe00001 mask:300 ignored_mask:0 fhandle-bytes:8 fhandle-type:1 f_handle:a3c4030000000000\n" +
			"inotify wd:1 ino:2 sdev:800005 mask:80000002 ignored_mask:0 fhandle-bytes:4 fhandle-type:1 f_handle:02000000\n",
			KObject{Fd: 4, Kind: ObjInotify, Flags: 0o4000, Inotify: []InotifyWatch{
				{WD: 1, Mask: 0x80000002, Ino: 2, Dev: unix.Mkdev(8, 5), handle: []byte{2, 0, 0, 0}, htype: 1},
				{WD: 3, Mask: 0x300, Ino: 0x3c4a3, Dev: unix.Mkdev(0xfe, 1), handle: []byte{0xa3, 0xc4, 3, 0, 0, 0, 0, 0}, htype: 1}}}},
	}
	for _, tt := range tests {
		got, err := parseObject(tt.kind, 4, tt.info)
		if err != nil {
			t.Errorf("%s: %v", tt.kind, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", tt.kind, got, tt.want)
		}
	}
}

func TestParseObjectRejects(t *testing.T) {
	tests := []struct {
		name string
		kind ObjKind
		info string
	}{
		{"no flags", ObjEventfd, "pos:\t0\neventfd-count: 1\n"},
		{"no count", ObjEventfd, "pos:\t0\nflags:\t02\n"},
		{"count not hex", ObjEventfd, "pos:\t0\nflags:\t02\neventfd-count: xyz\n"},
		{"timer without interval", ObjTimerfd, strings.Replace(fdinfoTimerfd, "it_interval: (2, 0)\n", "", 1)},
		{"timer nsec too large", ObjTimerfd, strings.Replace(fdinfoTimerfd, "999520178", "1999520178", 1)},
		{"timer value not a pair", ObjTimerfd, strings.Replace(fdinfoTimerfd, "(99, 999520178)", "99", 1)},
		{"no sigmask", ObjSignalfd, "pos:\t0\nflags:\t02\n"},
		{"watch without data", ObjEpoll, "pos:\t0\nflags:\t02\ntfd: 7 events: 19 pos:0 ino:1 sdev:f\n"},
		{"watch fd negative", ObjEpoll, "pos:\t0\nflags:\t02\ntfd: -7 events: 19 data: 0 pos:0 ino:1 sdev:f\n"},
		{"inotify without a handle", ObjInotify, "pos:\t0\nflags:\t02\ninotify wd:1 ino:2 sdev:5 mask:2 ignored_mask:0\n"},
		{"inotify handle not hex", ObjInotify, "pos:\t0\nflags:\t02\ninotify wd:1 ino:2 sdev:5 mask:2 fhandle-type:1 f_handle:zz\n"},
	}
	for _, tt := range tests {
		if _, err := parseObject(tt.kind, 4, tt.info); err == nil {
			t.Errorf("%s: accepted", tt.name)
		}
	}
}

func TestObjectRefusals(t *testing.T) {
	fds := []fdView{{Fd: 5, Target: "anon_inode:[eventfd]", ID: fileID{Ino: 0x40e}}, {Fd: 6, Target: "pipe:[77]", ID: fileID{Ino: 77}}}
	tests := []struct {
		name string
		objs []KObject
		want []string // details
	}{
		{"watches in place", []KObject{{Fd: 4, Kind: ObjEpoll, Flags: 0o2000002, Watches: []EpollWatch{{Fd: 5, ino: 0x40e}, {Fd: 6, ino: 77}}}}, nil},
		{"a closed watch", []KObject{{Fd: 4, Kind: ObjEpoll, Watches: []EpollWatch{{Fd: 9, ino: 3}}}},
			[]string{"fd 4: epoll watches fd 9, which is closed (the file is still open through another descriptor)"}},
		{"another file", []KObject{{Fd: 4, Kind: ObjEpoll, Watches: []EpollWatch{{Fd: 6, ino: 78}}}},
			[]string{"fd 4: epoll watches fd 6 as another file than the one open there now"}},
		{"O_ASYNC", []KObject{{Fd: 5, Kind: ObjEventfd, Flags: 0o20002}},
			[]string{"fd 5: eventfd with open flags 020000 (only O_NONBLOCK and O_CLOEXEC are carried)"}},
		{"inotify numbers freed", []KObject{{Fd: 7, Kind: ObjInotify, Inotify: []InotifyWatch{{WD: 2}, {WD: 2000}}}},
			[]string{"fd 7: inotify watch 2000 comes after 1997 freed numbers (a restore takes back at most 1024)"}},
	}
	for _, tt := range tests {
		var got []string
		for _, r := range objectRefusals(tt.objs, fds) {
			if r.Code != Unsupported {
				t.Errorf("%s: code %v", tt.name, r.Code)
			}
			got = append(got, r.Detail)
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s:\n got %q\nwant %q", tt.name, got, tt.want)
		}
	}
}

func TestInnerPipes(t *testing.T) {
	fds := []fdView{{Fd: 3, Target: "pipe:[7]"}, {Fd: 4, Target: "pipe:[7]"}, {Fd: 5, Target: "pipe:[8]"}, {Fd: 6, Target: "pipe:[9]"},
		{Fd: 7, Target: "pipe:[9]"}, {Fd: 8, Target: "pipe:[10]"}, {Fd: 9, Target: "/tmp/fifo"}}
	flags := map[int]uint32{3: 0, 4: 1, 5: 0, 6: 0o4000, 7: 0o4000, 8: 1}
	got := innerPipes(fds, flags)
	if !reflect.DeepEqual(got, map[uint64]bool{7: true}) {
		t.Errorf("inner pipes %v, want only 7 (8 and 10 have one end here, 9 two read ends)", got)
	}
	if _, ok := pipeID("pipe:[12"); ok {
		t.Error("pipe:[12 accepted")
	}
}

func TestEpollOrder(t *testing.T) {
	objs := []KObject{
		{Fd: 3, Kind: ObjEpoll, Watches: []EpollWatch{{Fd: 4}, {Fd: 6}}},
		{Fd: 4, Kind: ObjEpoll, Watches: []EpollWatch{{Fd: 5}, {Fd: 7}}},
		{Fd: 5, Kind: ObjEventfd},
		{Fd: 6, Kind: ObjEpoll, Watches: []EpollWatch{{Fd: 4}}},
		{Fd: 7, Kind: ObjTimerfd},
	}
	got, err := epollOrder(objs)
	if err != nil {
		t.Fatal(err)
	}
	var fds []int
	for _, o := range got {
		fds = append(fds, o.Fd)
	}
	if want := []int{5, 7, 4, 6, 3}; !reflect.DeepEqual(fds, want) {
		t.Fatalf("order %v, want %v", fds, want)
	}
	objs[1].Watches = append(objs[1].Watches, EpollWatch{Fd: 6}) // 4 -> 6 -> 4
	if _, err := epollOrder(objs); err == nil {
		t.Fatal("a cycle was ordered")
	}
}

func TestRefusalsObjectsAndDevices(t *testing.T) {
	chr := fs.ModeDevice | fs.ModeCharDevice
	tests := []struct {
		fd   fdView
		want ReasonCode // 0: moves
	}{
		{fdView{Fd: 3, Target: "anon_inode:[eventfd]"}, 0},
		{fdView{Fd: 3, Target: "anon_inode:[eventpoll]"}, 0},
		{fdView{Fd: 3, Target: "anon_inode:[timerfd]"}, 0},
		{fdView{Fd: 3, Target: "anon_inode:[signalfd]"}, 0},
		{fdView{Fd: 3, Target: "anon_inode:inotify"}, 0},
		{fdView{Fd: 3, Target: "anon_inode:[pidfd]"}, Unsupported},
		{fdView{Fd: 3, Target: "/dev/urandom", Mode: chr, Rdev: unix.Mkdev(1, 9)}, 0},
		{fdView{Fd: 3, Target: "/dev/random", Mode: chr, Rdev: unix.Mkdev(1, 8)}, 0},
		{fdView{Fd: 3, Target: "/dev/zero", Mode: chr, Rdev: unix.Mkdev(1, 5)}, 0},
		{fdView{Fd: 3, Target: "/dev/full", Mode: chr, Rdev: unix.Mkdev(1, 7)}, 0},
		{fdView{Fd: 3, Target: "/dev/null", Mode: chr, Rdev: unix.Mkdev(1, 3)}, 0},
		{fdView{Fd: 3, Target: "/tmp/my-urandom", Mode: chr, Rdev: unix.Mkdev(1, 9)}, Device}, // reopened by its usual name only
		{fdView{Fd: 3, Target: "/dev/mem", Mode: chr, Rdev: unix.Mkdev(1, 1)}, Device},
		{fdView{Fd: 3, Target: "/dev/tty", Mode: chr, Rdev: unix.Mkdev(5, 0)}, Device},
		{fdView{Fd: 3, Target: "/tmp/#123 (deleted)", Size: 100}, 0},
		{fdView{Fd: 3, Target: "/tmp/x (deleted)", Size: maxDeletedBytes + 1}, DeletedFile},
		{fdView{Fd: 3, Target: "/tmp/x (deleted)", Nlink: 1}, DeletedFile},
		{fdView{Fd: 3, Target: "/memfd:buf (deleted)"}, DeletedFile},
	}
	for _, tt := range tests {
		rs := refusals(procView{Fds: []fdView{tt.fd}, Restore: restoreView{Cwd: "/", Root: "/", Exe: "/x", Now: map[string]pathNow{"/": {}, "/x": {}}}})
		var got ReasonCode
		for _, r := range rs {
			if strings.HasPrefix(r.Detail, "fd 3") || strings.HasPrefix(r.Detail, "deleted files of") {
				got = r.Code
			}
		}
		if got != tt.want {
			t.Errorf("%s: %v, want %v (%v)", tt.fd.Target, got, tt.want, rs)
		}
	}
}

// unixDiagMsg builds one sock_diag answer for a Unix socket.
func unixDiagMsg(ino uint32, typ uint8, peer uint32, named bool, shutdown uint8) []byte {
	le := binary.LittleEndian
	body := []byte{unix.AF_UNIX, typ, 1, 0}
	body = le.AppendUint32(body, ino)
	body = append(body, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)
	attr := func(t uint16, v []byte) {
		body = le.AppendUint16(body, uint16(4+len(v)))
		body = le.AppendUint16(body, t)
		body = append(body, v...)
		for len(body)%4 != 0 {
			body = append(body, 0)
		}
	}
	if named {
		attr(unixDiagName, []byte("/run/x.sock"))
	}
	if peer != 0 {
		attr(unixDiagPeer, le.AppendUint32(nil, peer))
	}
	attr(unixDiagShutdwn, []byte{shutdown})
	h := le.AppendUint32(nil, uint32(unix.NLMSG_HDRLEN+len(body)))
	h = le.AppendUint16(h, unix.SOCK_DIAG_BY_FAMILY)
	h = append(h, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
	return append(h, body...)
}

func TestUnixPairs(t *testing.T) {
	le := binary.LittleEndian
	var b []byte
	for _, m := range [][]byte{
		unixDiagMsg(10, unix.SOCK_STREAM, 11, false, 0), unixDiagMsg(11, unix.SOCK_STREAM, 10, false, 0), // a pair here
		unixDiagMsg(12, unix.SOCK_STREAM, 99, false, 0), // connected to another process
		unixDiagMsg(13, unix.SOCK_DGRAM, 14, false, 0), unixDiagMsg(14, unix.SOCK_DGRAM, 13, false, 0),
		unixDiagMsg(15, unix.SOCK_STREAM, 16, false, 1), unixDiagMsg(16, unix.SOCK_STREAM, 15, false, 0),
		unixDiagMsg(17, unix.SOCK_STREAM, 0, true, 0), // a listener
	} {
		b = append(b, m...)
	}
	done := le.AppendUint32(nil, unix.NLMSG_HDRLEN+4)
	done = le.AppendUint16(done, unix.NLMSG_DONE)
	done = append(done, make([]byte, 14)...)
	socks := map[uint64]unixSock{}
	if d, err := parseUnixDiag(b, socks); err != nil || d {
		t.Fatalf("parse: done %v, %v", d, err)
	}
	if d, err := parseUnixDiag(done, socks); err != nil || !d {
		t.Fatalf("done message: done %v, %v", d, err)
	}
	if s := socks[10]; s.Peer != 11 || s.Type != unix.SOCK_STREAM || s.Named {
		t.Errorf("socket 10: %+v", s)
	}
	if !socks[17].Named || socks[15].Shutdown != 1 {
		t.Errorf("sockets 15, 17: %+v %+v", socks[15], socks[17])
	}
	var fds []fdView
	for i := 10; i <= 17; i++ {
		fds = append(fds, fdView{Fd: i, Target: fmt.Sprintf("socket:[%d]", i)})
	}
	fds = append(fds, fdView{Fd: 30, Target: "socket:[10]"}) // a duplicate
	in, why := innerPairs(fds, socks)
	if !reflect.DeepEqual(in, map[uint64]bool{10: true, 11: true}) {
		t.Errorf("inner pairs %v", in)
	}
	if len(why) != 4 || !strings.Contains(why[13], "datagrams") || !strings.Contains(why[15], "shut down") {
		t.Errorf("why %v", why)
	}
	if _, err := parseUnixDiag([]byte{200, 0, 0, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, socks); err == nil {
		t.Error("a message longer than the buffer accepted")
	}
}

func TestAnonName(t *testing.T) {
	for path, want := range map[string]string{"[anon:ssi-name]": "ssi-name", "[anon_shmem:buf]": "buf", "[anon:]": "", "[heap]": "", "/lib/x": "", "[anon:x": ""} {
		got, ok := anonName(path)
		if ok != (want != "") || got != want && ok {
			t.Errorf("%q: %q %v, want %q", path, got, ok, want)
		}
	}
}
