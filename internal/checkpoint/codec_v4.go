package checkpoint

import (
	"fmt"
	"slices"
)

// The sections of image format version 4: external descriptors and the
// CPU.

const (
	extTTY    = 1 // ExternalFile.TTY
	extCtlTTY = 2 // ExternalFile.CtlTTY
)

func (img *Image) encodeExternal(e *enc) {
	e.u32(uint32(len(img.External)))
	for _, x := range img.External {
		e.u32(uint32(x.Fd))
		e.u32(x.Flags)
		e.u8(b2u8(x.TTY)*extTTY | b2u8(x.CtlTTY)*extCtlTTY)
		e.str(x.Target)
	}
}

// decodeExternal reads the external descriptors: in ascending fd order,
// none also among the image's files, a controlling terminal only if a
// terminal.
func (img *Image) decodeExternal(d *dec) {
	n := d.count(13)
	for range n {
		x := ExternalFile{Fd: int(d.u32()), Flags: d.u32()}
		bits := d.u8()
		x.Target = d.str()
		x.TTY, x.CtlTTY = bits&extTTY != 0, bits&extCtlTTY != 0
		switch {
		case d.err != nil:
			return
		case x.Fd > maxFd:
			d.err = fmt.Errorf("external fd %d out of range", x.Fd)
		case len(img.External) > 0 && x.Fd <= img.External[len(img.External)-1].Fd:
			d.err = fmt.Errorf("external fd %d out of order", x.Fd)
		case bits > extTTY|extCtlTTY || x.CtlTTY && !x.TTY:
			d.err = fmt.Errorf("external fd %d: bad terminal bits %d", x.Fd, bits)
		case slices.ContainsFunc(img.Files, func(f File) bool { return f.Fd == x.Fd }):
			d.err = fmt.Errorf("external fd %d is also a file", x.Fd)
		}
		if d.err != nil {
			return
		}
		img.External = append(img.External, x)
	}
}

// maxFd bounds descriptor numbers in an image (the kernel's own limit,
// fs.nr_open, is at most 2^30).
const maxFd = 1 << 30

func (c *CPU) encode(e *enc) {
	e.u64(c.XFeatures)
	e.u32(c.XStateSize)
	e.u32(uint32(len(c.Flags)))
	for _, f := range c.Flags {
		e.str(f)
	}
}

func (c *CPU) decode(d *dec) {
	c.XFeatures = d.u64()
	c.XStateSize = d.u32()
	n := d.count(4)
	for range n {
		c.Flags = append(c.Flags, d.str())
	}
}
