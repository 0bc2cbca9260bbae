package checkpoint

import (
	"encoding/binary"
	"time"
)

// Image is the saved state of one process. It is a plain
// value: building, encoding and decoding it performs no system calls.
type Image struct {
	Arch   string // "x86_64"
	Kernel string // uname release of the dumping kernel
	Pid    int
	Comm   string // command name, from /proc/PID/stat

	Regs   Regs   // general registers as stopped (raw, before the restart rule)
	XState []byte // NT_X86_XSTATE register set (FPU, SSE, AVX...)

	SigMask    uint64
	SigActions []SigAction
	AltStack   AltStack
	TIDAddress uint64 // set_tid_address value (clear_child_tid)
	RobustList RobustList
	Rseq       Rseq

	MM    MM
	Auxv  []byte
	Exe   string
	Cwd   string
	Umask uint32

	Rlimits  []Rlimit
	Mappings []Mapping // sorted by Start; Data holds contents when needed
	Files    []File

	// Image format version 2 (the ext section); zero in version-1 images.
	ITimers [3]ITimer       // ITIMER_REAL, ITIMER_VIRTUAL, ITIMER_PROF
	Pending []PendingSignal // queued signals, thread queue and shared queue
	Creds   *Creds          // nil: credentials not saved (version 1), left as they are

	// Image format version 3 (the threads section): every thread but the
	// thread-group leader, whose state is in the fields above. Restore
	// gives each its old thread id where that id is free.
	Threads []Thread

	// Image format version 4 (the external and cpu sections).
	External []ExternalFile // descriptors the caller replaces at restore, by fd
	CPU      CPU            // what the process may use of the dumping CPU

	// Image format version 5 (the objects section, written only when
	// there are objects): eventfd, epoll, timerfd and signalfd
	// descriptors, re-created at restore (see kobj.go); and the
	// process's attributes (see attrs.go), nil in older images (a
	// restore then leaves the stub's).
	Objects []KObject
	Attrs   *ProcAttrs
}

// ExternalFile is a descriptor that was held from outside the process
// (Options.External: the deputy's stdio, a pipe, socket or terminal of the
// agent). Its object is not saved: Restore installs the file the caller
// gives for Fd (RestoreOptions.Files).
type ExternalFile struct {
	Fd     int
	Flags  uint32 // open flags as in /proc/PID/fdinfo (access mode, O_NONBLOCK, O_APPEND, O_CLOEXEC...)
	Target string // what it was, as /proc/PID/fd shows it: "pipe:[123]", "/dev/pts/4"
	TTY    bool   // a terminal
	CtlTTY bool   // the process's controlling terminal
}

// Thread is the saved state of one non-leader thread.
type Thread struct {
	Tid        int // thread id at the dump (kept by Restore where free)
	Regs       Regs
	XState     []byte
	SigMask    uint64
	AltStack   AltStack
	TIDAddress uint64
	RobustList RobustList
	Rseq       Rseq
	Pending    []PendingSignal // the thread's private queue (Shared false)
}

// ITimer is one interval timer as getitimer(2) reports it; a zero Value
// means disarmed, unless Interval is not zero: then it is a periodic
// ITIMER_REAL that expired and is re-armed when its SIGALRM is taken.
type ITimer struct {
	Interval, Value time.Duration // microsecond precision
}

// PendingSignal is one queued signal: the raw 128-byte siginfo that
// PTRACE_PEEKSIGINFO returns and rt_sigqueueinfo takes.
type PendingSignal struct {
	Shared bool // in the process-wide queue, not the thread's
	Info   [siginfoSize]byte
}

// Signo is the signal number of the pending signal.
func (p *PendingSignal) Signo() int { return int(int32(binary.LittleEndian.Uint32(p.Info[:4]))) }

const siginfoSize = 128

// Creds are the process credentials from /proc/PID/status.
type Creds struct {
	Uid, Gid [3]uint32 // real, effective, saved
	Groups   []uint32  // supplementary groups
}

