package checkpoint

import (
	"bytes"
	"errors"
	"testing"
)

// TestEncodeVersion: an image with kernel objects or attributes (every
// dump has them) is written as version 5, one with neither (a test's, an
// older agent's) as version 4.
func TestEncodeVersion(t *testing.T) {
	img := sampleImage()
	if v := encode(t, img)[8]; v != 5 {
		t.Errorf("with objects: version %d, want 5", v)
	}
	img.Objects = nil
	if v := encode(t, img)[8]; v != 5 {
		t.Errorf("with attributes: version %d, want 5", v)
	}
	img.Attrs = nil
	if v := encode(t, img)[8]; v != 4 {
		t.Errorf("with neither: version %d, want 4", v)
	}
}

// TestDecodeRejectsObjects checks the consistency rules of the objects
// section.
func TestDecodeRejectsObjects(t *testing.T) {
	tests := []struct {
		name string
		objs []KObject
	}{
		{"out of order", []KObject{{Fd: 6, Kind: ObjSignalfd}, {Fd: 5, Kind: ObjSignalfd}}},
		{"twice", []KObject{{Fd: 5, Kind: ObjSignalfd}, {Fd: 5, Kind: ObjSignalfd}}},
		{"a file's fd", []KObject{{Fd: 1, Kind: ObjSignalfd}}},
		{"an external fd", []KObject{{Fd: 2, Kind: ObjSignalfd}}},
		{"fd out of range", []KObject{{Fd: maxFd + 1, Kind: ObjSignalfd}}},
		{"unknown kind", []KObject{{Fd: 5, Kind: 9}}},
		{"kind zero", []KObject{{Fd: 5}}},
		{"eventfd at its maximum", []KObject{{Fd: 5, Kind: ObjEventfd, Count: 1<<64 - 1}}},
		{"timerfd clock", []KObject{{Fd: 5, Kind: ObjTimerfd, Clock: 2}}},
		{"timerfd flags", []KObject{{Fd: 5, Kind: ObjTimerfd, TimerFlags: 4}}},
		{"timerfd negative", []KObject{{Fd: 5, Kind: ObjTimerfd, Value: -1}}},
		{"epoll watches itself", []KObject{{Fd: 5, Kind: ObjEpoll, Watches: []EpollWatch{{Fd: 5}}}}},
		{"inotify watch zero", []KObject{{Fd: 5, Kind: ObjInotify, Inotify: []InotifyWatch{{WD: 0, Path: "/x"}}}}},
		{"inotify out of order", []KObject{{Fd: 5, Kind: ObjInotify, Inotify: []InotifyWatch{{WD: 2, Path: "/x"}, {WD: 1, Path: "/y"}}}}},
		{"inotify relative path", []KObject{{Fd: 5, Kind: ObjInotify, Inotify: []InotifyWatch{{WD: 1, Path: "x"}}}}},
		{"deleted file relative", []KObject{{Fd: 5, Kind: ObjDeleted, Path: "tmp/x"}}},
		{"deleted file mode", []KObject{{Fd: 5, Kind: ObjDeleted, Path: "/tmp/x", Mode: 0o10000}}},
		{"deleted file offset", []KObject{{Fd: 5, Kind: ObjDeleted, Path: "/tmp/x", Offset: -1}}},
		{"deleted files too large", []KObject{{Fd: 5, Kind: ObjDeleted, Path: "/tmp/x", Data: make([]byte, maxDeletedBytes/2+1)},
			{Fd: 6, Kind: ObjDeleted, Path: "/tmp/y", Data: make([]byte, maxDeletedBytes/2)}}},
		{"pipe fuller than its size", []KObject{{Fd: 5, Kind: ObjPipe, PipeSize: 4, Data: []byte("12345")}}},
		{"epoll cycle", []KObject{{Fd: 5, Kind: ObjEpoll, Watches: []EpollWatch{{Fd: 6}}}, {Fd: 6, Kind: ObjEpoll, Watches: []EpollWatch{{Fd: 5}}}}},
	}
	for _, tt := range tests {
		img := sampleImage()
		img.Objects = tt.objs
		var b bytes.Buffer
		if err := img.Encode(&b); err != nil {
			t.Fatal(err)
		}
		if _, err := Decode(&b); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", tt.name, err)
		}
	}
}

// TestDecodeRejectsAttrs checks the rules of the attrs section.
func TestDecodeRejectsAttrs(t *testing.T) {
	tests := []struct {
		name string
		edit func(a *ProcAttrs)
	}{
		{"oom_score_adj", func(a *ProcAttrs) { a.OOMScoreAdj = 1001 }},
		{"dumpable", func(a *ProcAttrs) { a.Dumpable = 3 }},
		{"membarrier", func(a *ProcAttrs) { a.Membarrier = 1 << 3 }},
		{"advice range empty", func(a *ProcAttrs) { a.Advice = []MapAdvice{{Start: 0x1000, End: 0x1000, Flags: AdvLocked}} }},
		{"advice not page aligned", func(a *ProcAttrs) { a.Advice = []MapAdvice{{Start: 0x1001, End: 0x2000, Flags: AdvLocked}} }},
		{"advice overlaps", func(a *ProcAttrs) {
			a.Advice = []MapAdvice{{Start: 0x1000, End: 0x3000, Flags: AdvLocked}, {Start: 0x2000, End: 0x4000, Flags: AdvLocked}}
		}},
		{"advice none", func(a *ProcAttrs) { a.Advice = []MapAdvice{{Start: 0x1000, End: 0x2000}} }},
		{"advice unknown", func(a *ProcAttrs) { a.Advice = []MapAdvice{{Start: 0x1000, End: 0x2000, Flags: advAll + 1}} }},
	}
	for _, tt := range tests {
		img := sampleImage()
		tt.edit(img.Attrs)
		var b bytes.Buffer
		if err := img.Encode(&b); err != nil {
			t.Fatal(err)
		}
		if _, err := Decode(&b); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", tt.name, err)
		}
	}
}
