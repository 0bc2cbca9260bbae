package checkpoint

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

// TestDecodeOlderVersions checks that streams of versions 1 to 4 still
// decode, to the image without what later versions added, and that an
// older header in front of a newer body is corrupt.
func TestDecodeOlderVersions(t *testing.T) {
	tests := []struct {
		v     uint32
		clear func(img *Image) // what version v cannot hold
	}{
		{versionV1, func(img *Image) {
			img.ITimers, img.Pending, img.Creds = [3]ITimer{}, nil, nil
			img.Threads, img.External, img.CPU, img.Objects, img.Attrs = nil, nil, CPU{}, nil, nil
		}},
		{versionV2, func(img *Image) {
			img.Threads, img.External, img.CPU, img.Objects, img.Attrs = nil, nil, CPU{}, nil, nil
		}},
		{versionV3, func(img *Image) { img.External, img.CPU, img.Objects, img.Attrs = nil, CPU{}, nil, nil }},
		{versionV4, func(img *Image) { img.Objects, img.Attrs = nil, nil }},
	}
	for _, tt := range tests {
		img := sampleImage()
		var b bytes.Buffer
		if err := img.encode(&b, tt.v); err != nil {
			t.Fatal(err)
		}
		got, err := Decode(&b)
		if err != nil {
			t.Fatalf("version %d: %v", tt.v, err)
		}
		tt.clear(img)
		if !reflect.DeepEqual(got, img) {
			t.Fatalf("version %d:\n got %+v\nwant %+v", tt.v, got, img)
		}
		newer := encode(t, sampleImage())
		newer[8] = byte(tt.v)
		if _, err := Decode(bytes.NewReader(newer)); !errors.Is(err, ErrCorrupt) {
			t.Errorf("version %d header, version %d body: %v, want ErrCorrupt", tt.v, version, err)
		}
	}
	v := encode(t, sampleImage())
	v[8] = version + 1
	if _, err := Decode(bytes.NewReader(v)); !errors.Is(err, ErrVersion) {
		t.Fatalf("version %d: %v, want ErrVersion", version+1, err)
	}
}

// TestDecodeRejectsExternal checks the consistency rules of the external
// section.
func TestDecodeRejectsExternal(t *testing.T) {
	tests := []struct {
		name string
		ext  []ExternalFile
	}{
		{"out of order", []ExternalFile{{Fd: 2}, {Fd: 1}}},
		{"twice", []ExternalFile{{Fd: 1}, {Fd: 1}}},
		{"also a file", []ExternalFile{{Fd: 1}}}, // sampleImage has file fd 1
		{"controlling but no tty", []ExternalFile{{Fd: 0, CtlTTY: true}}},
		{"fd too large", []ExternalFile{{Fd: maxFd + 1}}},
	}
	for _, tt := range tests {
		img := sampleImage()
		img.External = tt.ext
		if _, err := Decode(bytes.NewReader(encode(t, img))); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", tt.name, err)
		}
	}
}
