package checkpoint

import (
	"io/fs"
	"reflect"
	"testing"

	"golang.org/x/sys/unix"
)

const sampleTTYDrivers = `/dev/tty             /dev/tty        5       0 system:/dev/tty
/dev/console         /dev/console    5       1 system:console
/dev/ptmx            /dev/ptmx       5       2 system
serial               /dev/ttyS       4      64-95 serial
pty_slave            /dev/pts      136 0-1048575 pty:slave
broken line
`

func TestExternalFile(t *testing.T) {
	ds := parseTTYDrivers(sampleTTYDrivers)
	if want := []ttyDriver{{5, 0, 0}, {5, 1, 1}, {5, 2, 2}, {4, 64, 95}, {136, 0, 1048575}}; !reflect.DeepEqual(ds, want) {
		t.Fatalf("drivers %v, want %v", ds, want)
	}
	chr := fs.ModeDevice | fs.ModeCharDevice
	pts4 := unix.Mkdev(136, 4)
	tests := []struct {
		name   string
		f      fdView
		ttyNr  uint64
		tty    bool
		ctlTTY bool
	}{
		{"pipe", fdView{1, "pipe:[7]", fs.ModeNamedPipe, 0, fileID{}, 0, 0}, pts4, false, false},
		{"socket", fdView{1, "socket:[7]", fs.ModeSocket, 0, fileID{}, 0, 0}, 0, false, false},
		{"controlling pty", fdView{0, "/dev/pts/4", chr, pts4, fileID{}, 0, 0}, pts4, true, true},
		{"other pty", fdView{0, "/dev/pts/5", chr, unix.Mkdev(136, 5), fileID{}, 0, 0}, pts4, true, false},
		{"pty, no controlling terminal", fdView{0, "/dev/pts/4", chr, pts4, fileID{}, 0, 0}, 0, true, false},
		{"/dev/tty", fdView{0, "/dev/tty", chr, unix.Mkdev(5, 0), fileID{}, 0, 0}, pts4, true, true},
		{"serial", fdView{0, "/dev/ttyS1", chr, unix.Mkdev(4, 65), fileID{}, 0, 0}, 0, true, false},
		{"vt, not listed", fdView{0, "/dev/tty1", chr, unix.Mkdev(4, 1), fileID{}, 0, 0}, 0, false, false},
		{"null", fdView{0, "/dev/null", chr, unix.Mkdev(1, 3), fileID{}, 0, 0}, 0, false, false},
		{"block device with a tty number", fdView{0, "/dev/sdx", fs.ModeDevice, pts4, fileID{}, 0, 0}, pts4, false, false},
	}
	for _, tt := range tests {
		x := externalFile(tt.f, unix.O_RDWR, tt.ttyNr, ds)
		want := ExternalFile{Fd: tt.f.Fd, Flags: unix.O_RDWR, Target: tt.f.Target, TTY: tt.tty, CtlTTY: tt.ctlTTY}
		if x != want {
			t.Errorf("%s: %+v, want %+v", tt.name, x, want)
		}
	}
}

func TestRefusalsExternal(t *testing.T) {
	chr := fs.ModeDevice | fs.ModeCharDevice
	v := procView{Threads: 1, Fds: []fdView{{0, "/dev/pts/3", chr, 0, fileID{}, 0, 0}, {1, "pipe:[7]", fs.ModeNamedPipe, 0, fileID{}, 0, 0},
		{2, "socket:[8]", fs.ModeSocket, 0, fileID{}, 0, 0}, {3, "pipe:[9]", fs.ModeNamedPipe, 0, fileID{}, 0, 0}}, Restore: goodRestore()}
	tests := []struct {
		ext  []int
		want []ReasonCode
	}{
		{nil, []ReasonCode{Device, Pipe, Socket, Pipe}},
		{[]int{0, 1, 2}, []ReasonCode{Pipe}},
		{[]int{0, 1, 2, 3}, nil},
		{[]int{7}, []ReasonCode{Device, Pipe, Socket, Pipe}},
	}
	for _, tt := range tests {
		w := v
		w.Fds = dropFds(append([]fdView(nil), v.Fds...), tt.ext)
		var got []ReasonCode
		for _, r := range refusals(w) {
			got = append(got, r.Code)
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("external %v: %v, want %v", tt.ext, got, tt.want)
		}
	}
}

func TestCloseRanges(t *testing.T) {
	const top = 1<<32 - 1
	tests := []struct {
		keep []int
		want [][2]uint64
	}{
		{nil, [][2]uint64{{0, top}}},
		{[]int{0, 1, 2}, [][2]uint64{{3, top}}},
		{[]int{1}, [][2]uint64{{0, 0}, {2, top}}},
		{[]int{0, 2, 9}, [][2]uint64{{1, 1}, {3, 8}, {10, top}}},
	}
	for _, tt := range tests {
		if got := closeRanges(tt.keep); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("keep %v: %v, want %v", tt.keep, got, tt.want)
		}
	}
}

func TestAccessCovers(t *testing.T) {
	tests := []struct {
		have, need uint32
		ok         bool
	}{
		{unix.O_RDONLY, unix.O_RDONLY, true},
		{unix.O_WRONLY, unix.O_WRONLY | unix.O_APPEND, true},
		{unix.O_RDWR, unix.O_WRONLY, true},
		{unix.O_RDWR, unix.O_RDONLY, true},
		{unix.O_RDONLY, unix.O_WRONLY, false},
		{unix.O_WRONLY, unix.O_RDWR, false},
		{unix.O_RDONLY | unix.O_NONBLOCK, unix.O_RDWR, false},
	}
	for _, tt := range tests {
		if got := accessCovers(tt.have, tt.need); got != tt.ok {
			t.Errorf("have %s, need %s: %v", accessName(tt.have), accessName(tt.need), got)
		}
	}
}
