package agent

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ssi-cluster/ssi/internal/api"
	"github.com/ssi-cluster/ssi/internal/balance"
	"github.com/ssi-cluster/ssi/internal/load"
	"github.com/ssi-cluster/ssi/internal/transport"
	"github.com/ssi-cluster/ssi/internal/vproc"
)

// The balancing driver (config balance = true): once a second it feeds
// the policy (package balance) this node's load vector, the gossiped
// vectors of a random few of its peers, and its runs' figures, and
// carries out the moves it decides, one after the other, as the runs'
// owners would with ssi migrate (the same checks, the same refusals). A
// target takes a process sent for load only if the policy's admission
// control agrees (acceptBalanced). Every move is logged ("balanced").

const (
	balancePeers  = 8                // peers' vectors a round looks at
	refusedFor    = time.Minute      // a process the engine refused is not tried again before this
	guestsWindow  = 2 * time.Second  // processes received this recently count as unmeasured guests
	balanceLogLen = 256              // automatic moves kept for ssi balance log
	moveDeadline  = 60 * time.Second // a balancing migration that takes longer is abandoned
	sentPending   = 3 * time.Second  // a process sent counts in its target's queue this long
	// queueSmoothing is the weight of a round's run queue in its running
	// average (1-e^(-1/5): a time constant of about 5 rounds).
	queueSmoothing = 0.18
)

// balancer is the driver's state between rounds.
type balancer struct {
	mu      sync.Mutex
	samples map[int]procSample  // by pid
	sent    map[int][]time.Time // by node: when this node last sent it processes
	queue   map[int]float64     // by node: its run queue, smoothed over the rounds (queueSmoothing)
	refused map[int64]noMove    // by cluster pid
	guests  []time.Time         // when processes arrived here for load
	events  []api.BalanceEvent  // the last balanceLogLen moves, oldest first
	rng     *rand.Rand
}

type noMove struct {
	why   string
	until time.Time
}

func newBalancer() *balancer {
	return &balancer{samples: map[int]procSample{}, refused: map[int64]noMove{}, sent: map[int][]time.Time{}, queue: map[int]float64{},
		rng: rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0))}
}

// balanceLoop runs a round a second while ctx lasts, if balancing is on.
func (a *Agent) balanceLoop(ctx context.Context) {
	if !a.cfg.Balance {
		return
	}
	a.log.Info("automatic load balancing is on", "aggressiveness", a.cfg.BalanceAggressiveness)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if a.fenceReason() == "" {
			a.balanceRound(ctx)
		}
	}
}

// balanceRound is one round: decide, then move.
func (a *Agent) balanceRound(ctx context.Context) {
	in, owners, ok := a.balanceInput(time.Now())
	if !ok || len(in.Procs) == 0 {
		return
	}
	d := balance.Decide(in)
	for _, m := range d.Moves {
		if ctx.Err() != nil {
			return
		}
		a.balanceMove(ctx, m, owners[m.CPID], in.Self.Number)
	}
}

// balanceMove makes one move the policy decided, as the process's owner
// would, and records it.
func (a *Agent) balanceMove(ctx context.Context, m balance.Move, uid, self int) {
	mctx, cancel := context.WithTimeout(ctx, moveDeadline)
	defer cancel()
	ev := api.BalanceEvent{Time: time.Now(), CPID: m.CPID, UID: uid, From: self, To: m.To, Reason: string(m.Reason), Gain: m.Gain, Detail: m.Detail}
	resp, err := a.moveOut(mctx, &transport.MoveRequest{CPID: m.CPID, To: m.To, UID: uid, From: self, Reason: string(m.Reason)}, a.local(uid))
	b := a.bal
	if err != nil {
		ev.Error = status.Convert(err).Message()
		c := status.Code(err)
		b.mu.Lock()
		switch {
		case isTargetRefusal(err, m.To):
			// The target's admission said no (busy, short of memory):
			// it counts as loaded for a while; the process may go
			// elsewhere.
			b.sent[m.To] = append(b.sent[m.To], time.Now())
		case c == codes.FailedPrecondition || c == codes.PermissionDenied || errors.Is(err, context.DeadlineExceeded):
			b.refused[m.CPID] = noMove{why: ev.Error, until: time.Now().Add(refusedFor)}
		}
		b.mu.Unlock()
		a.log.Warn("balancing: a move was not made", "cpid", showCPID(m.CPID), "to", m.To, "reason", m.Reason, "why", ev.Error)
	} else {
		b.mu.Lock()
		b.sent[m.To] = append(b.sent[m.To], time.Now())
		b.mu.Unlock()
		ev.FreezeMS = float64(resp.FreezeUS) / 1000
		a.log.Info("balanced", "cpid", showCPID(m.CPID), "to", m.To, "reason", m.Reason, "detail", m.Detail,
			"freeze_ms", ev.FreezeMS, "new_pid", resp.NewPid)
	}
	b.mu.Lock()
	b.events = append(b.events, ev)
	if n := len(b.events); n > balanceLogLen {
		b.events = append([]api.BalanceEvent(nil), b.events[n-balanceLogLen:]...)
	}
	b.mu.Unlock()
}

