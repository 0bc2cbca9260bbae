package agent

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ssi-cluster/ssi/internal/api"
	"github.com/ssi-cluster/ssi/internal/rexec"
)

// spyBody is a request body that counts what was read of it.
type spyBody struct {
	r    io.Reader
	read int
}

func (s *spyBody) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	s.read += n
	return n, err
}

func (s *spyBody) Close() error { return nil }

// TestGuard: who may call a route is decided before its body is read; a
// refusal says what is needed and, with a body, closes the connection.
func TestGuard(t *testing.T) {
	root := Caller{Unix: true, UID: 0, GID: 0, PID: 10}
	user := Caller{Unix: true, UID: 1000, GID: 1000, PID: 11}
	otherNS := Caller{Unix: true, UID: 1000, GID: 1000, PID: 0}
	tcp := Caller{}
	big := strings.Repeat("x", 2<<20)
	for _, tc := range []struct {
		name    string
		acc     access
		caller  Caller
		body    string
		length  int64 // Content-Length; -2: len(body)
		code    int
		want    string // in the error
		readMax int    // bytes of the body the guard may read
	}{
		{"read-only on TCP", readOnly, tcp, "", -2, 200, "", 0},
		{"read-only with a body", readOnly, user, "abc", -2, 413, "takes no request body", 0},
		{"read-only with a chunked body", readOnly, user, "abc", -1, 413, "takes no request body", 0},
		{"change on TCP", change("kill"), tcp, `{"cpid":1}`, -2, 403, "kill: accepted only on the agent's Unix socket", 0},
		{"change by a user", change("kill"), user, `{"cpid":1}`, -2, 200, "", 10},
		{"change with a body too big, said", change("kill"), user, big, -2, 413, "larger than the " + strconv.Itoa(jsonBodyMax) + " accepted", 0},
		{"change with a body too big, chunked", change("kill"), user, big, -1, 413, "larger than the " + strconv.Itoa(jsonBodyMax) + " bytes accepted", jsonBodyMax + 1},
		{"root route by a user", access{what: "node leave", root: true, rootFor: "change the cluster"}, user, "", -2, 403,
			"node leave: permission denied: only root may change the cluster (you are uid 1000)", 0},
		{"root route by a user with a big body", access{what: "node leave", root: true, rootFor: "change the cluster"}, user, big, -2, 403,
			"only root may change the cluster", 0},
		{"root route on TCP", access{what: "node leave", root: true}, tcp, "", -2, 403, "only on the agent's Unix socket", 0},
		{"root route by root", access{what: "node leave", root: true}, root, "", -2, 200, "", 0},
		{"pid needed, other namespace", access{what: "restore", socket: true, pid: true, streamed: true}, otherNS, big, -2, 403,
			"restore: the agent cannot see your process (another PID namespace)", 0},
		{"streamed on TCP", access{what: "restore", socket: true, pid: true, streamed: true}, tcp, big, -2, 403,
			"restore: accepted only on the agent's Unix socket", 0},
		{"streamed: the handler reads", access{what: "restore", socket: true, pid: true, streamed: true}, user, "abc", -2, 200, "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spy := &spyBody{r: strings.NewReader(tc.body)}
			req := httptest.NewRequest(http.MethodPost, "/v1/x", nil)
			req.Body = spy
			req.ContentLength = tc.length
			if tc.length == -2 {
				req.ContentLength = int64(len(tc.body))
			}
			req = req.WithContext(context.WithValue(req.Context(), credKey{}, tc.caller))
			called := false
			var got []byte
			h := guard(tc.acc, func(w http.ResponseWriter, r *http.Request) {
				called = true
				if tc.acc.body > 0 {
					got, _ = io.ReadAll(r.Body)
				}
				w.WriteHeader(http.StatusOK)
			})
			rec := httptest.NewRecorder()
			h(rec, req)
			if rec.Code != tc.code {
				t.Fatalf("status %d, want %d (%s)", rec.Code, tc.code, rec.Body)
			}
			if spy.read > tc.readMax {
				t.Errorf("the guard read %d bytes of the body, at most %d allowed", spy.read, tc.readMax)
			}
			if tc.code != 200 {
				if called {
					t.Error("refused, yet the handler ran")
				}
				var e api.Error
				if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || !strings.Contains(e.Error, tc.want) {
					t.Errorf("answer %q (%v), want an error with %q", rec.Body, err, tc.want)
				}
				if req.ContentLength != 0 && rec.Header().Get("Connection") != "close" {
					t.Errorf("a refusal with an unread body keeps the connection (Connection: %q)", rec.Header().Get("Connection"))
				}
				return
			}
			if !called {
				t.Fatal("the handler did not run")
			}
			if tc.acc.body > 0 && string(got) != tc.body {
				t.Errorf("the handler got %q, want %q", got, tc.body)
			}
		})
	}
}

