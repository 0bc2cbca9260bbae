package checkpoint

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"time"
)

// Decode reads one image from r. It refuses, with an error wrapping
// ErrBadMagic, ErrVersion, ErrTruncated, ErrChecksum or ErrCorrupt and
// naming the section at fault, anything that is not a complete, intact
// stream of version 1 to 5.
func Decode(r io.Reader) (*Image, error) { return decode(r, false) }

// DecodeMeta reads the metadata of an image from r (everything before its
// pages: credentials, limits, files, mappings without their data, the
// executable, the directory) and stops there, so that what an image would
// be can be checked before its pages are held in memory. It refuses what
// Decode refuses in those sections; the rest of the stream is not read.
func DecodeMeta(r io.Reader) (*Image, error) { return decode(r, true) }

func decode(r io.Reader, metaOnly bool) (*Image, error) {
	br := bufio.NewReaderSize(r, 1<<20)
	var hdr [12]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil {
		return nil, fmt.Errorf("%w: header: %v", ErrTruncated, err)
	}
	if string(hdr[:8]) != magic {
		return nil, ErrBadMagic
	}
	v := binary.LittleEndian.Uint32(hdr[8:])
	if v < versionV1 || v > version {
		return nil, fmt.Errorf("%w: %d (want %d to %d)", ErrVersion, v, versionV1, version)
	}
	img := &Image{}
	want := uint32(secCore)
	pending := 0 // mappings still waiting for their pages section
	for n := 0; ; n++ {
		typ, length, err := readSectionHeader(br, n)
		if err != nil {
			return nil, err
		}
		where := fmt.Sprintf("section %d (type %d)", n, typ)
		if want != secPages && typ != want || want == secPages && typ != secPages && typ != secEnd {
			return nil, fmt.Errorf("%w: %s: unexpected section type", ErrCorrupt, where)
		}
		switch typ {
		case secCore, secMappings, secFiles, secExt, secThreads, secExternal, secCPU, secObjects, secAttrs:
			if length > maxMetaSection {
				return nil, fmt.Errorf("%w: %s: length %d too large", ErrCorrupt, where, length)
			}
			p, err := readPayload(br, length, where)
			if err != nil {
				return nil, err
			}
			d := &dec{b: p}
			switch typ {
			case secCore:
				img.decodeCore(d)
				want = secMappings
			case secMappings:
				pending = img.decodeMappings(d)
				want = secFiles
			case secFiles:
				img.decodeFiles(d)
				want = secPages
				if v >= 2 {
					want = secExt
				}
			case secExt:
				img.decodeExt(d)
				want = secPages
				if v >= 3 {
					want = secThreads
				}
			case secThreads:
				img.decodeThreads(d)
				want = secPages
				if v >= 4 {
					want = secExternal
				}
			case secExternal:
				img.decodeExternal(d)
				want = secCPU
			case secCPU:
				img.CPU.decode(d)
				want = secPages
				if v >= 5 {
					want = secObjects
				}
			case secObjects:
				img.decodeObjects(d)
				want = secAttrs
			case secAttrs:
				img.decodeAttrs(d)
				want = secPages
			}
			if d.err == nil && len(d.b) != 0 {
				d.err = errors.New("trailing bytes")
			}
			if d.err != nil {
				return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, where, d.err)
			}
		case secPages:
			if metaOnly {
				return img, nil
			}
			if err := img.readPages(br, length, where); err != nil {
				return nil, err
			}
			pending--
		case secEnd:
			if metaOnly {
				return img, nil
			}
			if length != 0 {
				return nil, fmt.Errorf("%w: %s: end section not empty", ErrCorrupt, where)
			}
			if _, err := readPayload(br, 0, where); err != nil {
				return nil, err
			}
			if pending != 0 {
				return nil, fmt.Errorf("%w: %d mappings lack their pages", ErrCorrupt, pending)
			}
			return img, nil
		}
	}
}

func readSectionHeader(r io.Reader, n int) (uint32, uint64, error) {
	var h [12]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, 0, fmt.Errorf("%w: section %d header: %v", ErrTruncated, n, noEOF(err))
	}
	return binary.LittleEndian.Uint32(h[:4]), binary.LittleEndian.Uint64(h[4:]), nil
}

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// readPayload reads a section of n bytes and its checksum. The buffer
// grows as the bytes come: a length that lies costs what was sent, not n.
func readPayload(r io.Reader, n uint64, where string) ([]byte, error) {
	var buf bytes.Buffer
	if _, err := io.CopyN(&buf, r, int64(n+4)); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrTruncated, where, noEOF(err))
	}
	p := buf.Bytes()
	if crc32.Checksum(p[:n], castagnoli()) != binary.LittleEndian.Uint32(p[n:]) {
		return nil, fmt.Errorf("%w: %s", ErrChecksum, where)
	}
	return p[:n], nil
}

