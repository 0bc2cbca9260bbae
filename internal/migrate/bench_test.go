package migrate

import (
	"encoding/binary"
	"testing"
)

// BenchmarkEncodePages is the source's work per Pages message: copy a
// megabyte of memory into the message and checksum it. The memory comes
// from a 64 MiB range, so that it is not in the cache when a message is
// encoded, as in a migration.
func BenchmarkEncodePages(b *testing.B) {
	mem := make([]byte, 64<<20)
	for i := range mem {
		mem[i] = byte(i) | 1
	}
	out := make([]byte, 0, headerLen+8+Chunk)
	b.SetBytes(Chunk)
	for i := 0; i < b.N; i++ {
		off := i * Chunk % len(mem)
		m := Msg{Kind: KPages, Head: binary.LittleEndian.AppendUint64(nil, uint64(off)), Data: mem[off : off+Chunk]}
		if _, err := m.AppendBinary(out[:0]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodePages is the target's: check a received message.
func BenchmarkDecodePages(b *testing.B) {
	m := Msg{Kind: KPages, Head: make([]byte, 8), Data: make([]byte, Chunk)}
	enc, err := m.MarshalBinary()
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(Chunk)
	for i := 0; i < b.N; i++ {
		var d Msg
		if err := d.UnmarshalBinary(enc); err != nil {
			b.Fatal(err)
		}
	}
}
