package ratelimit

import (
	"container/list"
	"sync"
	"time"
)

// Config sets a Limiter's limits. Zero fields take the defaults of
// DefaultConfig.
type Config struct {
	Burst       int           // attempts per key before waits begin (5)
	Base        time.Duration // the first wait (1 s)
	Max         time.Duration // the longest wait (30 s)
	Keys        int           // keys kept at most (10,000)
	Forget      time.Duration // a key idle this long is dropped (10 min)
	GlobalRate  float64       // attempts a second across all keys (50)
	GlobalBurst int           // attempts at once across all keys (50)
}

// DefaultConfig returns the defaults: a burst of 5, then waits from 1 s
// doubling up to 30 s, 10,000 keys forgotten after 10 idle minutes, and 50
// failed attempts a second across all keys.
func DefaultConfig() Config {
	return Config{Burst: 5, Base: time.Second, Max: 30 * time.Second, Keys: 10000,
		Forget: 10 * time.Minute, GlobalRate: 50, GlobalBurst: 50}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Burst <= 0 {
		c.Burst = d.Burst
	}
	if c.Base <= 0 {
		c.Base = d.Base
	}
	if c.Max <= 0 {
		c.Max = d.Max
	}
	if c.Max < c.Base {
		c.Max = c.Base
	}
	if c.Keys <= 0 {
		c.Keys = d.Keys
	}
	if c.Forget <= 0 {
		c.Forget = d.Forget
	}
	if c.GlobalRate <= 0 {
		c.GlobalRate = d.GlobalRate
	}
	if c.GlobalBurst <= 0 {
		c.GlobalBurst = d.GlobalBurst
	}
	return c
}

// entry is one key's record; it sits in the Limiter's list, most recently
// seen first.
type entry struct {
	key  string
	n    int       // attempts counted as failures since the last success
	next time.Time // no attempt before this
	seen time.Time // the last attempt or failure
}

// Limiter limits failing attempts per key and across all keys. The zero
// value is not usable; make one with New.
type Limiter struct {
	cfg Config

	mu     sync.Mutex
	keys   map[string]*list.Element
	order  list.List // of *entry, most recently seen at the front
	tokens float64   // the global bucket
	filled time.Time // when tokens was last brought up to date
}

// New returns a Limiter with cfg's limits (zero fields: the defaults).
func New(cfg Config) *Limiter {
	cfg = cfg.withDefaults()
	l := &Limiter{cfg: cfg, keys: make(map[string]*list.Element), tokens: float64(cfg.GlobalBurst)}
	l.order.Init()
	return l
}

// Config returns the limits in force (defaults filled in).
func (l *Limiter) Config() Config { return l.cfg }

// wait is the wait that the n-th failure of a key imposes on its next
// attempt: none before Burst, then Base doubling up to Max.
func (l *Limiter) wait(n int) time.Duration {
	if n < l.cfg.Burst {
		return 0
	}
	d := l.cfg.Base
	for i := l.cfg.Burst; i < n; i++ {
		d *= 2
		if d >= l.cfg.Max {
			return l.cfg.Max
		}
	}
	return d
}

// refill brings the global bucket up to now. Time going backwards (a
// caller's clock stepped back) adds nothing.
func (l *Limiter) refill(now time.Time) {
	if l.filled.IsZero() {
		l.filled = now
		return
	}
	if dt := now.Sub(l.filled); dt > 0 {
		l.tokens += dt.Seconds() * l.cfg.GlobalRate
		if max := float64(l.cfg.GlobalBurst); l.tokens > max {
			l.tokens = max
		}
		l.filled = now
	}
}

// Allow says whether an attempt from key may be made at now; if not,
// retryAfter says how long until one may (at least a nanosecond). An
// allowed attempt is counted as a failure until Succeeded says otherwise.
func (l *Limiter) Allow(key string, now time.Time) (ok bool, retryAfter time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.expire(now)
	el := l.keys[key]
	if el != nil {
		if e := el.Value.(*entry); now.Before(e.next) {
			return false, e.next.Sub(now)
		}
	}
	l.refill(now)
	if l.tokens < 1 {
		d := time.Duration((1 - l.tokens) / l.cfg.GlobalRate * float64(time.Second))
		return false, max(d, 1)
	}
	l.tokens--
	e := l.touch(key, el, now)
	e.n++
	if w := l.wait(e.n); w > 0 {
		e.next = now.Add(w)
	}
	return true, 0
}

// Failed records that an attempt from key failed at now: the wait its
// failure imposes starts now. A key unknown (never allowed, or evicted since)
// is recorded as one failed attempt.
func (l *Limiter) Failed(key string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.expire(now)
	el := l.keys[key]
	e := l.touch(key, el, now)
	if el == nil {
		e.n = 1
	}
	if w := l.wait(e.n); w > 0 {
		if t := now.Add(w); t.After(e.next) {
			e.next = t
		}
	}
}

// Succeeded records that an attempt from key succeeded: the key is
// forgotten and its attempt's global token given back.
func (l *Limiter) Succeeded(key string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if el := l.keys[key]; el != nil {
		l.order.Remove(el)
		delete(l.keys, key)
	}
	l.refill(now)
	if l.tokens++; l.tokens > float64(l.cfg.GlobalBurst) {
		l.tokens = float64(l.cfg.GlobalBurst)
	}
}

// Len returns the number of keys kept.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.keys)
}

// touch returns key's entry (el, or a new one, evicting the key seen
// longest ago when Keys are kept), marked seen at now.
func (l *Limiter) touch(key string, el *list.Element, now time.Time) *entry {
	if el != nil {
		e := el.Value.(*entry)
		if now.After(e.seen) {
			e.seen = now
		}
		l.order.MoveToFront(el)
		return e
	}
	for len(l.keys) >= l.cfg.Keys {
		l.drop(l.order.Back())
	}
	e := &entry{key: key, seen: now}
	l.keys[key] = l.order.PushFront(e)
	return e
}

// expire drops keys idle for Forget whose wait is over, oldest first; a
// key still waiting is kept whatever its age. The list is ordered by
// touch, not strictly by seen, so this stops at the first key that may not
// go: the others go at a later call or by eviction.
func (l *Limiter) expire(now time.Time) {
	for el := l.order.Back(); el != nil; el = l.order.Back() {
		e := el.Value.(*entry)
		if now.Sub(e.seen) < l.cfg.Forget || now.Before(e.next) {
			return
		}
		l.drop(el)
	}
}

func (l *Limiter) drop(el *list.Element) {
	delete(l.keys, el.Value.(*entry).key)
	l.order.Remove(el)
}
