package rexec

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
	"path/filepath"
	"strings"
)

// Spec says what to run and as whom. The deputy fills the request part;
// the home agent fills the caller part from the kernel's view of the
// deputy (SO_PEERCRED and /proc), never from what the deputy claims.
type Spec struct {
	// The request (from the deputy).
	Argv    []string `json:"argv"`
	Env     []string `json:"env"`
	Dir     string   `json:"dir"`
	Tty     bool     `json:"tty,omitempty"`     // give the process a pty
	Rows    uint16   `json:"rows,omitempty"`    // its size
	Cols    uint16   `json:"cols,omitempty"`    //
	Termios []byte   `json:"termios,omitempty"` // the deputy's terminal settings (raw struct termios)
	Node    int      `json:"node,omitempty"`    // where to run; 0 with Fast: the best node
	Fast    bool     `json:"fast,omitempty"`
	// LogOutput: the process's output goes to the executing agent's log
	// (`ssi run -d` without an output file), not to the deputy.
	LogOutput bool `json:"log_output,omitempty"`
	// Thread: the deputy thread (tid) whose id names this process (for
	// --np, one thread per rank); 0: the deputy's pid.
	Thread int `json:"thread,omitempty"`
	// NoMigrate pins the process to its node.
	NoMigrate bool `json:"no_migrate,omitempty"`
	// Stdio names the deputy's stdio it passed with the start frame
	// (SCM_RIGHTS, in this order): its home agent reads and writes them
	// itself, a hop less for the data. The others go through the deputy.
	Stdio StdioMask `json:"stdio,omitempty"`
	// Exact: the deputy writes output once whatever happens to its home
	// agent (Delivered) and keeps its input until the node has it
	// (InputHas, InputFrom); it passes no stdin. Input*: a rejoining
	// deputy's last InputHas (its base, node and pid).
	Exact     bool  `json:"exact,omitempty"`
	InputBase int64 `json:"input_base,omitempty"`
	// SessionDelivered: the deputy takes Delivered frames that name the
	// session they count in (rexec.Delivered's Node and Pid).
	SessionDelivered bool `json:"session_delivered,omitempty"`
	InputNode        int  `json:"input_node,omitempty"`
	InputPid         int  `json:"input_pid,omitempty"`
	// Attach re-attaches the home to the process run as this cluster pid,
	// which has moved to the node called (set by the home agent after a
	// Moved frame): nothing new is started.
	Attach int64 `json:"attach,omitempty"`
	// Received: with Attach, how many counted frames of this session the
	// home has received (its node sends the rest again; see Re-attaching).
	// ReceivedPid: the pid of the session Received counts in, on the
	// node called (0: the one there).
	Received    int64 `json:"received,omitempty"`
	ReceivedPid int   `json:"received_pid,omitempty"`
	// GraceMS is how long the process's node keeps it for a home whose
	// stream broke, in milliseconds (the home's run_grace; 0: the node's).
	GraceMS int64 `json:"grace_ms,omitempty"`

	// The caller (filled by the home agent).
	UID     int      `json:"uid"`
	GID     int      `json:"gid"`
	Groups  []int    `json:"groups,omitempty"`
	Umask   int      `json:"umask"`
	Nice    int      `json:"nice"`
	Rlimits []Rlimit `json:"rlimits,omitempty"`
	Home    int      `json:"home"`           // the home node
	CPID    int64    `json:"cpid"`           // the cluster pid the home node gave it
	PPid    int64    `json:"ppid,omitempty"` // cluster pid of the deputy's parent
	PGid    int64    `json:"pgid,omitempty"` // cluster pid of the deputy's process group
}

// StdioMask is a set of the standard streams.
type StdioMask uint8

// The standard streams of a StdioMask.
const (
	PassStdin StdioMask = 1 << iota
	PassStdout
	PassStderr
	// StderrToStdout: no file for stderr; it goes to the stdout one (the
	// deputy's stdout and stderr were one file, and one pipe keeps the
	// order of what the process wrote to both).
	StderrToStdout
)