func (img *Image) readPages(r io.Reader, length uint64, where string) error {
	var idx [4]byte
	if length < 4 {
		return fmt.Errorf("%w: %s: length %d too short", ErrCorrupt, where, length)
	}
	if _, err := io.ReadFull(r, idx[:]); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrTruncated, where, noEOF(err))
	}
	i := binary.LittleEndian.Uint32(idx[:])
	if uint64(i) >= uint64(len(img.Mappings)) {
		return fmt.Errorf("%w: %s: mapping index %d out of range", ErrCorrupt, where, i)
	}
	m := &img.Mappings[i]
	if m.Data == nil || len(m.Data) != 0 {
		return fmt.Errorf("%w: %s: mapping %d takes no pages or has them already", ErrCorrupt, where, i)
	}
	if length-4 != m.Size() {
		return fmt.Errorf("%w: %s: %d bytes for a mapping of %d", ErrCorrupt, where, length-4, m.Size())
	}
	crc := crc32.Update(0, castagnoli(), idx[:])
	data := m.Data
	for left := m.Size(); left > 0; {
		n := min(left, pageChunk)
		off := len(data)
		data = append(data, make([]byte, n)...)
		if _, err := io.ReadFull(r, data[off:]); err != nil {
			return fmt.Errorf("%w: %s: %v", ErrTruncated, where, noEOF(err))
		}
		crc = crc32.Update(crc, castagnoli(), data[off:])
		left -= n
	}
	var sum [4]byte
	if _, err := io.ReadFull(r, sum[:]); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrTruncated, where, noEOF(err))
	}
	if crc != binary.LittleEndian.Uint32(sum[:]) {
		return fmt.Errorf("%w: %s", ErrChecksum, where)
	}
	m.Data = data
	return nil
}

func (img *Image) decodeCore(d *dec) {
	img.Arch = d.str()
	img.Kernel = d.str()
	img.Pid = int(d.u64())
	img.Comm = d.str()
	for _, v := range regsSlice(&img.Regs) {
		*v = d.u64()
	}
	img.XState = d.bytes()
	img.SigMask = d.u64()
	n := d.count(36)
	for range n {
		img.SigActions = append(img.SigActions, SigAction{Sig: int(d.u32()),
			Handler: d.u64(), Flags: d.u64(), Restorer: d.u64(), Mask: d.u64()})
	}
	img.AltStack = AltStack{SP: d.u64(), Flags: d.u32(), Size: d.u64()}
	img.TIDAddress = d.u64()
	img.RobustList = RobustList{Head: d.u64(), Len: d.u64()}
	img.Rseq = Rseq{Ptr: d.u64(), Size: d.u32(), Sig: d.u32()}
	for _, v := range mmSlice(&img.MM) {
		*v = d.u64()
	}
	img.Auxv = d.bytes()
	img.Exe = d.str()
	img.Cwd = d.str()
	img.Umask = d.u32()
	n = d.count(20)
	for range n {
		img.Rlimits = append(img.Rlimits, Rlimit{Resource: int(d.u32()), Cur: d.u64(), Max: d.u64()})
	}
}

// decodeMappings returns how many mappings expect a pages section.
func (img *Image) decodeMappings(d *dec) int {
	n := d.count(40)
	withData := 0
	var prevEnd uint64
	for range n {
		m := Mapping{Start: d.u64(), End: d.u64(), Prot: d.u8(), Flags: d.u8(), Kind: Kind(d.u8())}
		has := d.u8()
		m.Offset, m.Dev, m.Inode, m.Path = d.u64(), d.str(), d.u64(), d.str()
		switch {
		case d.err != nil:
			return 0
		case m.Start >= m.End || m.Start < prevEnd || m.End > maxUserAddr && m.Kind != KindVsyscall:
			d.err = fmt.Errorf("mapping %#x-%#x out of order or range", m.Start, m.End)
		case m.Start%4096 != 0 || m.End%4096 != 0:
			d.err = fmt.Errorf("mapping %#x-%#x not page aligned", m.Start, m.End)
		case m.Kind < KindAnon || m.Kind > KindAnonShared:
			d.err = fmt.Errorf("mapping %#x-%#x: unknown kind %d", m.Start, m.End, m.Kind)
		case has > 1 || has == 1 && (!m.Kind.NeedsData() || m.End > maxUserAddr):
			d.err = fmt.Errorf("mapping %#x-%#x: bad data flag %d", m.Start, m.End, has)
		}
		if d.err != nil {
			return 0
		}
		if has == 1 {
			m.Data = []byte{}
			withData++
		}
		prevEnd = m.End
		img.Mappings = append(img.Mappings, m)
	}
	return withData
}

