package connlimit

import (
	"bufio"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDecide(t *testing.T) {
	l := Limits{PerUID: 2, Total: 3, Root: 0}
	for _, tc := range []struct {
		name              string
		lim               Limits
		uid, open, others int
		want              string // substring; "" means allowed
	}{
		{"first of a user", l, 1000, 0, 0, ""},
		{"under the per-user cap", l, 1000, 1, 1, ""},
		{"at the per-user cap", l, 1000, 2, 2, "uid 1000 already holds 2 connections (the limit per user)"},
		{"another user under caps", l, 1001, 0, 2, ""},
		{"total reached", l, 1001, 0, 3, "users other than root already hold 3 connections"},
		{"root uncapped", l, 0, 100000, 3, ""},
		{"root capped", Limits{Root: 5}, 0, 5, 0, "root already holds 5 connections"},
		{"root under its cap", Limits{Root: 5}, 0, 4, 0, ""},
		{"anonymous capped", Limits{PerUID: 1}, Anonymous, 1, 1, "this listener already holds 1 connections (its limit)"},
		{"no caps", Limits{}, 1000, 1 << 20, 1 << 20, ""},
		{"root does not count in total", Limits{Total: 1}, 0, 1, 1, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.lim.Decide(tc.uid, tc.open, tc.others)
			if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
				t.Errorf("Decide(%d, %d, %d) = %q, want %q", tc.uid, tc.open, tc.others, got, tc.want)
			}
		})
	}
}

func TestCounter(t *testing.T) {
	type step struct {
		op   string // "+" acquire, "-" release
		uid  int
		ok   bool // for "+"
		open int  // Open(uid) after
	}
	for _, tc := range []struct {
		name  string
		lim   Limits
		steps []step
	}{
		{"per user", Limits{PerUID: 2}, []step{
			{"+", 7, true, 1}, {"+", 7, true, 2}, {"+", 7, false, 2},
			{"+", 8, true, 1}, {"-", 7, true, 1}, {"+", 7, true, 2}, {"+", 7, false, 2},
		}},
		{"total across users", Limits{PerUID: 5, Total: 2}, []step{
			{"+", 7, true, 1}, {"+", 8, true, 1}, {"+", 9, false, 0},
			{"+", 0, true, 1}, {"-", 8, true, 0}, {"+", 9, true, 1},
		}},
		{"root apart", Limits{PerUID: 1, Total: 1}, []step{
			{"+", 7, true, 1}, {"+", 0, true, 1}, {"+", 0, true, 2}, {"+", 7, false, 1},
		}},
		{"release of nothing counted", Limits{PerUID: 1}, []step{
			{"-", 7, true, 0}, {"+", 7, true, 1}, {"+", 7, false, 1}, {"-", 7, true, 0}, {"-", 7, true, 0},
			{"+", 7, true, 1},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := NewCounter(tc.lim)
			for i, s := range tc.steps {
				switch s.op {
				case "+":
					if why := c.Acquire(s.uid); (why == "") != s.ok {
						t.Fatalf("step %d: Acquire(%d) = %q, want ok=%v", i, s.uid, why, s.ok)
					}
				case "-":
					c.Release(s.uid)
				}
				if got := c.Open(s.uid); got != s.open {
					t.Fatalf("step %d (%s%d): Open = %d, want %d", i, s.op, s.uid, got, s.open)
				}
			}
		})
	}
}

func TestThrottle(t *testing.T) {
	th := NewThrottle(time.Second)
	t0 := time.Unix(1000, 0)
	for i, s := range []struct {
		key    int
		at     time.Duration
		ok     bool
		missed int
	}{
		{1, 0, true, 0},
		{1, 100 * time.Millisecond, false, 0},
		{1, 900 * time.Millisecond, false, 0},
		{2, 900 * time.Millisecond, true, 0},
		{1, time.Second, true, 2},
		{1, 1500 * time.Millisecond, false, 0},
		{1, 3 * time.Second, true, 1},
		{1, 5 * time.Second, true, 0},
	} {
		ok, missed := th.Allow(s.key, t0.Add(s.at))
		if ok != s.ok || missed != s.missed {
			t.Errorf("event %d (key %d at %v): %v, %d; want %v, %d", i, s.key, s.at, ok, missed, s.ok, s.missed)
		}
	}
}

// TestListener: over the cap a connection is answered and closed at
// once; closing a counted one (twice, even) frees one place.
func TestListener(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "s")
	inner, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer inner.Close()
	var logged []string
	logc := make(chan string, 16)
	ln := &Listener{Listener: inner, Counter: NewCounter(Limits{PerUID: 2, Root: 2}),
		Refuse: func(why string) []byte { return []byte("refused: " + why + "\n") },
		Log:    func(uid int, why string, missed int) { logc <- why }, Throttle: NewThrottle(time.Hour)}
	accepted := make(chan net.Conn, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	dial := func() net.Conn {
		c, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	a, b := dial(), dial()
	sa, sb := <-accepted, <-accepted
	cc, ok := sa.(*Conn)
	if !ok || !cc.HasCred || int(cc.Cred.Uid) != os.Getuid() || int(cc.Cred.Pid) != os.Getpid() {
		t.Fatalf("accepted %T %+v: want a *Conn with this process's credentials", sa, sa)
	}
	if _, ok := cc.Unwrap().(*net.UnixConn); !ok {
		t.Errorf("Unwrap is %T, want *net.UnixConn", cc.Unwrap())
	}
	// The third is refused: answered, then closed.
	x := dial()
	x.SetReadDeadline(time.Now().Add(30 * time.Second))
	line, _ := bufio.NewReader(x).ReadString('\n')
	if !strings.Contains(line, "refused: ") || !strings.Contains(line, "already holds 2 connections") {
		t.Errorf("refused connection read %q", line)
	}
	if n, err := x.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("refused connection after its answer: %d, %v; want EOF", n, err)
	}
	x.Close()
	logged = append(logged, <-logc)
	if len(logged) != 1 || !strings.Contains(logged[0], "already holds") {
		t.Errorf("logged %q", logged)
	}
	sa.Close()
	sa.Close() // a second Close gives nothing back
	uid := os.Getuid()
	if got := ln.Counter.Open(uid); got != 1 {
		t.Errorf("after closing one of two: %d open, want 1", got)
	}
	c := dial()
	sc := <-accepted
	if got := ln.Counter.Open(uid); got != 2 {
		t.Errorf("after a new one: %d open, want 2", got)
	}
	for _, c := range []net.Conn{a, b, c, sb, sc} {
		c.Close()
	}
	if got := ln.Counter.Open(uid); got != 0 {
		t.Errorf("after closing all: %d open, want 0", got)
	}
	select {
	case why := <-logc:
		t.Errorf("logged again: %q", why)
	default:
	}
}
