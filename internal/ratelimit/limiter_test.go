package ratelimit

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC)

// step is one call: at t0+at, op on key; for "allow", the expected answer.
type step struct {
	at    time.Duration
	op    string // allow, fail, ok (Succeeded)
	key   string
	want  bool
	retry time.Duration
}

func run(t *testing.T, l *Limiter, steps []step) {
	t.Helper()
	for i, s := range steps {
		now := t0.Add(s.at)
		switch s.op {
		case "allow":
			ok, retry := l.Allow(s.key, now)
			if ok != s.want || retry != s.retry {
				t.Fatalf("step %d: Allow(%q, +%v) = %v, %v; want %v, %v", i, s.key, s.at, ok, retry, s.want, s.retry)
			}
		case "fail":
			l.Failed(s.key, now)
		case "ok":
			l.Succeeded(s.key, now)
		default:
			t.Fatalf("step %d: op %q", i, s.op)
		}
	}
}

// attempt is an allowed attempt that fails at once.
func attempt(at time.Duration, key string) []step {
	return []step{{at: at, op: "allow", key: key, want: true}, {at: at, op: "fail", key: key}}
}

func concat(parts ...[]step) []step {
	var out []step
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func TestLimiterTable(t *testing.T) {
	a, b := "10.0.0.5", "10.0.0.6"
	s := time.Second
	burst := concat(attempt(0, a), attempt(0, a), attempt(0, a), attempt(0, a), attempt(0, a))
	tests := []struct {
		name  string
		cfg   Config
		steps []step
	}{
		{"burst of 5 then 1 s", Config{}, concat(burst,
			[]step{{at: 0, op: "allow", key: a, want: false, retry: s}},
			[]step{{at: 999 * time.Millisecond, op: "allow", key: a, want: false, retry: time.Millisecond}},
			attempt(s, a))},
		{"waits double up to the cap", Config{}, concat(burst,
			attempt(1*s, a), // 6th: wait 2 s
			[]step{{at: 2 * s, op: "allow", key: a, want: false, retry: s}},
			attempt(3*s, a), // 7th: 4 s
			[]step{{at: 6 * s, op: "allow", key: a, want: false, retry: s}},
			attempt(7*s, a),  // 8th: 8 s
			attempt(15*s, a), // 9th: 16 s
			attempt(31*s, a), // 10th: 32 s capped at 30
			[]step{{at: 31 * s, op: "allow", key: a, want: false, retry: 30 * s}},
			attempt(61*s, a), // 11th: still 30
			[]step{{at: 61 * s, op: "allow", key: a, want: false, retry: 30 * s}})},
		{"a success forgets the key", Config{}, concat(burst,
			[]step{{at: s, op: "allow", key: a, want: true}, {at: s, op: "ok", key: a}},
			burst[:2], // a fresh burst, at t0 again: time stepped back is harmless
			attempt(s, a), attempt(s, a), attempt(s, a))},
		{"keys are independent", Config{}, concat(burst,
			[]step{{at: 0, op: "allow", key: a, want: false, retry: s}},
			attempt(0, b))},
		{"allow counts before the outcome", Config{}, []step{
			{op: "allow", key: a, want: true}, {op: "allow", key: a, want: true}, {op: "allow", key: a, want: true},
			{op: "allow", key: a, want: true}, {op: "allow", key: a, want: true},
			{op: "allow", key: a, want: false, retry: s}}},
		{"the wait starts when the attempt failed", Config{}, concat(burst[:8],
			[]step{{at: 0, op: "allow", key: a, want: true}, {at: 5 * s, op: "fail", key: a}},
			[]step{{at: 5 * s, op: "allow", key: a, want: false, retry: s}},
			attempt(6*s, a))},
		{"failed without allow counts one", Config{Burst: 2}, []step{
			{op: "fail", key: a}, {op: "allow", key: a, want: true},
			{op: "allow", key: a, want: false, retry: s}}},
		{"global limit", Config{GlobalRate: 2, GlobalBurst: 3}, concat(
			attempt(0, "1"), attempt(0, "2"), attempt(0, "3"),
			[]step{{at: 0, op: "allow", key: "4", want: false, retry: 500 * time.Millisecond}},
			[]step{{at: 250 * time.Millisecond, op: "allow", key: "4", want: false, retry: 250 * time.Millisecond}},
			attempt(500*time.Millisecond, "4"),
			[]step{{at: 500 * time.Millisecond, op: "allow", key: "5", want: false, retry: 500 * time.Millisecond}})},
		{"successes give their global token back", Config{GlobalRate: 1, GlobalBurst: 1}, []step{
			{op: "allow", key: a, want: true}, {op: "ok", key: a},
			{op: "allow", key: b, want: true}, {op: "fail", key: b},
			{op: "allow", key: a, want: false, retry: s}}},
		{"a key in its wait does not spend global tokens", Config{GlobalRate: 1, GlobalBurst: 6}, concat(burst,
			[]step{{at: 0, op: "allow", key: a, want: false, retry: s}},
			[]step{{at: 0, op: "allow", key: a, want: false, retry: s}},
			attempt(0, b))},
		{"eviction of the oldest key gives it a fresh burst", Config{Burst: 1, Keys: 2, GlobalBurst: 100}, concat(
			attempt(0, "1"), attempt(0, "2"),
			[]step{{at: 0, op: "allow", key: "1", want: false, retry: s}},
			attempt(0, "3"), // evicts 1
			attempt(0, "1"))},
		{"idle keys are forgotten", Config{Burst: 1, Forget: time.Minute}, concat(
			attempt(0, a),
			[]step{{at: 59 * s, op: "allow", key: a, want: true}, {at: 59 * s, op: "fail", key: a}},
			[]step{{at: 59 * s, op: "allow", key: a, want: false, retry: 2 * s}},
			attempt(2*time.Minute, a), // forgotten: a wait of Base again
			[]step{{at: 2 * time.Minute, op: "allow", key: a, want: false, retry: s}})},
		{"a key still waiting is not forgotten", Config{Burst: 1, Base: 10 * time.Minute, Max: time.Hour, Forget: time.Minute}, concat(
			attempt(0, a),
			[]step{{at: 5 * time.Minute, op: "allow", key: a, want: false, retry: 5 * time.Minute}})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { run(t, New(tt.cfg), tt.steps) })
	}
}

func TestDefaults(t *testing.T) {
	if got := New(Config{}).Config(); got != DefaultConfig() {
		t.Fatalf("Config() = %+v, want %+v", got, DefaultConfig())
	}
	if got := New(Config{Base: time.Minute, Max: time.Second}).Config(); got.Max != time.Minute {
		t.Fatalf("Max below Base: %v, want raised to Base", got.Max)
	}
	l := New(Config{})
	want := []time.Duration{0, 0, 0, 0, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second,
		16 * time.Second, 30 * time.Second, 30 * time.Second, 30 * time.Second}
	for i, w := range want {
		if got := l.wait(i + 1); got != w {
			t.Errorf("wait after failure %d = %v, want %v", i+1, got, w)
		}
	}
	if got := l.wait(1 << 30); got != 30*time.Second {
		t.Errorf("wait after many failures = %v", got)
	}
}

// TestLimiterRandom drives many keys with random limits, times and
// outcomes and checks after every call: at most Keys keys are kept; per
// key, no two allowed attempts after the burst closer than Base (while the
// key is kept: eviction and forgetting start it afresh); a refusal's
// retryAfter is positive.
func TestLimiterRandom(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, seed))
			cfg := randomConfig(r)
			l := New(cfg)
			nkeys := 1 + r.IntN(2*cfg.Keys)
			now := t0
			allowed := map[string][]time.Time{} // per kept key, its allowed attempts
			for i := 0; i < 20000; i++ {
				now = now.Add(time.Duration(r.ExpFloat64() * float64(cfg.Base) / 20))
				k := fmt.Sprint(r.IntN(nkeys))
				l.mu.Lock()
				l.expire(now) // as Allow will: a key it forgets starts afresh
				_, kept := l.keys[k]
				l.mu.Unlock()
				if !kept {
					delete(allowed, k)
				}
				ok, retry := l.Allow(k, now)
				if !ok {
					if retry <= 0 {
						t.Fatalf("refused with retryAfter %v", retry)
					}
					continue
				}
				a := append(allowed[k], now)
				allowed[k] = a
				if n := len(a); n > cfg.Burst {
					if gap := now.Sub(a[n-2]); gap < cfg.Base {
						t.Fatalf("key %s: attempt %d only %v after the one before (Base %v)", k, n, gap, cfg.Base)
					}
				}
				if r.IntN(50) == 0 {
					l.Succeeded(k, now)
					delete(allowed, k)
				} else {
					l.Failed(k, now.Add(time.Duration(r.IntN(3))*cfg.Base/4))
				}
				if n := l.Len(); n > cfg.Keys {
					t.Fatalf("%d keys kept, at most %d", n, cfg.Keys)
				}
			}
		})
	}
}

