// Package connlimit caps the connections a listener keeps open for each
// local user, so that one user cannot take every file descriptor of a
// daemon and starve root and everyone else.
//
// The accounting is pure and lives in Counter (how many connections each
// uid holds, and the decision against Limits). Listener wraps a
// net.Listener: at accept time it reads the peer's credentials
// (SO_PEERCRED on a Unix socket), counts the connection against its uid
// and, over the cap, closes it at once (after a one-line answer that says
// why); the count is given back when the connection is closed. Refusals
// are logged at most once per interval per uid (Throttle), with the number
// left unsaid since.
//
// Root (uid 0) is counted but capped only by Limits.Root (0: not at all).
// Connections without credentials (TCP, or a failed SO_PEERCRED) count as
// uid -1, a non-root user of their own.
package connlimit

import (
	"fmt"
	"sync"
	"time"
)

// Anonymous is the uid a connection without credentials is counted as.
const Anonymous = -1

// Limits is how many connections may be open at once. A zero field is no
// cap.
type Limits struct {
	PerUID int // each non-root uid (Anonymous included)
	Total  int // every non-root uid together
	Root   int // uid 0
}

// Decide says whether one more connection of uid may stay, given that
// uid already holds open connections and all non-root uids together hold
// others: "" if it may, else why not.
func (l Limits) Decide(uid, open, others int) string {
	if uid == 0 {
		if l.Root > 0 && open >= l.Root {
			return fmt.Sprintf("root already holds %d connections (the limit)", open)
		}
		return ""
	}
	if l.PerUID > 0 && open >= l.PerUID {
		if uid == Anonymous {
			return fmt.Sprintf("this listener already holds %d connections (its limit)", open)
		}
		return fmt.Sprintf("uid %d already holds %d connections (the limit per user)", uid, open)
	}
	if l.Total > 0 && others >= l.Total {
		return fmt.Sprintf("users other than root already hold %d connections (the limit for all of them)", others)
	}
	return ""
}

// Counter counts the open connections of each uid against Limits. It is
// safe for concurrent use.
type Counter struct {
	mu     sync.Mutex
	lim    Limits
	open   map[int]int
	others int // every non-root uid's
}

// NewCounter returns a Counter that holds to l.
func NewCounter(l Limits) *Counter {
	return &Counter{lim: l, open: map[int]int{}}
}

// Acquire counts one more connection of uid if Limits allow it; else it
// counts nothing and says why.
func (c *Counter) Acquire(uid int) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if why := c.lim.Decide(uid, c.open[uid], c.others); why != "" {
		return why
	}
	c.open[uid]++
	if uid != 0 {
		c.others++
	}
	return ""
}

// Release gives back one connection of uid that Acquire counted.
func (c *Counter) Release(uid int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.open[uid] <= 0 {
		return // never counted: nothing to give back
	}
	if c.open[uid]--; c.open[uid] == 0 {
		delete(c.open, uid)
	}
	if uid != 0 {
		c.others--
	}
}

// Open is how many connections uid holds.
func (c *Counter) Open(uid int) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.open[uid]
}

// Limits is what c holds to.
func (c *Counter) Limits() Limits { return c.lim }

// Throttle lets one event per key through per interval and counts the
// others, for logs that an attacker must not be able to flood.
type Throttle struct {
	mu     sync.Mutex
	every  time.Duration
	last   map[int]time.Time
	missed map[int]int
}

// NewThrottle returns a Throttle that lets one event per key through
// every interval.
func NewThrottle(every time.Duration) *Throttle {
	return &Throttle{every: every, last: map[int]time.Time{}, missed: map[int]int{}}
}

// Allow reports whether an event of key at now may be told, and how many
// events of key were held back since the last one told.
func (t *Throttle) Allow(key int, now time.Time) (ok bool, missed int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if last, seen := t.last[key]; seen && now.Sub(last) < t.every {
		t.missed[key]++
		return false, 0
	}
	missed = t.missed[key]
	delete(t.missed, key)
	t.last[key] = now
	if len(t.last) > 4096 { // forget old keys; a uid comes back as new
		for k, at := range t.last {
			if now.Sub(at) >= t.every {
				delete(t.last, k)
			}
		}
	}
	return true, missed
}
