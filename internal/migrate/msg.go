package migrate

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"sync"

	"github.com/ssi-cluster/ssi/internal/checkpoint"
	"github.com/ssi-cluster/ssi/internal/rexec"
)

// Kind is a message's kind.
type Kind uint8

// The message kinds (S: source, T: target, C: the caller of Dump).
const (
	KBegin       Kind = iota + 1 // S->T: JSON Begin
	KAccept                      // T->S: the target takes the process
	KRefuse                      // T->S: why not (text)
	KImage                       // S->T, dumping node->C: a chunk of the image stream
	KStdin                       // S->T: input the process had not read
	KEnd                         // S->T, dumping node->C: JSON End
	KRestored                    // T->S: JSON Restored (held, not running yet)
	KFailed                      // T->S, dumping node->C: why the restore or dump failed (text)
	KCommit                      // S->T: go on (the source's copy is dead); C->dumping node: the image is safe
	KAbort                       // S->T: kill the restored copy (the source's runs on); C->node: not saved
	KDone                        // T->S: the restored process runs
	KDumpRequest                 // C->dumping node: JSON DumpRequest
	KZeros                       // like Image: that many zero bytes (uint64 LE)
	KLayout                      // S->T: JSON Layout: the address space, to stage
	KStaged                      // T->S: staged; send the pages
	KPages                       // S->T: memory: its address (uint64 LE), then its bytes
	KSync                        // S->T: the pre-copy is sent; say when it is written
	KSynced                      // T->S: all the pages so far are written
	kLast
)

var kindNames = [...]string{KBegin: "begin", KAccept: "accept", KRefuse: "refuse", KImage: "image",
	KStdin: "stdin", KEnd: "end", KRestored: "restored", KFailed: "failed", KCommit: "commit",
	KAbort: "abort", KDone: "done", KDumpRequest: "dump-request", KZeros: "zeros",
	KLayout: "layout", KStaged: "staged", KPages: "pages", KSync: "sync", KSynced: "synced"}

func (k Kind) String() string {
	if k > 0 && k < kLast {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// MaxData bounds a message's payload; Chunk is the size of image chunks
// and of the memory in a Pages message.
const (
	MaxData = 2 << 20
	Chunk   = 1 << 20
)

const headerLen = 9

// sumBlock is the unit in which AppendBinary copies and checksums.
const sumBlock = 64 << 10

// ErrCorrupt is wrapped by UnmarshalBinary for a message that fails its
// checksum or is malformed.
var ErrCorrupt = errors.New("migrate: corrupted message")

// castagnoli is the CRC32C table, made on first use (not at every start
// of the binary: it takes a tenth of a millisecond).
var castagnoli = sync.OnceValue(func() *crc32.Table { return crc32.MakeTable(crc32.Castagnoli) })

// Msg is one message.
type Msg struct {
	Kind Kind
	Data []byte
	// Head, when set, goes before Data in the payload (the address of
	// Pages, without copying the memory that follows).
	Head []byte

	corrupt bool   // test hook: flip a payload byte after the checksum
	release func() // gives Data's buffer back to the transport (Lend)
}

// BinarySize is the length of m's encoding.
func (m *Msg) BinarySize() int { return headerLen + len(m.Head) + len(m.Data) }

// MarshalBinary encodes m with its header and checksum.
func (m *Msg) MarshalBinary() ([]byte, error) { return m.AppendBinary(make([]byte, 0, m.BinarySize())) }

// AppendBinary appends m's encoding to b.
func (m *Msg) AppendBinary(b []byte) ([]byte, error) {
	n := len(m.Head) + len(m.Data)
	if n > MaxData {
		return b, fmt.Errorf("migrate: %s message of %d bytes exceeds %d", m.Kind, n, MaxData)
	}
	at := len(b)
	b = append(b, byte(m.Kind), 0, 0, 0, 0, 0, 0, 0, 0)
	// The payload is copied and checksummed a block at a time, while
	// the block is in the cache: a second pass over a megabyte of pages
	// would read them from memory again.
	tab := castagnoli()
	b = append(b, m.Head...)
	crc := crc32.Update(0, tab, m.Head)
	for d := m.Data; len(d) > 0; {
		k := min(len(d), sumBlock)
		b = append(b, d[:k]...)
		crc = crc32.Update(crc, tab, d[:k])
		d = d[k:]
	}
	msg := b[at:]
	binary.LittleEndian.PutUint32(msg[1:], uint32(n))
	binary.LittleEndian.PutUint32(msg[5:], crc)
	if m.corrupt {
		msg[len(msg)-1] ^= 0x5a
		if n == 0 {
			msg[5] ^= 0x5a
		}
	}
	return b, nil
}

// Lend is called by the transport with the function that takes back the
// buffer m was decoded from (see Release).
func (m *Msg) Lend(release func()) { m.release = release }

// Release gives the buffer m.Data lies in back to the transport, if it
// lent one: call it only once nothing refers to m.Data any longer. A
// message never released is left to the garbage collector.
func (m *Msg) Release() {
	if m.release != nil {
		m.release()
		m.release = nil
	}
}

// UnmarshalBinary decodes one whole message and checks it. Data aliases b.
func (m *Msg) UnmarshalBinary(b []byte) error {
	if len(b) < headerLen {
		return fmt.Errorf("%w: %d bytes, shorter than a header", ErrCorrupt, len(b))
	}
	n := binary.LittleEndian.Uint32(b[1:])
	if uint64(n) != uint64(len(b)-headerLen) || n > MaxData {
		return fmt.Errorf("%w: header says %d bytes of payload, got %d", ErrCorrupt, n, len(b)-headerLen)
	}
	k := Kind(b[0])
	if k == 0 || k >= kLast {
		return fmt.Errorf("%w: unknown kind %d", ErrCorrupt, uint8(k))
	}
	data := b[headerLen:]
	if crc32.Checksum(data, castagnoli()) != binary.LittleEndian.Uint32(b[5:]) {
		return fmt.Errorf("%w: %s message of %d bytes fails its checksum", ErrCorrupt, k, n)
	}
	m.Kind, m.Data = k, data
	return nil
}

// JSON builds a message whose payload is v as JSON.
func JSON(k Kind, v any) Msg {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only our own types are passed
	}
	return Msg{Kind: k, Data: b}
}

// Text builds a message carrying a message for the user.
func Text(k Kind, format string, args ...any) Msg {
	return Msg{Kind: k, Data: []byte(fmt.Sprintf(format, args...))}
}

// Parse decodes a JSON payload into v, naming the kind on error.
func (m Msg) Parse(v any) error {
	if err := json.Unmarshal(m.Data, v); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrCorrupt, m.Kind, err)
	}
	return nil
}

