package migrate

import (
	"bytes"
	"testing"
)

// FuzzMsg decodes arbitrary bytes as a message: it must never panic, and
// a message that decodes must encode back to the same bytes.
func FuzzMsg(f *testing.F) {
	for _, m := range []Msg{{Kind: KPages, Head: make([]byte, 8), Data: []byte("memory")}, {Kind: KImage, Data: []byte("image")}, {Kind: KSync}} {
		b, _ := m.MarshalBinary()
		f.Add(b)
	}
	f.Add([]byte{byte(KPages), 1, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		var m Msg
		if m.UnmarshalBinary(bytes.Clone(b)) != nil {
			return
		}
		again, err := (&Msg{Kind: m.Kind, Data: m.Data}).MarshalBinary()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("decoded %s does not encode back: %v", m.Kind, err)
		}
		if m.Kind == KPages {
			ParsePages(m)
		}
	})
}
