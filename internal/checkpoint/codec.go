package checkpoint

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"sync"
)

// Image stream format, version 5. All integers are little endian.
//
//	header:  "SSICKPT1" | version u32
//	section: type u32 | length u64 | payload | crc32c(payload) u32
//
// Sections come in this order: core (1), mappings (2), files (3), ext (5,
// from version 2: interval timers, pending signals, credentials),
// threads (6, from version 3: every non-leader thread), external (7,
// from version 4: descriptors replaced at restore), cpu (8, from version
// 4: XSAVE features, xstate size, cpuinfo flags), objects (9, from
// version 5: eventfd, epoll, timerfd, signalfd), attrs (10, from version
// 5: the process's attributes; Encode writes version 4 for an image with
// neither, as a test or an older agent makes), one
// pages section (4) per mapping marked as having data (payload: mapping
// index u32 then exactly the mapping's bytes), and end (255, empty).
// Anything else, a bad checksum, or a short read is an error. Decode also
// reads versions 1 (no ext section), 2 (no threads section), 3 (no
// external and cpu sections) and 4 (no objects section).
const (
	magic     = "SSICKPT1"
	version   = 5
	versionV1 = 1
	versionV2 = 2
	versionV3 = 3
	versionV4 = 4

	secCore     = 1
	secMappings = 2
	secFiles    = 3
	secPages    = 4
	secExt      = 5
	secThreads  = 6
	secExternal = 7
	secCPU      = 8
	secObjects  = 9
	secAttrs    = 10
	secEnd      = 255

	maxMetaSection = 16 << 20 // core, mappings and files sections
	maxUserAddr    = 1 << 57  // above any x86_64 user address (5-level paging)
	pageChunk      = 1 << 20  // pages are read in chunks: a lying length costs at most one more
)

// Decoding errors; Decode wraps them with the position of the fault.
var (
	ErrBadMagic  = errors.New("checkpoint: not an image (bad magic)")
	ErrVersion   = errors.New("checkpoint: unsupported image version")
	ErrTruncated = errors.New("checkpoint: image truncated")
	ErrChecksum  = errors.New("checkpoint: section checksum mismatch")
	ErrCorrupt   = errors.New("checkpoint: image corrupt")
)

// castagnoli is the CRC32C table, made on first use (not at every start
// of the binary: it takes a tenth of a millisecond).
var castagnoli = sync.OnceValue(func() *crc32.Table { return crc32.MakeTable(crc32.Castagnoli) })

// Encode writes img to w in the image stream format.
func (img *Image) Encode(w io.Writer) error {
	if len(img.Objects) == 0 && img.Attrs == nil {
		return img.encode(w, versionV4)
	}
	return img.encode(w, version)
}

// encode writes img in format version v (an older version drops the
// sections it lacks and what they hold).
func (img *Image) encode(w io.Writer, v uint32) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	hdr := append([]byte(magic), 0, 0, 0, 0)
	binary.LittleEndian.PutUint32(hdr[8:], v)
	if _, err := bw.Write(hdr); err != nil {
		return err
	}
	var e enc
	img.encodeCore(&e)
	if err := writeSection(bw, secCore, e.b); err != nil {
		return err
	}
	e.b = e.b[:0]
	e.u32(uint32(len(img.Mappings)))
	for i := range img.Mappings {
		m := &img.Mappings[i]
		if m.Data != nil && uint64(len(m.Data)) != m.Size() {
			return fmt.Errorf("checkpoint: mapping %#x-%#x has %d bytes of data", m.Start, m.End, len(m.Data))
		}
		e.u64(m.Start)
		e.u64(m.End)
		e.u8(m.Prot)
		e.u8(m.Flags)
		e.u8(uint8(m.Kind))
		e.u8(b2u8(m.Data != nil))
		e.u64(m.Offset)
		e.str(m.Dev)
		e.u64(m.Inode)
		e.str(m.Path)
	}
	if err := writeSection(bw, secMappings, e.b); err != nil {
		return err
	}
	e.b = e.b[:0]
	e.u32(uint32(len(img.Files)))
	for _, f := range img.Files {
		e.u32(uint32(f.Fd))
		e.str(f.Path)
		e.u32(f.Flags)
		e.u64(uint64(f.Offset))
	}
	if err := writeSection(bw, secFiles, e.b); err != nil {
		return err
	}
	if v >= 2 {
		e.b = e.b[:0]
		img.encodeExt(&e)
		if err := writeSection(bw, secExt, e.b); err != nil {
			return err
		}
	}
	if v >= 3 {
		e.b = e.b[:0]
		img.encodeThreads(&e)
		if err := writeSection(bw, secThreads, e.b); err != nil {
			return err
		}
	}
	if v >= 4 {
		e.b = e.b[:0]
		img.encodeExternal(&e)
		if err := writeSection(bw, secExternal, e.b); err != nil {
			return err
		}
		e.b = e.b[:0]
		img.CPU.encode(&e)
		if err := writeSection(bw, secCPU, e.b); err != nil {
			return err
		}
	}
	if v >= 5 {
		e.b = e.b[:0]
		img.encodeObjects(&e)
		if err := writeSection(bw, secObjects, e.b); err != nil {
			return err
		}
		e.b = e.b[:0]
		img.encodeAttrs(&e)
		if err := writeSection(bw, secAttrs, e.b); err != nil {
			return err
		}
	}
	for i := range img.Mappings {
		if d := img.Mappings[i].Data; d != nil {
			var idx [4]byte
			binary.LittleEndian.PutUint32(idx[:], uint32(i))
			if err := writeSection(bw, secPages, idx[:], d); err != nil {
				return err
			}
		}
	}
	if err := writeSection(bw, secEnd); err != nil {
		return err
	}
	return bw.Flush()
}

