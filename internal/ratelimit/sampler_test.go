package ratelimit

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
)

// call is a Log (key set) or a Flush (key empty) and what it should answer.
type call struct {
	at         time.Duration
	key        string
	ok         bool
	suppressed int
	flush      []Summary
}

func logs(at time.Duration, key string, ok bool, suppressed int) call {
	return call{at: at, key: key, ok: ok, suppressed: suppressed}
}

func flush(at time.Duration, want ...Summary) call { return call{at: at, flush: want} }

func TestSamplerTable(t *testing.T) {
	a, b := "10.0.0.5", "10.0.0.6"
	s := time.Second
	tests := []struct {
		name  string
		keys  int
		calls []call
	}{
		{"first line logged, the rest counted", 0, []call{
			logs(0, a, true, 0), logs(s, a, false, 0), logs(9*s, a, false, 0),
			logs(10*s, a, true, 2), logs(11*s, a, false, 0), logs(25*s, a, true, 1),
			logs(40*s, a, true, 0)}},
		{"keys are independent", 0, []call{
			logs(0, a, true, 0), logs(0, b, true, 0), logs(s, a, false, 0), logs(s, b, false, 0),
			logs(10*s, b, true, 1)}},
		{"flush reports a burst that stopped", 0, []call{
			logs(0, a, true, 0), logs(0, a, false, 0), logs(0, a, false, 0), logs(5*s, b, true, 0),
			logs(6*s, b, false, 0),
			flush(9 * s),
			flush(10*s, Summary{a, 2, t0}),
			logs(10*s, a, true, 0), // forgotten by the flush: logged, nothing to add
			flush(15*s, Summary{b, 1, t0.Add(5 * s)}),
			flush(30 * s)}},
		{"a key without suppressed lines flushes silently", 0, []call{
			logs(0, a, true, 0), flush(time.Minute), logs(time.Minute, a, true, 0)}},
		{"evicted counts are reported under the empty key", 2, []call{
			logs(0, a, true, 0), logs(0, a, false, 0), logs(s, b, true, 0),
			logs(2*s, "c", true, 0), // evicts a (1 suppressed)
			logs(2*s, "d", true, 0), // evicts b (none)
			flush(3*s, Summary{"", 1, t0}),
			flush(4 * s)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sm := NewSampler(10*time.Second, tt.keys)
			for i, c := range tt.calls {
				now := t0.Add(c.at)
				if c.key == "" {
					if got := sm.Flush(now); !reflect.DeepEqual(got, c.flush) {
						t.Fatalf("call %d: Flush(+%v) = %+v, want %+v", i, c.at, got, c.flush)
					}
					continue
				}
				if ok, n := sm.Log(c.key, now); ok != c.ok || n != c.suppressed {
					t.Fatalf("call %d: Log(%q, +%v) = %v, %d; want %v, %d", i, c.key, c.at, ok, n, c.ok, c.suppressed)
				}
			}
		})
	}
}

// TestSamplerRandom: every line is either logged or counted exactly once
// (in a later logged line's suppressed count or a Flush summary), at most
// one line per key is logged per interval, and at most maxKeys are kept.
func TestSamplerRandom(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 7))
			interval := time.Duration(1+r.IntN(10)) * time.Second
			maxKeys := 1 + r.IntN(50)
			sm := NewSampler(interval, maxKeys)
			nkeys := 1 + r.IntN(100)
			now := t0
			lines, logged, counted := 0, 0, 0
			last := map[string]time.Time{}
			for i := 0; i < 20000; i++ {
				now = now.Add(time.Duration(r.ExpFloat64() * float64(interval) / 50))
				if r.IntN(200) == 0 {
					for _, s := range sm.Flush(now) {
						counted += s.Suppressed
					}
					continue
				}
				k := fmt.Sprint(r.IntN(nkeys))
				lines++
				ok, n := sm.Log(k, now)
				counted += n
				if ok {
					logged++
					if l, seen := last[k]; seen && now.Sub(l) < interval && maxKeys >= nkeys {
						t.Fatalf("key %s logged %v after its last line (interval %v)", k, now.Sub(l), interval)
					}
					last[k] = now
				} else if n != 0 {
					t.Fatalf("suppressed %d on a line not logged", n)
				}
				if sm.Len() > maxKeys {
					t.Fatalf("%d keys kept, at most %d", sm.Len(), maxKeys)
				}
			}
			for _, s := range sm.Flush(now.Add(interval)) {
				counted += s.Suppressed
			}
			if logged+counted != lines {
				t.Fatalf("%d lines: %d logged + %d counted", lines, logged, counted)
			}
		})
	}
}

func BenchmarkSamplerLog(b *testing.B) {
	sm := NewSampler(10*time.Second, 0)
	now := t0
	for b.Loop() {
		now = now.Add(time.Microsecond)
		sm.Log("10.0.0.5", now)
	}
}