func TestImageLimit(t *testing.T) {
	inf := uint64(math.MaxUint64)
	fsize := func(cur uint64) []rexec.Rlimit {
		return []rexec.Rlimit{{Resource: unix.RLIMIT_NOFILE, Cur: 10, Max: 10}, {Resource: unix.RLIMIT_FSIZE, Cur: cur, Max: inf}}
	}
	const G = 1 << 30
	for _, tc := range []struct {
		name  string
		max   int64
		uid   int
		rl    []rexec.Rlimit
		free  int64
		bytes int64
		why   string
	}{
		{"max_image_size", 16 * G, 1000, fsize(inf), 100 * G, 16 * G, "max_image_size"},
		{"user's ulimit -f", 16 * G, 1000, fsize(G), 100 * G, G, "ulimit -f"},
		{"root's ulimit -f does not count", 16 * G, 0, fsize(G), 100 * G, 16 * G, "max_image_size"},
		{"free space less 1 GiB", 16 * G, 0, nil, 10 * G, 9 * G, "free disk space"},
		{"free space less a tenth", 16 * G, 1000, fsize(inf), 5 * G, 5*G - G/2, "free disk space"},
		{"no free space", 16 * G, 1000, nil, 0, 0, "free disk space"},
		{"free space unknown", 2 * G, 1000, nil, -1, 2 * G, "max_image_size"},
	} {
		l := imageLimit(tc.max, tc.uid, tc.rl, tc.free)
		if l.bytes != tc.bytes || !strings.Contains(l.why, tc.why) {
			t.Errorf("%s: %d (%s), want %d (%s)", tc.name, l.bytes, l.why, tc.bytes, tc.why)
		}
	}
}

