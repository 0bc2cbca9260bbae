package migrate

import (
	"encoding/json"
	"fmt"

	"github.com/ssi-cluster/ssi/internal/checkpoint"
)

// A process may have up to vm.max_map_count mappings (65,530 by default):
// several megabytes of layout, more than one message holds. SendLayout
// sends it in as many Layout messages as it takes, all but the last with
// More set; RecvLayout puts them together. A layout that fits in one
// message is one message, as older agents send and expect.

// maxLayoutMappings bounds the mappings a receiver takes (a peer that
// lies about More costs at most this).
const maxLayoutMappings = 1 << 20

// layoutRoom is the room a part leaves for its pid and its brackets.
const layoutRoom = 256

// SendLayout sends l on conn.
func SendLayout(conn Conn, l Layout) error {
	parts, err := layoutParts(l)
	if err != nil {
		return err
	}
	for _, p := range parts {
		if err := conn.Send(p); err != nil {
			return err
		}
	}
	return nil
}

// layoutParts splits l into Layout messages of at most MaxData bytes.
func layoutParts(l Layout) ([]Msg, error) {
	if m := JSON(KLayout, l); len(m.Data) <= MaxData {
		return []Msg{m}, nil
	}
	var parts []Msg
	var cur []checkpoint.Mapping
	size := 0
	flush := func(more bool) {
		parts = append(parts, JSON(KLayout, Layout{Pid: l.Pid, Mappings: cur, More: more}))
		cur, size = nil, 0
	}
	for _, m := range l.Mappings {
		b, err := json.Marshal(m)
		if err != nil {
			return nil, err
		}
		if len(b)+1 > MaxData-layoutRoom {
			return nil, fmt.Errorf("migrate: a mapping of %d bytes of layout (%s)", len(b), m.Path)
		}
		if size+len(b)+1 > MaxData-layoutRoom {
			flush(true)
		}
		cur = append(cur, m)
		size += len(b) + 1
	}
	flush(false)
	return parts, nil
}

// RecvLayout receives a layout sent by SendLayout.
func RecvLayout(conn Conn) (Layout, error) {
	var l Layout
	for first := true; ; first = false {
		m, err := conn.Recv()
		if err != nil {
			return l, err
		}
		if m.Kind != KLayout {
			return l, fmt.Errorf("%w: %s where a layout was due", ErrCorrupt, m.Kind)
		}
		var part Layout
		if err := m.Parse(&part); err != nil {
			return l, err
		}
		if !first && part.Pid != l.Pid {
			return l, fmt.Errorf("%w: a layout part of pid %d in one of pid %d", ErrCorrupt, part.Pid, l.Pid)
		}
		l.Pid = part.Pid
		if len(l.Mappings)+len(part.Mappings) > maxLayoutMappings {
			return l, fmt.Errorf("%w: a layout of more than %d mappings", ErrCorrupt, maxLayoutMappings)
		}
		l.Mappings = append(l.Mappings, part.Mappings...)
		if !part.More {
			return l, nil
		}
	}
}
