package agent

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ssi-cluster/ssi/internal/api"
	"github.com/ssi-cluster/ssi/internal/connlimit"
)

// What holds the local API against a local user (docs/install.md, "Local
// users"): every route says who may call it (access), and guard checks
// that from the socket peer's credentials before a byte of the body is
// read; a refused request with a body gets its answer and its connection
// is closed, unread. Bodies are bounded (JSON: jsonBodyMax, read within
// jsonBodyTimeout; an image: spooled to disk, see restore.go), idle
// connections end after idleTimeout, a stream that never sends its first
// frame after startFrameTimeout, and each user other than root holds at
// most max_user_conns connections (package connlimit).

const (
	// maxHeaderBytes bounds a request's headers (Go's default is 1 MiB,
	// which a user could hold on each of its connections).
	maxHeaderBytes = 16 << 10
	// headerTimeout bounds the wait for a request's headers.
	headerTimeout = 5 * time.Second
	// idleTimeout ends a keep-alive connection with no request.
	idleTimeout = 30 * time.Second
	// jsonBodyMax bounds a JSON request body.
	jsonBodyMax = 64 << 10
	// jsonBodyTimeout bounds the reading of a JSON request body.
	jsonBodyTimeout = 10 * time.Second
	// bodyStallTimeout ends an upload (an image) that sends nothing for
	// this long: as long as bytes come, it may take any time.
	bodyStallTimeout = 30 * time.Second
	// startFrameTimeout ends a deputy's stream whose start frame has not
	// come this long after the upgrade.
	startFrameTimeout = 10 * time.Second
	// writeStallTimeout ends a checkpoint's stream to a caller who stops
	// reading the image for this long (the image is held meanwhile).
	writeStallTimeout = 2 * time.Minute
	// refusalLogEvery is how often a refused uid is logged at most.
	refusalLogEvery = 10 * time.Second
)

// access is who may call a route and what it may send.
type access struct {
	what   string // the route in messages: "kill", "restore"
	socket bool   // only on the Unix socket (credentials known)
	root   bool   // only uid 0 (on the socket)
	// rootFor is what only root may do, for the refusal: "change the cluster".
	rootFor string
	pid     bool // the caller's process must be visible (same PID namespace)
	// body: 0 none, > 0 a body of at most that many bytes, read by guard
	// (the handler gets it in memory); streamed: the handler reads it
	// itself, with its own limits.
	body     int64
	streamed bool
}

var (
	readOnly = access{}
	// change is a JSON request that changes something, by any user on the
	// socket (the handler checks ownership).
	change = func(what string) access { return access{what: what, socket: true, body: jsonBodyMax} }
)

// guard wraps h with the checks of acc, all made before the body is read.
func guard(acc access, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c := callerOf(r)
		what := acc.what
		if what == "" {
			what = r.Method + " " + r.URL.Path
		}
		switch {
		case (acc.socket || acc.root) && !c.Unix:
			refuse(w, r, http.StatusForbidden, "%s: accepted only on the agent's Unix socket", what)
			return
		case acc.root && !isAdmin(c.UID):
			refuse(w, r, http.StatusForbidden, "%s: permission denied: only root may %s (you are uid %d)", what, acc.rootFor, c.UID)
			return
		case acc.pid && c.PID <= 0:
			refuse(w, r, http.StatusForbidden, "%s: the agent cannot see your process (another PID namespace): run ssi on the node itself", what)
			return
		case acc.body == 0 && !acc.streamed && r.ContentLength != 0:
			refuse(w, r, http.StatusRequestEntityTooLarge, "%s: takes no request body", what)
			return
		case acc.body > 0 && r.ContentLength > acc.body:
			refuse(w, r, http.StatusRequestEntityTooLarge, "%s: the request body (%d bytes) is larger than the %d accepted", what, r.ContentLength, acc.body)
			return
		}
		if acc.body > 0 {
			b, err := readBody(w, r, acc.body, jsonBodyTimeout)
			if err != nil {
				var tooBig *http.MaxBytesError
				if errors.As(err, &tooBig) {
					refuse(w, r, http.StatusRequestEntityTooLarge, "%s: the request body is larger than the %d bytes accepted", what, acc.body)
				} else {
					refuse(w, r, http.StatusRequestTimeout, "%s: reading the request body: %v", what, err)
				}
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(b))
		}
		h(w, r)
	}
}