// balanceInput gathers a round's input: this node, a random few up peers
// with their gossiped vectors, and its runs (with each one's owner).
func (a *Agent) balanceInput(now time.Time) (balance.Input, map[int64]int, bool) {
	id := a.Identity()
	v, _, ok := a.gossip.Load(id.ID)
	if !ok {
		return balance.Input{}, nil, false
	}
	b := a.bal
	self := nodeOf(id.Number, v)
	self.Aggressiveness = float64(a.cfg.BalanceAggressiveness) / 100
	self.PSI = memoryPressure()
	var peers []balance.Node
	for _, n := range a.registry().Sorted() {
		if n.Number == id.Number || n.State != api.StateUp {
			continue
		}
		pv, _, ok := a.gossip.Load(n.ID)
		if !ok {
			continue
		}
		peers = append(peers, nodeOf(n.Number, pv))
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	// A run queue sampled once a second is noisy (a job writing its
	// output is not runnable at that instant): each node's is smoothed
	// over the last few rounds, else jobs chase the noise.
	smooth := func(n *balance.Node) {
		q, ok := b.queue[n.Number]
		if !ok {
			q = n.RunQueue
		}
		q += queueSmoothing * (n.RunQueue - q)
		b.queue[n.Number], n.RunQueue = q, q
	}
	smooth(&self)
	// A peer's vector is up to a second or two old: the processes sent it
	// since count in its queue (else the next round sends it more).
	for i := range peers {
		smooth(&peers[i])
		recent := within(b.sent[peers[i].Number], now, sentPending)
		b.sent[peers[i].Number] = recent
		peers[i].RunQueue += float64(len(recent))
	}
	b.rng.Shuffle(len(peers), func(i, j int) { peers[i], peers[j] = peers[j], peers[i] })
	peers = peers[:min(len(peers), balancePeers)]
	up := vproc.Uptime("/proc")
	owners := map[int64]int{}
	samples := map[int]procSample{}
	var procs []balance.Proc
	for _, s := range a.mig.all() {
		if s.native() || s.spec.Tty {
			continue
		}
		prev, had := b.samples[s.pid()]
		p, cur, ok := procFigures(s.pid(), now, up, prev, had)
		if !ok {
			continue
		}
		samples[s.pid()] = cur
		p.CPID, p.Pinned = s.rec.CPID, s.rec.NoMigrate
		if r, ok := b.refused[p.CPID]; ok && now.Before(r.until) {
			p.CantMove = r.why
		}
		if at := s.arrivedAt(); !at.IsZero() {
			p.SinceMove = now.Sub(at).Seconds()
		}
		p.Age = s.lifetime(now, p.Age)
		owners[p.CPID] = s.spec.UID
		procs = append(procs, p)
	}
	b.samples = samples
	for c, r := range b.refused {
		if now.After(r.until) {
			delete(b.refused, c)
		}
	}
	return balance.Input{Self: self, Peers: peers, Procs: procs, Params: balance.Defaults(), Seed: b.rng.Uint64()}, owners, true
}

// acceptBalanced is this node's admission of a process sent to it by a
// balancer (reason: why it was sent), "" if it takes it: the policy's
// Admit on this node's vector, with the processes it took for load in the
// last guestsWindow as its unmeasured guests.
func (a *Agent) acceptBalanced(reason string, rss uint64) string {
	if reason == "" {
		return "" // a user's move: the user chose
	}
	id := a.Identity()
	v, _, ok := a.gossip.Load(id.ID)
	if !ok {
		return ""
	}
	b := a.bal
	now := time.Now()
	b.mu.Lock()
	b.guests = within(b.guests, now, guestsWindow)
	n := nodeOf(id.Number, v)
	n.AcceptGuests, n.Guests, n.PSI = a.cfg.Balance, len(b.guests), memoryPressure()
	why := balance.Admit(n, rss, balance.Reason(reason), balance.Defaults())
	if why == "" && reason == string(balance.ForLoad) {
		b.guests = append(b.guests, now)
	}
	b.mu.Unlock()
	return why
}

// nodeOf is node num as its load vector v shows it to the balancer (it
// accepts guests and sends away: the settings are not in the agreed
// state yet).
func nodeOf(num int, v load.Vector) balance.Node {
	return balance.Node{Number: num, RunQueue: float64(v.RunQueue), Cores: int(v.Cores), Speed: int(v.Speed),
		MemTotal: v.MemTotal, MemFree: v.MemFree, AcceptGuests: true, SendAway: true}
}

// within keeps the times of ts less than d before now (in place).
func within(ts []time.Time, now time.Time, d time.Duration) []time.Time {
	kept := ts[:0]
	for _, t := range ts {
		if now.Sub(t) < d {
			kept = append(kept, t)
		}
	}
	return kept
}

// handleBalanceLog serves GET /v1/balance/log: the automatic moves kept,
// oldest first, as ps shows processes: with hide_other_procs, only on
// the Unix socket and only the caller's own (root's: all).
func (a *Agent) handleBalanceLog(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	if why := procsRefusal(c, a.cfg.HideOtherProcs); why != "" {
		writeErr(w, http.StatusForbidden, "%s", why)
		return
	}
	a.bal.mu.Lock()
	moves := visibleMoves(a.bal.events, c, a.cfg.HideOtherProcs)
	a.bal.mu.Unlock()
	writeJSON(w, http.StatusOK, api.BalanceLog{On: a.cfg.Balance, Moves: moves})
}

// visibleMoves is what c may see of the moves evs (a copy), as
// visibleProcs is for processes.
func visibleMoves(evs []api.BalanceEvent, c Caller, hide bool) []api.BalanceEvent {
	out := make([]api.BalanceEvent, 0, len(evs))
	for _, ev := range evs {
		if !hide || c.Unix && (c.UID == 0 || ev.UID == c.UID) {
			out = append(out, ev)
		}
	}
	return out
}
