package ratelimit

import (
	"container/list"
	"sync"
	"time"
)

// Sampler keeps a log short: per key, the first line of each Interval is
// logged and the others are counted. The zero value is not usable; make
// one with NewSampler.
type Sampler struct {
	interval time.Duration
	maxKeys  int

	mu    sync.Mutex
	keys  map[string]*list.Element
	order list.List // of *sample, the one logged longest ago at the back
	lost  int       // lines suppressed for keys evicted before being reported
	lostT time.Time // when the oldest of those was suppressed
}

type sample struct {
	key        string
	logged     time.Time // when the last line for key was logged
	suppressed int       // lines not logged since
}

// Summary is a count of suppressed lines: Suppressed lines for Key since
// Since. Key "" stands for keys the Sampler had to forget (more than its
// maximum number of keys suppressed at once).
type Summary struct {
	Key        string
	Suppressed int
	Since      time.Time
}

// NewSampler returns a Sampler that logs one line per key per interval
// and keeps at most maxKeys keys (10,000 if maxKeys <= 0).
func NewSampler(interval time.Duration, maxKeys int) *Sampler {
	if maxKeys <= 0 {
		maxKeys = 10000
	}
	s := &Sampler{interval: interval, maxKeys: maxKeys, keys: make(map[string]*list.Element)}
	s.order.Init()
	return s
}

// Log says whether a line for key should be logged at now. When it
// should, suppressed is the number of lines for key that were not logged
// since the last one that was (the caller says so in the line, or logs a
// summary first); the count starts again.
func (s *Sampler) Log(key string, now time.Time) (ok bool, suppressed int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if el := s.keys[key]; el != nil {
		m := el.Value.(*sample)
		if now.Sub(m.logged) < s.interval {
			m.suppressed++
			return false, 0
		}
		n := m.suppressed
		m.logged, m.suppressed = now, 0
		s.order.MoveToFront(el)
		return true, n
	}
	for len(s.keys) >= s.maxKeys {
		s.evict(s.order.Back())
	}
	s.keys[key] = s.order.PushFront(&sample{key: key, logged: now})
	return true, 0
}

// Flush returns a Summary for each key whose Interval has passed since its
// last logged line with lines suppressed since, and forgets every key
// whose Interval has passed (the next line for it is logged). Call it
// about once an Interval, so that a burst that stops is still counted in
// the log.
func (s *Sampler) Flush(now time.Time) []Summary {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Summary
	if s.lost > 0 {
		out = append(out, Summary{Suppressed: s.lost, Since: s.lostT})
		s.lost = 0
	}
	for el := s.order.Back(); el != nil; {
		m := el.Value.(*sample)
		if now.Sub(m.logged) < s.interval {
			// The list is ordered by logged time (Log moves a key to the
			// front only when logging it at now), so the rest are newer.
			// A clock stepped back breaks the order; such keys wait.
			break
		}
		prev := el.Prev()
		if m.suppressed > 0 {
			out = append(out, Summary{Key: m.key, Suppressed: m.suppressed, Since: m.logged})
		}
		delete(s.keys, m.key)
		s.order.Remove(el)
		el = prev
	}
	return out
}

// Len returns the number of keys kept.
func (s *Sampler) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.keys)
}

func (s *Sampler) evict(el *list.Element) {
	m := el.Value.(*sample)
	if m.suppressed > 0 {
		if s.lost == 0 || m.logged.Before(s.lostT) {
			s.lostT = m.logged
		}
		s.lost += m.suppressed
	}
	delete(s.keys, m.key)
	s.order.Remove(el)
}
