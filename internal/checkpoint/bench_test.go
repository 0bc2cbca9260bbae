package checkpoint

import (
	"bytes"
	"path/filepath"
	"testing"
)

// BenchmarkDump freezes, dumps and resumes a process with 256 MiB of
// touched heap; the rate is bytes of memory dumped per second.
func BenchmarkDump(b *testing.B) {
	needTracing(b)
	cmd, stdout := start(b, buildC(b, "big"), "256")
	waitLines(b, stdout, 1)
	var total int64
	for b.Loop() {
		p, err := Freeze(cmd.Process.Pid)
		if err != nil {
			b.Fatal(err)
		}
		img, err := p.Dump()
		if err != nil {
			p.Resume()
			b.Fatal(err)
		}
		if err := p.Resume(); err != nil {
			b.Fatal(err)
		}
		total = 0
		for _, m := range img.Mappings {
			total += int64(len(m.Data))
		}
	}
	b.SetBytes(total)
}

// BenchmarkCodec encodes and decodes an image with 64 MiB of pages.
func BenchmarkCodec(b *testing.B) {
	img := sampleImage()
	img.Mappings[1].End = img.Mappings[1].Start + 64<<20
	img.Mappings[1].Data = make([]byte, 64<<20)
	img.Mappings[2].Start, img.Mappings[2].End = 0x10000000, 0x10001000
	b.SetBytes(64 << 20)
	for b.Loop() {
		var buf bytes.Buffer
		if err := img.Encode(&buf); err != nil {
			b.Fatal(err)
		}
		if _, err := Decode(&buf); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRestore restores an image of a process with 256 MiB of touched
// heap; the rate is bytes of saved memory per second.
func BenchmarkRestore(b *testing.B) {
	needTracing(b)
	stub := buildC(b, "stub")
	cmd, stdout := start(b, buildC(b, "big"), "256")
	waitLines(b, stdout, 1)
	img := dumpResume(b, cmd.Process.Pid)
	var total int64
	for _, m := range img.Mappings {
		total += int64(len(m.Data))
	}
	b.SetBytes(total)
	for b.Loop() {
		np, err := Restore(img, stub)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		reap(b, np)
		b.StartTimer()
	}
}

// BenchmarkGuard times Guard alone on a frozen, dumped process with one
// thread and with five (the freeze, dump and resume are not counted).
func BenchmarkGuard(b *testing.B) {
	needTracing(b)
	for _, c := range []struct{ name, bin, flag string }{{"1thread", "counter", ""}, {"5threads", "mtcount", "-pthread"}} {
		b.Run(c.name, func(b *testing.B) {
			var flags []string
			if c.flag != "" {
				flags = append(flags, c.flag)
			}
			cmd, _ := start(b, buildC(b, c.bin, flags...), filepath.Join(b.TempDir(), "out"))
			for b.Loop() {
				b.StopTimer()
				p, err := Freeze(cmd.Process.Pid)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := p.Dump(); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				err = p.Guard()
				b.StopTimer()
				if err != nil {
					b.Fatal(err)
				}
				if err := p.Resume(); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
}