func TestVisibleProcs(t *testing.T) {
	procs := []api.Proc{{CPID: 1, UID: 0}, {CPID: 2, UID: 1000}, {CPID: 3, UID: 1001}, {CPID: 4, UID: 1000}}
	cpids := func(ps []api.Proc) (out []int64) {
		for _, p := range ps {
			out = append(out, p.CPID)
		}
		return out
	}
	for _, tc := range []struct {
		name    string
		c       Caller
		hide    bool
		want    []int64
		refused bool
	}{
		{"shown to a user", Caller{Unix: true, UID: 1000}, false, []int64{1, 2, 3, 4}, false},
		{"shown on TCP", Caller{}, false, []int64{1, 2, 3, 4}, false},
		{"hidden from a user", Caller{Unix: true, UID: 1000}, true, []int64{2, 4}, false},
		{"hidden from another user", Caller{Unix: true, UID: 1001}, true, []int64{3}, false},
		{"root sees all", Caller{Unix: true, UID: 0}, true, []int64{1, 2, 3, 4}, false},
		{"TCP refused when hidden", Caller{}, true, nil, true},
	} {
		if refused := procsRefusal(tc.c, tc.hide) != ""; refused != tc.refused {
			t.Errorf("%s: refused %v, want %v", tc.name, refused, tc.refused)
		}
		if got := cpids(visibleProcs(procs, tc.c, tc.hide)); !slicesEqual(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

func slicesEqual(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestUserConnBudget(t *testing.T) {
	for _, tc := range []struct {
		nofile uint64
		want   int
	}{
		{1024, 768},
		{65536, 49152},
		{20000, 15000},
		{512, 256},
		{200, 16},
		{1 << 40, 1 << 30},
	} {
		if got := userConnBudget(tc.nofile); got != tc.want {
			t.Errorf("userConnBudget(%d) = %d, want %d", tc.nofile, got, tc.want)
		}
	}
}

// TestConnRefusal: the answer to a connection over its cap is an HTTP
// response the client reads as an error.
func TestConnRefusal(t *testing.T) {
	b := connRefusal("max_user_conns")("uid 1000 already holds 4 connections (the limit per user)")
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(b)), nil)
	if err != nil {
		t.Fatal(err)
	}
	var e api.Error
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusTooManyRequests || !resp.Close || !strings.Contains(e.Error, "uid 1000 already holds 4") ||
		!strings.Contains(e.Error, "max_user_conns") {
		t.Errorf("%d close=%v %q", resp.StatusCode, resp.Close, e.Error)
	}
}

// TestSpoolBook: uploads side by side are promised the disk apart: each
// one's limit counts what the others hold, until they release it.
func TestSpoolBook(t *testing.T) {
	dir := t.TempDir()
	free := freeSpace(dir)
	if free < 2<<30 {
		t.Skipf("%d bytes free in %s: too little to test", free, dir)
	}
	var b spoolBook
	const maxSize = 1 << 50
	first, r1 := b.take(dir, maxSize, 1000, nil, -1) // unknown size: promised its whole limit
	if b.held != first.bytes || !strings.Contains(first.why, "free disk space") {
		t.Fatalf("first: %v, held %d", first, b.held)
	}
	second, r2 := b.take(dir, maxSize, 1000, nil, 100)
	if second.bytes >= free-first.bytes || b.held != first.bytes+100 {
		t.Errorf("second, beside one promised %d of %d: %v, held %d; want at most the reserve left, 100 more held",
			first.bytes, free, second, b.held)
	}
	r1()
	r1() // once only
	if b.held != 100 {
		t.Errorf("after the first's release: held %d, want 100", b.held)
	}
	r2()
	third, r3 := b.take(dir, maxSize, 1000, nil, 1<<20)
	if third.bytes < 1<<30 || b.held != 1<<20 {
		t.Errorf("third: %v, held %d; want the free space, 1 MiB held", third, b.held)
	}
	huge, r4 := b.take(dir, 1<<20, 1000, nil, 1<<30) // refused on its size: nothing held for it
	if huge.bytes != 1<<20 || b.held != 1<<20 {
		t.Errorf("refused: %v, held %d", huge, b.held)
	}
	r3()
	r4()
	if b.held != 0 {
		t.Errorf("after every release: held %d", b.held)
	}
}

// TestStallReader: an upload that stops sending ends after the stall
// time, with an error that says so; the connection is closed after the
// answer.
func TestStallReader(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body := &stallReader{r: r.Body, rc: http.NewResponseController(w), stall: 200 * time.Millisecond}
		n, err := io.Copy(io.Discard, body)
		if errors.Is(err, errStalled) {
			refuse(w, r, http.StatusRequestTimeout, "after %d bytes: %v", n, err)
			return
		}
		writeErr(w, http.StatusOK, "read %d bytes: %v", n, err)
	}))
	defer srv.Close()
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789")
	conn.SetReadDeadline(time.Now().Add(30 * time.Second)) // a bound, far above the stall
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	var e api.Error
	json.NewDecoder(resp.Body).Decode(&e)
	if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(e.Error, "after 10 bytes: the upload stalled: nothing came for 200ms") {
		t.Errorf("%d %q", resp.StatusCode, e.Error)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		t.Errorf("after the answer: %v, want EOF (closed)", err)
	}
}