// readBody reads r's body, at most max bytes, within d; then the
// connection has no read deadline again (one left would end the request's
// context while the handler works).
func readBody(w http.ResponseWriter, r *http.Request, max int64, d time.Duration) ([]byte, error) {
	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Now().Add(d))
	defer rc.SetReadDeadline(time.Time{})
	return io.ReadAll(http.MaxBytesReader(w, r.Body, max))
}

// refuse answers a refused request. One whose body was not read has its
// connection closed after the answer: the body is never read (the
// server's own 4 KiB header buffer aside), and whatever the client still
// sends goes nowhere.
func refuse(w http.ResponseWriter, r *http.Request, code int, format string, args ...any) {
	if r.ContentLength == 0 {
		writeErr(w, code, format, args...)
		return
	}
	b, _ := json.Marshal(api.Error{Error: fmt.Sprintf(format, args...)})
	b = append(b, '\n')
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	h.Set("Connection", "close")
	w.WriteHeader(code)
	w.Write(b)
	if f, ok := w.(http.Flusher); ok {
		f.Flush() // Hijack sends the header, not what the body buffered
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		return // the server closes it (Connection: close)
	}
	conn, brw, err := hj.Hijack() // flushes the answer
	if err != nil {
		return
	}
	conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	brw.Flush()
	// Half-closed for a moment before the close, so that a TCP peer still
	// sending reads the answer before a reset (as net/http does).
	if cw, ok := unixConnOf(conn).(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
		time.AfterFunc(500*time.Millisecond, func() { conn.Close() })
		return
	}
	conn.Close()
}

// unixConnOf is the connection under any wrappers (connlimit.Conn).
func unixConnOf(c net.Conn) net.Conn {
	for {
		u, ok := c.(interface{ Unwrap() net.Conn })
		if !ok {
			return c
		}
		c = u.Unwrap()
	}
}

// stallReader reads a request body, each read within bodyStallTimeout of
// the last: a slow upload goes on, a stalled one ends.
type stallReader struct {
	r     io.Reader
	rc    *http.ResponseController
	stall time.Duration
}

// errStalled is a body that stopped coming.
var errStalled = errors.New("the upload stalled")

func (s *stallReader) Read(p []byte) (int, error) {
	s.rc.SetReadDeadline(time.Now().Add(s.stall))
	n, err := s.r.Read(p)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		err = fmt.Errorf("%w: nothing came for %v", errStalled, s.stall)
	}
	return n, err
}

// stallWriteConn is a connection each of whose writes must finish within
// stall: a reader that stops reading ends the stream, not the agent's
// patience.
type stallWriteConn struct {
	net.Conn
	stall time.Duration
}

func (c stallWriteConn) Write(p []byte) (int, error) {
	c.Conn.SetWriteDeadline(time.Now().Add(c.stall))
	return c.Conn.Write(p)
}

// connRefusal is the answer to a connection over a cap set by key,
// written before it is closed: an HTTP response, as the CLI reads one.
func connRefusal(key string) func(why string) []byte {
	return func(why string) []byte {
		b, _ := json.Marshal(api.Error{Error: "too many connections: " + why + "; close some, or ask root to raise " + key})
		return fmt.Appendf(nil, "HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s\n", len(b)+1, b)
	}
}

// raiseNoFile raises the soft limit on open files to the hard one and
// returns it (the agent holds a descriptor per connection, per stream,
// per stdio passed).
func raiseNoFile() (uint64, error) {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		return 0, err
	}
	if rl.Cur < rl.Max {
		want := rl
		want.Cur = rl.Max
		if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &want); err != nil {
			return rl.Cur, err
		}
		rl = want
	}
	return rl.Cur, nil
}

// userConnBudget is how many socket connections users other than root
// may hold together, out of nofile descriptors: a quarter (at least 256)
// stays for the agent's own work and root.
func userConnBudget(nofile uint64) int {
	reserve := max(nofile/4, 256)
	if nofile < reserve+16 {
		return 16
	}
	return int(min(nofile-reserve, 1<<30))
}

// socketLimits is the connection caps of the Unix socket.
func socketLimits(perUID int, nofile uint64) connlimit.Limits {
	return connlimit.Limits{PerUID: perUID, Total: userConnBudget(nofile)}
}

// isAdmin reports whether uid administers this agent: root, or the user an
// agent runs as when it does not run as root (ssi dev without root, where
// each agent is its user's).
func isAdmin(uid int) bool { return uid == 0 || uid == os.Geteuid() }
