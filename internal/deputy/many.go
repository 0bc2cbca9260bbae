package deputy

import (
	"context"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/ssi-cluster/ssi/internal/client"
	"github.com/ssi-cluster/ssi/internal/rexec"
)

// RunMany starts k instances of o.Argv spread over the nodes by load, each
// with SSI_RANK and SSI_SIZE, waits for all and returns the worst status.
// Each instance's cluster pid is this node's number and the id of a
// deputy thread kept for it; rank 0 reads stdin; signals go to all; the
// launcher stops itself once all the instances left have stopped
// (jobStops).
func RunMany(ctx context.Context, cl *client.Client, k int, o Options) rexec.Status {
	nodes, err := cl.Place(ctx, k)
	if err != nil {
		newSession(cl, o, 0).errorf("%v", err)
		return rexec.Status{Code: rexec.ExitCannotRun}
	}
	sigc := make(chan os.Signal, 16)
	signal.Notify(sigc, forwarded...)
	defer signal.Stop(sigc)
	outMu := &sync.Mutex{}
	env := o.Env
	if env == nil {
		env = os.Environ()
	}
	job := newJobStops(k)
	sessions := make([]*session, k)
	statuses := make([]rexec.Status, k)
	var wg sync.WaitGroup
	for i := range k {
		ro := o
		ro.Node = nodes[i]
		ro.Env = append(append([]string(nil), env...), "SSI_RANK="+strconv.Itoa(i), "SSI_SIZE="+strconv.Itoa(k))
		if i != 0 {
			ro.Stdin = nil
		}
		tids := make(chan int)
		wg.Add(1)
		go func() {
			defer wg.Done()
			// This thread's id is the instance's origin part: it lives,
			// locked, as long as the instance runs.
			runtime.LockOSThread()
			s := newSession(cl, ro, unix.Gettid())
			s.outMu, s.job, s.rank = outMu, job, i
			sessions[i] = s
			tids <- s.tid
			statuses[i] = s.run(ctx)
			if job.end(i) { // the instances left are all stopped
				s.stopSelf()
			}
		}()
		<-tids
	}
	go func() {
		for sig := range sigc {
			if sig == unix.SIGWINCH || sig == unix.SIGPIPE {
				continue
			}
			for _, s := range sessions {
				go s.signal(ctx, int(sig.(unix.Signal)))
			}
		}
	}()
	wg.Wait()
	worst := statuses[0]
	for _, st := range statuses[1:] {
		if st.Worse(worst) {
			worst = st
		}
	}
	return worst
}