func (img *Image) encodeCore(e *enc) {
	e.str(img.Arch)
	e.str(img.Kernel)
	e.u64(uint64(img.Pid))
	e.str(img.Comm)
	for _, v := range regsSlice(&img.Regs) {
		e.u64(*v)
	}
	e.bytes(img.XState)
	e.u64(img.SigMask)
	e.u32(uint32(len(img.SigActions)))
	for _, a := range img.SigActions {
		e.u32(uint32(a.Sig))
		e.u64(a.Handler)
		e.u64(a.Flags)
		e.u64(a.Restorer)
		e.u64(a.Mask)
	}
	e.u64(img.AltStack.SP)
	e.u32(img.AltStack.Flags)
	e.u64(img.AltStack.Size)
	e.u64(img.TIDAddress)
	e.u64(img.RobustList.Head)
	e.u64(img.RobustList.Len)
	e.u64(img.Rseq.Ptr)
	e.u32(img.Rseq.Size)
	e.u32(img.Rseq.Sig)
	for _, v := range mmSlice(&img.MM) {
		e.u64(*v)
	}
	e.bytes(img.Auxv)
	e.str(img.Exe)
	e.str(img.Cwd)
	e.u32(img.Umask)
	e.u32(uint32(len(img.Rlimits)))
	for _, r := range img.Rlimits {
		e.u32(uint32(r.Resource))
		e.u64(r.Cur)
		e.u64(r.Max)
	}
}

func (img *Image) encodeExt(e *enc) {
	for _, t := range img.ITimers {
		e.u64(uint64(t.Interval))
		e.u64(uint64(t.Value))
	}
	e.u32(uint32(len(img.Pending)))
	for _, p := range img.Pending {
		e.u8(b2u8(p.Shared))
		e.b = append(e.b, p.Info[:]...)
	}
	e.u8(b2u8(img.Creds != nil))
	if c := img.Creds; c != nil {
		for _, v := range append(c.Uid[:], c.Gid[:]...) {
			e.u32(v)
		}
		e.u32(uint32(len(c.Groups)))
		for _, g := range c.Groups {
			e.u32(g)
		}
	}
}

func (img *Image) encodeThreads(e *enc) {
	e.u32(uint32(len(img.Threads)))
	for i := range img.Threads {
		th := &img.Threads[i]
		e.u64(uint64(th.Tid))
		for _, v := range regsSlice(&th.Regs) {
			e.u64(*v)
		}
		e.bytes(th.XState)
		e.u64(th.SigMask)
		e.u64(th.AltStack.SP)
		e.u32(th.AltStack.Flags)
		e.u64(th.AltStack.Size)
		e.u64(th.TIDAddress)
		e.u64(th.RobustList.Head)
		e.u64(th.RobustList.Len)
		e.u64(th.Rseq.Ptr)
		e.u32(th.Rseq.Size)
		e.u32(th.Rseq.Sig)
		e.u32(uint32(len(th.Pending)))
		for _, p := range th.Pending {
			e.b = append(e.b, p.Info[:]...)
		}
	}
}

func regsSlice(r *Regs) []*uint64 {
	return []*uint64{&r.R15, &r.R14, &r.R13, &r.R12, &r.Rbp, &r.Rbx, &r.R11, &r.R10, &r.R9, &r.R8,
		&r.Rax, &r.Rcx, &r.Rdx, &r.Rsi, &r.Rdi, &r.OrigRax, &r.Rip,
		&r.CS, &r.Eflags, &r.Rsp, &r.SS, &r.FSBase, &r.GSBase, &r.DS, &r.ES, &r.FS, &r.GS}
}

func mmSlice(m *MM) []*uint64 {
	return []*uint64{&m.StartCode, &m.EndCode, &m.StartData, &m.EndData, &m.StartBrk, &m.Brk,
		&m.StartStack, &m.ArgStart, &m.ArgEnd, &m.EnvStart, &m.EnvEnd}
}

func writeSection(w io.Writer, typ uint32, parts ...[]byte) error {
	var n uint64
	for _, p := range parts {
		n += uint64(len(p))
	}
	var h [12]byte
	binary.LittleEndian.PutUint32(h[0:], typ)
	binary.LittleEndian.PutUint64(h[4:], n)
	if _, err := w.Write(h[:]); err != nil {
		return err
	}
	var crc uint32
	for _, p := range parts {
		crc = crc32.Update(crc, castagnoli(), p)
		if _, err := w.Write(p); err != nil {
			return err
		}
	}
	binary.LittleEndian.PutUint32(h[:4], crc)
	_, err := w.Write(h[:4])
	return err
}

func b2u8(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

// enc appends little-endian fields to a buffer.
type enc struct{ b []byte }

func (e *enc) u8(v uint8)   { e.b = append(e.b, v) }
func (e *enc) u32(v uint32) { e.b = binary.LittleEndian.AppendUint32(e.b, v) }
func (e *enc) u64(v uint64) { e.b = binary.LittleEndian.AppendUint64(e.b, v) }
func (e *enc) bytes(p []byte) {
	e.u32(uint32(len(p)))
	e.b = append(e.b, p...)
}
func (e *enc) str(s string) { e.bytes([]byte(s)) }
