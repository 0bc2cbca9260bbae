package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ssi-cluster/ssi/internal/api"
	"github.com/ssi-cluster/ssi/internal/client"
)

// idleCPU is CPU time (user and system, every thread) per second of wall
// time while the cluster does nothing, in ms/s: 10 ms/s is 1% of a core.
type idleCPU struct {
	followerMean, followerMax, master float64
	note                              string // the master changed meanwhile
}

// clockTick is USER_HZ, the unit of /proc/PID/stat's times (100 on Linux).
const clockTick = 10 * time.Millisecond

// cpuTime is a process's user plus system time so far, all threads.
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:]) // fields from 3 (state) on
	ut, err1 := strconv.ParseInt(f[11], 10, 64)              // field 14
	st, err2 := strconv.ParseInt(f[12], 10, 64)              // field 15
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: %q", pid, s)
	}
	return time.Duration(ut+st) * clockTick, nil
}

// masterIndex is the index of the agent that is the master, as agent 0 sees.
func masterIndex(ctx context.Context, c0 *client.Client) (int, error) {
	cl, err := c0.Cluster(ctx)
	if err != nil {
		return 0, err
	}
	nodes, err := c0.Nodes(ctx)
	if err != nil {
		return 0, err
	}
	for _, n := range nodes {
		if n.Number == cl.Master {
			var i int
			if _, err := fmt.Sscanf(n.Name, "node%d", &i); err == nil {
				return i - 1, nil
			}
		}
	}
	return 0, fmt.Errorf("no master (number %d) among the nodes", cl.Master)
}

// measureIdle reads every agent's CPU time, waits, reads it again.
func measureIdle(ctx context.Context, lc *loopCluster, c0 *client.Client, window time.Duration) (idleCPU, error) {
	var r idleCPU
	m, err := masterIndex(ctx, c0)
	if err != nil {
		return r, err
	}
	before := make([]time.Duration, len(lc.procs))
	for i, p := range lc.procs {
		if before[i], err = cpuTime(p.Process.Pid); err != nil {
			return r, err
		}
	}
	t := time.Now()
	select {
	case <-ctx.Done():
		return r, ctx.Err()
	case <-time.After(window):
	}
	wall := time.Since(t).Seconds()
	var sum float64
	for i, p := range lc.procs {
		after, err := cpuTime(p.Process.Pid)
		if err != nil {
			return r, err
		}
		v := float64(after-before[i]) / float64(time.Millisecond) / wall
		if i == m {
			r.master = v
			continue
		}
		sum += v
		r.followerMax = max(r.followerMax, v)
	}
	r.followerMean = sum / float64(len(lc.procs)-1)
	if m2, err := masterIndex(ctx, c0); err != nil || m2 != m {
		r.note = fmt.Sprintf("the master changed during the idle window (node%d, then node%d, %v)", m+1, m2+1, err)
	}
	return r, nil
}

// scaleDetect kills agents that are not the master, one at a time, and
// returns for each the time from the kill until every survivor applied its
// committed down transition (each survivor's own apply time).
func scaleDetect(ctx context.Context, lc *loopCluster, c0 *client.Client, kills int) ([]time.Duration, error) {
	var out []time.Duration
	for k := 0; k < kills; k++ {
		m, err := masterIndex(ctx, c0)
		if err != nil {
			return out, err
		}
		var alive []int
		for i, p := range lc.procs {
			if p != nil && i != 0 && i != m {
				alive = append(alive, i)
			}
		}
		if len(alive) == 0 {
			break
		}
		victim := alive[rand.IntN(len(alive))]
		d, err := killLoopAgent(ctx, lc, victim)
		if err != nil {
			return out, fmt.Errorf("kill %d (node%d): %w", k+1, victim+1, err)
		}
		fmt.Printf("  killed node%d: all survivors applied its down after %s\n", victim+1, ms(d))
		out = append(out, d)
		// Restart it and wait for it to be up everywhere: the next kill
		// must not cost the voters their quorum.
		if err := lc.start(victim, lc.args[victim]...); err != nil {
			return out, err
		}
		if _, err := waitAllUp(ctx, lc, time.Now()); err != nil {
			return out, err
		}
		time.Sleep(time.Second)
	}
	return out, nil
}

func killLoopAgent(ctx context.Context, lc *loopCluster, victim int) (time.Duration, error) {
	var survivors []int
	for i, p := range lc.procs {
		if p != nil && i != victim {
			survivors = append(survivors, i)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	clients := make([]*client.Client, len(survivors))
	epochs := make([]uint64, len(survivors))
	for k, i := range survivors {
		clients[k] = client.New(lc.sock(i))
		defer clients[k].Close()
		cl, err := clients[k].Cluster(ctx)
		if err != nil {
			return 0, err
		}
		epochs[k] = cl.Epoch
	}
	seen := make([]time.Time, len(survivors))
	errs := make([]error, len(survivors))
	var wg sync.WaitGroup
	for k := range survivors {
		wg.Add(1)
		go func() {
			defer wg.Done()
			seen[k], errs[k] = waitDownClient(ctx, clients[k], epochs[k], lc.name(victim))
		}()
	}
	killed := time.Now()
	lc.kill(victim)
	wg.Wait()
	var last time.Time
	for k, t := range seen {
		if errs[k] != nil {
			return 0, fmt.Errorf("node%d: %w", survivors[k]+1, errs[k])
		}
		if t.After(last) {
			last = t
		}
	}
	return last.Sub(killed), nil
}

// waitDownClient waits for the down transition of the node called name,
// committed after epoch, and returns when the agent applied it.
func waitDownClient(ctx context.Context, cl *client.Client, after uint64, name string) (time.Time, error) {
	for {
		ts, err := cl.Transitions(ctx, after, true)
		if err != nil {
			return time.Time{}, err
		}
		for _, t := range ts {
			after = t.Epoch
			if t.Name == name && t.Kind == api.KindDown {
				if t.Seen.IsZero() {
					return time.Now(), nil
				}
				return t.Seen, nil
			}
		}
	}
}

func rssKB(pid int) int { return int(procKB(fmt.Sprintf("/proc/%d/status", pid), "VmRSS:")) }