func (img *Image) decodeFiles(d *dec) {
	n := d.count(20)
	for range n {
		img.Files = append(img.Files, File{Fd: int(d.u32()), Path: d.str(), Flags: d.u32(), Offset: int64(d.u64())})
	}
}

func (img *Image) decodeExt(d *dec) {
	for i := range img.ITimers {
		t := &img.ITimers[i]
		t.Interval, t.Value = time.Duration(d.u64()), time.Duration(d.u64())
		if t.Interval < 0 || t.Value < 0 {
			d.err = fmt.Errorf("interval timer %d negative", i)
			return
		}
	}
	n := d.count(1 + siginfoSize)
	for range n {
		var p PendingSignal
		sh := d.u8()
		copy(p.Info[:], d.take(siginfoSize))
		if d.err != nil {
			return
		}
		if s := p.Signo(); sh > 1 || s < 1 || s > 64 {
			d.err = fmt.Errorf("pending signal %d (shared %d)", s, sh)
			return
		}
		p.Shared = sh == 1
		img.Pending = append(img.Pending, p)
	}
	switch has := d.u8(); {
	case has > 1:
		d.err = fmt.Errorf("bad credentials flag %d", has)
	case has == 1:
		c := &Creds{}
		for i := range c.Uid {
			c.Uid[i] = d.u32()
		}
		for i := range c.Gid {
			c.Gid[i] = d.u32()
		}
		n := d.count(4)
		for range n {
			c.Groups = append(c.Groups, d.u32())
		}
		img.Creds = c
	}
}

func (img *Image) decodeThreads(d *dec) {
	n := d.count(300) // a thread takes at least 300 bytes
	for range n {
		th := Thread{Tid: int(d.u64())}
		for _, v := range regsSlice(&th.Regs) {
			*v = d.u64()
		}
		th.XState = d.bytes()
		th.SigMask = d.u64()
		th.AltStack = AltStack{SP: d.u64(), Flags: d.u32(), Size: d.u64()}
		th.TIDAddress = d.u64()
		th.RobustList = RobustList{Head: d.u64(), Len: d.u64()}
		th.Rseq = Rseq{Ptr: d.u64(), Size: d.u32(), Sig: d.u32()}
		np := d.count(siginfoSize)
		for range np {
			var p PendingSignal
			copy(p.Info[:], d.take(siginfoSize))
			if d.err != nil {
				return
			}
			if s := p.Signo(); s < 1 || s > 64 {
				d.err = fmt.Errorf("thread %d: pending signal %d", th.Tid, s)
				return
			}
			th.Pending = append(th.Pending, p)
		}
		if d.err != nil {
			return
		}
		img.Threads = append(img.Threads, th)
	}
}

// dec reads little-endian fields; the first short read sets err and every
// later read returns zero.
type dec struct {
	b   []byte
	err error
}

func (d *dec) take(n uint64) []byte {
	if d.err != nil {
		return nil
	}
	if uint64(len(d.b)) < n {
		d.err = fmt.Errorf("field of %d bytes past the end", n)
		return nil
	}
	p := d.b[:n]
	d.b = d.b[n:]
	return p
}

func (d *dec) u8() uint8 {
	if p := d.take(1); p != nil {
		return p[0]
	}
	return 0
}

func (d *dec) u32() uint32 {
	if p := d.take(4); p != nil {
		return binary.LittleEndian.Uint32(p)
	}
	return 0
}

func (d *dec) u64() uint64 {
	if p := d.take(8); p != nil {
		return binary.LittleEndian.Uint64(p)
	}
	return 0
}

func (d *dec) bytes() []byte {
	n := d.u32()
	p := d.take(uint64(n))
	if p == nil {
		return nil
	}
	return append([]byte(nil), p...)
}

func (d *dec) str() string { return string(d.bytes()) }

// count reads an element count and checks that that many elements of at
// least minSize bytes can still follow.
func (d *dec) count(minSize int) int {
	n := uint64(d.u32())
	if d.err == nil && n*uint64(minSize) > uint64(len(d.b)) {
		d.err = fmt.Errorf("count %d exceeds the section", n)
		return 0
	}
	return int(n)
}