func randomConfig(r *rand.Rand) Config {
	cfg := Config{Burst: 1 + r.IntN(6), Base: time.Duration(1+r.IntN(1000)) * time.Millisecond,
		Keys: 1 + r.IntN(200), GlobalRate: float64(1 + r.IntN(100)), GlobalBurst: 1 + r.IntN(100),
		Forget: time.Duration(1+r.IntN(60)) * time.Second}
	cfg.Max = cfg.Base * time.Duration(1+r.IntN(40))
	return cfg
}

// TestGlobalRandom sprays failing attempts from more addresses than the
// Limiter keeps and checks that in every span between two allowed
// attempts there are at most GlobalBurst + GlobalRate x span of them, and
// that memory stays within Keys.
func TestGlobalRandom(t *testing.T) {
	for seed := uint64(1); seed <= 10; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 99))
			cfg := randomConfig(r)
			l := New(cfg)
			now := t0
			var allowed []time.Time
			for i := 0; i < 10000; i++ {
				now = now.Add(time.Duration(r.ExpFloat64() * float64(time.Second) / cfg.GlobalRate / 4))
				k := fmt.Sprint(r.IntN(100000))
				if ok, _ := l.Allow(k, now); ok {
					allowed = append(allowed, now)
					l.Failed(k, now)
				}
				if n := l.Len(); n > cfg.Keys {
					t.Fatalf("%d keys kept, at most %d", n, cfg.Keys)
				}
			}
			if len(allowed) == 0 {
				t.Fatal("nothing allowed")
			}
			for i := range allowed {
				// Windows of up to 4 bursts and 400 attempts more.
				for j := i; j < len(allowed) && j < i+4*cfg.GlobalBurst+400; j++ {
					span := allowed[j].Sub(allowed[i]).Seconds()
					limit := float64(cfg.GlobalBurst) + span*cfg.GlobalRate
					if float64(j-i+1) > limit+1e-6 {
						t.Fatalf("%d attempts in %.3fs, global limit %v/s burst %d", j-i+1, span, cfg.GlobalRate, cfg.GlobalBurst)
					}
				}
			}
		})
	}
}

