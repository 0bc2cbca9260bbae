package migrate

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// FaultEnv names the environment variable of the TEST-ONLY fault hook,
// read once when the agent starts. It must never be set in production:
// it breaks migrations on purpose. Its value is a comma-separated list
// of actions, one per migration that the agent sends (the first action
// for its first migration, and so on; "ok" for none; migrations after
// the list are left alone). An action ACTION:N acts on message N of that
// migration's stream (1 is Begin, 2 the Layout, then the pre-copy); with
// ACTION:+N, on the Nth message sent once the process is frozen (1 is
// the first of the last pages or of the image):
//
//	corrupt:N   flip a byte of message N after its checksum is computed
//	truncate:N  send nothing from message N on and end the stream (a cut)
//	stall:N     wait StallTime before sending message N (the fault tests
//	            kill the target meanwhile)
//
// The fault tests of the integration suite (internal/itest,
// migrate_fault_test.go) set it; docs/migration.md describes it.
const FaultEnv = "SSITEST_MIGRATE_FAULT"

// StallTime is how long a stall action waits.
const StallTime = 3 * time.Second

// Fault is a parsed fault hook.
type Fault struct {
	actions []Action
	next    atomic.Int64
}

// Action is what the hook does to one migration.
type Action struct {
	What   string // "corrupt", "truncate", "stall" or "ok"
	N      int
	Frozen bool // N counts from the freeze
}

// FaultFromEnv reads FaultEnv; an unset variable is no fault (nil).
func FaultFromEnv() (*Fault, error) {
	v := os.Getenv(FaultEnv)
	if v == "" {
		return nil, nil
	}
	f := &Fault{}
	for _, s := range strings.Split(v, ",") {
		if s == "ok" {
			f.actions = append(f.actions, Action{What: "ok"})
			continue
		}
		a, n, ok := strings.Cut(s, ":")
		frozen := strings.HasPrefix(n, "+")
		k, err := strconv.Atoi(strings.TrimPrefix(n, "+"))
		if !ok || err != nil || k < 1 || (a != "corrupt" && a != "truncate" && a != "stall") {
			return nil, fmt.Errorf("%s=%q: want a list of corrupt:N, truncate:N, stall:N (N or +N) or ok", FaultEnv, v)
		}
		f.actions = append(f.actions, Action{What: a, N: k, Frozen: frozen})
	}
	return f, nil
}

// Next is the action for the next migration (nil: none).
func (f *Fault) Next() *Action {
	if f == nil {
		return nil
	}
	i := f.next.Add(1) - 1
	if i >= int64(len(f.actions)) || f.actions[i].What == "ok" {
		return nil
	}
	return &f.actions[i]
}

// faultyConn applies an Action to the messages sent on a Conn.
type faultyConn struct {
	Conn
	a      *Action
	cut    func() // ends the stream (truncate)
	sent   int
	frozen bool
	dead   bool
}

// Frozen tells c (if it is a faulty Conn) that the process is frozen from
// now on.
func Frozen(c Conn) {
	if f, ok := c.(*faultyConn); ok {
		f.frozen, f.sent = true, 0
	}
}

// WithFault returns c with a applied to what is sent (c itself when a is
// nil); cut ends the underlying stream for truncate.
func WithFault(c Conn, a *Action, cut func()) Conn {
	if a == nil {
		return c
	}
	return &faultyConn{Conn: c, a: a, cut: cut}
}

func (c *faultyConn) Send(m Msg) error {
	if c.dead {
		return nil // cut: what follows is lost
	}
	c.sent++
	if c.sent != c.a.N || c.a.Frozen != c.frozen {
		return c.Conn.Send(m)
	}
	switch c.a.What {
	case "corrupt":
		m.corrupt = true
	case "truncate":
		c.dead = true
		c.cut()
		return nil
	case "stall":
		time.Sleep(StallTime)
	}
	return c.Conn.Send(m)
}

// StepEnv names the environment variable of the TEST-ONLY step hook: the
// path of a file that the integration tests write before a migration,
// holding one "SIDE:ACTION@STEP" (SIDE source or target, ACTION crash or
// pause). The agent on that side of the next migration to reach STEP
// removes the file and acts: crash kills the agent (SIGKILL, as kill -9
// would); pause writes PATH.paused and waits (at most PauseLimit) until
// the test removes it, the test meanwhile cutting the network or stopping
// an agent. Like FaultEnv, it must never be set in production.
//
// The steps of the source: frozen (the copy guarded and journalled, the
// image not sent), sent (the image sent, the target's answer not read),
// restored (the target holds its copy; nothing proposed), decided (the
// agreed state committed; the copy here not killed), committed (killed;
// the target not told). Of the target: image (received, not restored),
// held (restored, guarded, the source told), commit (the commit received,
// the copy not released). Of the home of a run (SIDE home): moved (its
// relay read the process's Moved from the node it left; its deputy not
// told).
const StepEnv = "SSITEST_MIGRATE_STEP_FILE"

// PauseLimit bounds a pause of the step hook.
const PauseLimit = time.Minute

// StepHook is the parsed step hook (nil: none).
type StepHook struct{ path string }

// StepHookFromEnv reads StepEnv.
func StepHookFromEnv() *StepHook {
	if p := os.Getenv(StepEnv); p != "" {
		return &StepHook{path: p}
	}
	return nil
}

// At acts if the hook's file names this side and step.
func (h *StepHook) At(side, step string) {
	if h == nil {
		return
	}
	b, err := os.ReadFile(h.path)
	if err != nil || strings.TrimSpace(string(b)) == "" {
		return
	}
	s, rest, _ := strings.Cut(strings.TrimSpace(string(b)), ":")
	action, at, _ := strings.Cut(rest, "@")
	if s != side || at != step || os.Remove(h.path) != nil {
		return
	}
	switch action {
	case "crash":
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {}
	case "pause":
		marker := h.path + ".paused"
		os.WriteFile(marker, []byte(side+"@"+step+"\n"), 0o644)
		for end := time.Now().Add(PauseLimit); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
			if _, err := os.Stat(marker); err != nil {
				return
			}
		}
		os.Remove(marker)
	}
}
