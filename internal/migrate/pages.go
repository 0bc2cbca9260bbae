package migrate

import (
	"encoding/binary"
	"fmt"
)

// pageSize is the unit of zero detection in SendPages.
const pageSize = 4096

// SendPages sends data, the memory at addr, as Pages messages of up to
// Chunk bytes; with skipZero, pages of zeros are left out (the target's
// memory there is fresh, hence zero). It returns the bytes sent. The
// messages refer to data: c must have sent them when Send returns.
func SendPages(c Conn, addr uint64, data []byte, skipZero bool) (int64, error) {
	var sent int64
	send := func(lo, hi int) error {
		for lo < hi {
			k := min(hi-lo, Chunk)
			head := binary.LittleEndian.AppendUint64(nil, addr+uint64(lo))
			if err := c.Send(Msg{Kind: KPages, Head: head, Data: data[lo : lo+k]}); err != nil {
				return err
			}
			sent += int64(k)
			lo += k
		}
		return nil
	}
	if !skipZero {
		return sent, send(0, len(data))
	}
	run := -1 // start of the run of non-zero pages
	for off := 0; off < len(data); off += pageSize {
		end := min(off+pageSize, len(data))
		if isZero(data[off:end]) {
			if run >= 0 {
				if err := send(run, off); err != nil {
					return sent, err
				}
				run = -1
			}
		} else if run < 0 {
			run = off
		}
	}
	if run >= 0 {
		return sent, send(run, len(data))
	}
	return sent, nil
}

// ParsePages decodes a Pages message.
func ParsePages(m Msg) (addr uint64, data []byte, err error) {
	if m.Kind != KPages || len(m.Data) < 8 {
		return 0, nil, fmt.Errorf("%w: %s message of %d bytes is not pages", ErrCorrupt, m.Kind, len(m.Data))
	}
	return binary.LittleEndian.Uint64(m.Data), m.Data[8:], nil
}