// Begin opens a migration.
type Begin struct {
	ID     uint64 `json:"id"` // for the logs of both sides
	CPID   int64  `json:"cpid"`
	Source int    `json:"source"`
	Pid    int    `json:"pid"` // on the source
	UID    int    `json:"uid"`
	// Run is the Spec of a process run for a deputy (its stdio are the
	// deputy's: new pipes at the target); nil for any other process,
	// whose origin (the node part of its cluster pid) tracks it.
	Run *rexec.Spec `json:"run,omitempty"`
	// Stopped: the process is stopped (SIGSTOP, ssi freeze); it is
	// restored stopped.
	Stopped bool `json:"stopped,omitempty"`
	// Balance: why the source's balancer sends it ("load", "memory",
	// "drain"; "" for a user's move), and its resident memory, for the
	// target's admission control.
	Balance string `json:"balance,omitempty"`
	RSS     uint64 `json:"rss,omitempty"`
	// Age: the seconds the process has lived, over all its nodes (a
	// restored process's start time is its restore's).
	Age float64 `json:"age,omitempty"`
}

// End closes the image: what was sent, so that a cut is seen.
type End struct {
	ImageBytes int64 `json:"image_bytes"`
	StdinBytes int64 `json:"stdin_bytes"`
	// StdinEOF: the end of input was asked for and not yet given; the
	// target closes the new stdin after the pending input.
	StdinEOF bool `json:"stdin_eof,omitempty"`
	// InputBase: of a run, the deputy's input frames that went with the
	// process (those before its new session's first), so that the new
	// node can say where the input stands in the deputy's own count
	// (rexec.Started.InputBase) whatever the home agent knew.
	InputBase int64 `json:"input_base,omitempty"`
}

// Restored is the target's answer once the process is restored, held.
type Restored struct {
	Pid           int    `json:"pid"`
	PidKept       bool   `json:"pid_kept"`
	PidErr        string `json:"pid_err,omitempty"`
	RestoreMicros int64  `json:"restore_us"`
	// The pages written into the staged process, and how long it took.
	Written     int64 `json:"written"`
	WriteMicros int64 `json:"write_us"`
}

// Layout is the address space of a process at the start of its
// pre-copy (checkpoint.PreCopier.Layout), for the target to stage.
type Layout struct {
	Pid      int                  `json:"pid"`
	Mappings []checkpoint.Mapping `json:"mappings"`
	More     bool                 `json:"more,omitempty"` // another part follows (SendLayout)
}

// DumpRequest asks for a process's image (ssi checkpoint).
type DumpRequest struct {
	CPID int64 `json:"cpid"`
	UID  int   `json:"uid"`  // the caller, as its node saw it
	Kill bool  `json:"kill"` // kill the process once the image is safe
}