// Count is how many streams m names.
func (m StdioMask) Count() int {
	return bits.OnesCount8(uint8(m & (PassStdin | PassStdout | PassStderr)))
}

// Rlimit is one resource limit (RLIMIT_* number, soft and hard).
type Rlimit struct {
	Resource int    `json:"resource"`
	Cur      uint64 `json:"cur"`
	Max      uint64 `json:"max"`
}

// Limits on a Spec, generous but finite.
const (
	maxArgs    = 1 << 16
	maxEnv     = 1 << 16
	maxSpecLen = MaxData
)

// ParseSpec decodes and validates a Start payload.
func ParseSpec(b []byte) (*Spec, error) {
	if len(b) > maxSpecLen {
		return nil, fmt.Errorf("run request of %d bytes is too large", len(b))
	}
	var s Spec
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("malformed run request: %w", err)
	}
	return &s, s.Validate()
}

// Validate checks a Spec's request part.
func (s *Spec) Validate() error {
	switch {
	case len(s.Argv) == 0 || s.Argv[0] == "":
		return errors.New("no command to run")
	case len(s.Argv) > maxArgs:
		return fmt.Errorf("%d arguments: at most %d", len(s.Argv), maxArgs)
	case len(s.Env) > maxEnv:
		return fmt.Errorf("%d environment variables: at most %d", len(s.Env), maxEnv)
	case s.Dir == "" || !filepath.IsAbs(s.Dir):
		return fmt.Errorf("working directory %q is not an absolute path", s.Dir)
	case s.Node < 0:
		return fmt.Errorf("node %d is not a node number", s.Node)
	case s.Attach < 0:
		return fmt.Errorf("attach %d is not a cluster pid", s.Attach)
	case s.Received < 0 || s.ReceivedPid < 0 || s.GraceMS < 0:
		return fmt.Errorf("received %d / grace %d ms out of range", s.Received, s.GraceMS)
	case s.Thread < 0:
		return fmt.Errorf("thread %d is not a thread id", s.Thread)
	case s.UID < 0 || s.GID < 0:
		return fmt.Errorf("uid %d / gid %d out of range", s.UID, s.GID)
	case s.Umask < 0 || s.Umask > 0o777:
		return fmt.Errorf("umask %o out of range", s.Umask)
	case s.Nice < -20 || s.Nice > 19:
		return fmt.Errorf("nice %d out of range", s.Nice)
	}
	for _, a := range append(append([]string{s.Dir}, s.Argv...), s.Env...) {
		if strings.IndexByte(a, 0) >= 0 {
			return errors.New("an argument, variable or directory contains a NUL byte")
		}
	}
	for _, e := range s.Env {
		if !strings.Contains(e, "=") {
			return fmt.Errorf("environment entry %q has no '='", e)
		}
	}
	for _, r := range s.Rlimits {
		if r.Resource < 0 || r.Resource >= 16 || r.Cur > r.Max {
			return fmt.Errorf("resource limit %d (%d/%d) is not valid", r.Resource, r.Cur, r.Max)
		}
	}
	for _, g := range s.Groups {
		if g < 0 {
			return fmt.Errorf("group %d out of range", g)
		}
	}
	return nil
}

// Confine lowers, for a request that another node makes for a user who is
// not root, what it asks beyond what such a user may have here: no
// negative nice value (a user may not raise its priority) and no resource
// limit above this node's own hard limit for it (hard returns it; ok false
// when unknown: the limit is left as asked). The asking node vouches for
// its user's identity, not for privileges this node does not give.
func (s *Spec) Confine(hard func(resource int) (max uint64, ok bool)) {
	if s.Nice < 0 {
		s.Nice = 0
	}
	for i := range s.Rlimits {
		r := &s.Rlimits[i]
		if h, ok := hard(r.Resource); ok && r.Max > h {
			r.Max = h
		}
		r.Cur = min(r.Cur, r.Max)
	}
}