// Regs mirrors the kernel's x86_64 struct user_regs_struct, field for field.
type Regs struct {
	R15, R14, R13, R12, Rbp, Rbx, R11, R10, R9, R8 uint64
	Rax, Rcx, Rdx, Rsi, Rdi, OrigRax, Rip          uint64
	CS, Eflags, Rsp, SS, FSBase, GSBase            uint64
	DS, ES, FS, GS                                 uint64
}

// SigAction is one struct kernel_sigaction, as rt_sigaction(2) sees it.
type SigAction struct {
	Sig                            int
	Handler, Flags, Restorer, Mask uint64
}

// AltStack is a stack_t as sigaltstack(2) sees it.
type AltStack struct {
	SP    uint64
	Flags uint32
	Size  uint64
}

// RobustList is what get_robust_list(2) returns.
type RobustList struct{ Head, Len uint64 }

// Rseq is the PTRACE_GET_RSEQ_CONFIGURATION answer; Ptr 0 means none.
type Rseq struct {
	Ptr       uint64
	Size, Sig uint32
}

// MM holds the memory-descriptor fields that PR_SET_MM_MAP restores.
type MM struct {
	StartCode, EndCode, StartData, EndData uint64
	StartBrk, Brk, StartStack              uint64
	ArgStart, ArgEnd, EnvStart, EnvEnd     uint64
}

// Rlimit is one resource limit.
type Rlimit struct {
	Resource int
	Cur, Max uint64
}

// Prot bits of a mapping.
const (
	ProtRead  = 1
	ProtWrite = 2
	ProtExec  = 4
)

// Mapping flags.
const (
	MapShared   = 1 // 's' in /proc/PID/maps; otherwise private
	MapMayWrite = 2 // a shared mapping that may be made writable (smaps "mw": its file is open for writing)
)

// Kind classifies a mapping by how it is restored.
type Kind uint8

// Mapping kinds.
const (
	KindAnon        Kind = iota + 1 // private anonymous: contents copied
	KindHeap                        // [heap]: anonymous, brk area
	KindStack                       // [stack]: anonymous, grows down
	KindFilePrivate                 // private file mapping: mapped from the file, contents copied over
	KindFileShared                  // shared file mapping: mapped from the file, contents are the file's
	KindVDSO                        // [vdso]: remapped by ARCH_MAP_VDSO_64, bytes compared
	KindVVAR                        // [vvar], [vvar_vclock]: come with the vDSO
	KindVsyscall                    // [vsyscall]: fixed, nothing to do
	KindAnonShared                  // MAP_SHARED anonymous memory that no other process maps: contents copied (image version 5)
)

var kindNames = [...]string{"", "anon", "heap", "stack", "file-private", "file-shared", "vdso", "vvar", "vsyscall", "anon-shared"}

func (k Kind) String() string {
	if int(k) < len(kindNames) && k != 0 {
		return kindNames[k]
	}
	return "kind?"
}

// Mapping is one line of /proc/PID/maps plus, when the kind needs it, the
// contents of the whole range.
type Mapping struct {
	Start, End uint64
	Prot       uint8
	Flags      uint8
	Offset     uint64
	Dev        string // "fe:00"
	Inode      uint64
	Path       string // file path or pseudo name such as "[heap]"
	Kind       Kind
	Data       []byte // End-Start bytes, or nil
}

// Size is the length of the mapping in bytes.
func (m *Mapping) Size() uint64 { return m.End - m.Start }

// NeedsData reports whether the mapping's contents are saved in the image.
func (k Kind) NeedsData() bool {
	switch k {
	case KindAnon, KindHeap, KindStack, KindFilePrivate, KindVDSO, KindAnonShared:
		return true
	}
	return false
}

// File is one open regular file (or directory) descriptor.
type File struct {
	Fd     int
	Path   string
	Flags  uint32 // open flags as in /proc/PID/fdinfo
	Offset int64
}
