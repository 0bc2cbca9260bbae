package agent

import (
	"os"
	"strconv"
	"time"

	"github.com/ssi-cluster/ssi/internal/balance"
	"github.com/ssi-cluster/ssi/internal/procstat"
)

// What the balancer knows of this node's processes, read from /proc once
// a round: CPU from the growth of utime+stime since the round before,
// age from the start time, resident memory and threads.

// userHZ is the kernel's USER_HZ, the unit of /proc/PID/stat times
// (100 on every Linux the agent runs on).
const userHZ = 100

// procSample is one process's CPU time at a round.
type procSample struct {
	ticks uint64
	at    time.Time
}

// procFigures reads pid's figures for the balancer (ok false: gone); prev
// is its sample of the round before, if any.
func procFigures(pid int, now time.Time, bootAge float64, prev procSample, hadPrev bool) (balance.Proc, procSample, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return balance.Proc{}, procSample{}, false
	}
	st, err := procstat.Parse(b)
	if err != nil || st.Need(24) != nil {
		return balance.Proc{}, procSample{}, false
	}
	ut, _ := st.Uint(14)
	stime, _ := st.Uint(15)
	threads, _ := st.Uint(20)
	start, _ := st.Uint(22)
	rss, _ := st.Uint(24)
	cur := procSample{ticks: ut + stime, at: now}
	p := balance.Proc{Threads: int(threads), RSS: rss * uint64(os.Getpagesize()), SinceMove: -1}
	if age := bootAge - float64(start)/userHZ; age > 0 {
		p.Age = age
	}
	if hadPrev {
		if dt := now.Sub(prev.at).Seconds(); dt > 0 && cur.ticks >= prev.ticks {
			p.CPU = float64(cur.ticks-prev.ticks) / userHZ / dt
		}
	}
	return p, cur, true
}

// uptime is the seconds since boot (/proc/uptime), 0 if unknown.
func uptime() float64 {
	b, err := os.ReadFile("/proc/uptime")
	if err != nil {
		return 0
	}
	for i, c := range b {
		if c == ' ' {
			v, _ := strconv.ParseFloat(string(b[:i]), 64)
			return v
		}
	}
	return 0
}

// residentBytes is pid's resident memory (0 if unknown).
func residentBytes(pid int) uint64 {
	p, _, ok := procFigures(pid, time.Now(), 0, procSample{}, false)
	if !ok {
		return 0
	}
	return p.RSS
}

// age is the seconds the session's process has lived, over all its nodes
// (bootAge: this machine's uptime).
func (s *runSession) age(now time.Time, bootAge float64) float64 {
	if !s.born.IsZero() {
		return now.Sub(s.born).Seconds()
	}
	p, _, ok := procFigures(s.pid(), now, bootAge, procSample{}, false)
	if !ok {
		return 0
	}
	return p.Age
}
