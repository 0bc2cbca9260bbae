package agent

import (
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/ssi-cluster/ssi/internal/balance"
	"github.com/ssi-cluster/ssi/internal/vproc"
)

// What the balancer knows of this node's processes, read from /proc once
// a round (vproc.Lookup): CPU from the growth of its CPU time since the
// round before, age, resident memory and threads.

// procSample is one process's CPU time at a round.
type procSample struct {
	cpu float64 // seconds
	at  time.Time
}

// procFigures reads pid's figures for the balancer (ok false: gone); up is
// the machine's uptime (vproc.Uptime, read once a round), prev the
// process's sample of the round before, if any.
func procFigures(pid int, now time.Time, up float64, prev procSample, hadPrev bool) (balance.Proc, procSample, bool) {
	vp, ok := vproc.Lookup("/proc", pid)
	if !ok {
		return balance.Proc{}, procSample{}, false
	}
	cur := procSample{cpu: vp.CPUTime, at: now}
	p := balance.Proc{Threads: vp.Threads, RSS: vp.RSS, Age: max(0, up-vp.Start), SinceMove: -1}
	if dt := now.Sub(prev.at).Seconds(); hadPrev && dt > 0 && cur.cpu >= prev.cpu {
		p.CPU = (cur.cpu - prev.cpu) / dt
	}
	return p, cur, true
}

// residentBytes is pid's resident memory (0 if unknown).
func residentBytes(pid int) uint64 {
	vp, _ := vproc.Lookup("/proc", pid)
	return vp.RSS
}

// lifetime is the seconds the session's process has lived over all its
// nodes, given here, its age on this one (a restored process's start is
// its restore's).
func (s *runSession) lifetime(now time.Time, here float64) float64 {
	if !s.born.IsZero() {
		return now.Sub(s.born).Seconds()
	}
	return here
}

// memoryPressure is this machine's memory pressure, the "some avg10" of
// /proc/pressure/memory in percent (0 where the kernel has no PSI).
func memoryPressure() float64 {
	b, err := os.ReadFile("/proc/pressure/memory")
	if err != nil {
		return 0
	}
	return someAvg10(string(b))
}

// someAvg10 is the "some avg10" figure of a PSI file's text (0 if none).
func someAvg10(text string) float64 {
	_, rest, ok := strings.Cut(text, "some avg10=")
	if f := strings.Fields(rest); ok && len(f) > 0 {
		v, _ := strconv.ParseFloat(f[0], 64)
		return v
	}
	return 0
}