// TestConcurrent runs Allow, Failed and Succeeded from several goroutines
// (for the race detector) and checks the memory bound.
func TestConcurrent(t *testing.T) {
	l := New(Config{Keys: 100})
	done := make(chan bool)
	for g := 0; g < 4; g++ {
		go func() {
			for i := 0; i < 2000; i++ {
				k := fmt.Sprint((i * 7) % 300)
				now := t0.Add(time.Duration(i) * time.Millisecond)
				if ok, _ := l.Allow(k, now); ok {
					if i%10 == 0 {
						l.Succeeded(k, now)
					} else {
						l.Failed(k, now)
					}
				}
			}
			done <- true
		}()
	}
	for g := 0; g < 4; g++ {
		<-done
	}
	if n := l.Len(); n > 100 {
		t.Fatalf("%d keys kept", n)
	}
}

func BenchmarkAllow(b *testing.B) {
	b.Run("one key", func(b *testing.B) {
		l := New(Config{})
		now := t0
		for b.Loop() {
			now = now.Add(time.Millisecond)
			l.Allow("10.0.0.5", now)
		}
	})
	// Allow and Failed, 20,000 addresses in turn through 10,000 kept: each
	// call evicts one key and makes another.
	b.Run("20000 keys evicting", func(b *testing.B) {
		l := New(Config{GlobalRate: 1e9, GlobalBurst: 1e9})
		keys := make([]string, 20000)
		for i := range keys {
			keys[i] = fmt.Sprintf("10.%d.%d.%d", i>>16, i>>8&255, i&255)
		}
		now := t0
		i := 0
		for b.Loop() {
			now = now.Add(time.Microsecond)
			k := keys[i%len(keys)]
			if ok, _ := l.Allow(k, now); ok {
				l.Failed(k, now)
			}
			i++
		}
	})
}
