package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sys/unix"

	"github.com/ssi-cluster/ssi/internal/api"
	"github.com/ssi-cluster/ssi/internal/connlimit"
	"github.com/ssi-cluster/ssi/internal/state"
)

// The local API: JSON over HTTP on the Unix socket (for the CLI) and on a
// localhost TCP address (for dashboards and Prometheus). On the socket the
// caller's uid/gid/pid come from SO_PEERCRED; anyone may read, only uid 0
// may change the cluster. The TCP listener is read-only.

type credKey struct{}

// Caller is who made a local API request.
type Caller struct {
	Unix          bool // came over the Unix socket (credentials known)
	UID, GID, PID int
}

func callerOf(r *http.Request) Caller {
	c, _ := r.Context().Value(credKey{}).(Caller)
	return c
}

type apiServer struct {
	unix, tcp     *http.Server
	unixLn, tcpLn net.Listener
}

func (a *Agent) listenAPI() (*apiServer, error) {
	s := &apiServer{}
	mux := a.routes()
	if err := os.MkdirAll(filepath.Dir(a.cfg.Socket), 0o755); err != nil {
		return nil, fmt.Errorf("socket directory: %w", err)
	}
	if err := removeStaleSocket(a.cfg.Socket); err != nil {
		return nil, err
	}
	ln, err := net.Listen("unix", a.cfg.Socket)
	if err != nil {
		return nil, fmt.Errorf("socket %s: %w", a.cfg.Socket, err)
	}
	// Anyone may connect; what they may do is decided per request.
	if err := os.Chmod(a.cfg.Socket, 0o666); err != nil {
		ln.Close()
		return nil, err
	}
	// Room for a connection per user and stream (apiguard.go).
	nofile, err := raiseNoFile()
	if err != nil {
		a.log.Warn("could not raise the open files limit", "limit", nofile, "err", err)
	}
	lim := socketLimits(a.cfg.MaxUserConns, nofile)
	a.log.Info("local API limits", "open_files", nofile, "per_user", lim.PerUID, "users_total", lim.Total)
	throttle := connlimit.NewThrottle(refusalLogEvery)
	s.unixLn = &connlimit.Listener{Listener: ln, Counter: connlimit.NewCounter(lim), Refuse: connRefusal("max_user_conns"), Throttle: throttle,
		Log: func(uid int, why string, missed int) {
			a.log.Warn("refused a connection on the socket", "uid", uid, "why", why, "refused_since_last_said", missed)
		}}
	s.unix = &http.Server{Handler: mux, ReadHeaderTimeout: headerTimeout, IdleTimeout: idleTimeout, MaxHeaderBytes: maxHeaderBytes,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, credKey{}, peerCred(c))
		}}
	if a.cfg.HTTP != "" {
		tcp, err := net.Listen("tcp", a.cfg.HTTP)
		if err != nil {
			ln.Close()
			return nil, fmt.Errorf("http listener %s: %w", a.cfg.HTTP, err)
		}
		s.tcpLn = &connlimit.Listener{Listener: tcp, Counter: connlimit.NewCounter(connlimit.Limits{PerUID: a.cfg.MaxHTTPConns}),
			Creds: func(net.Conn) (unix.Ucred, bool) { return unix.Ucred{}, false }, Refuse: connRefusal("max_http_conns"), Throttle: throttle,
			Log: func(_ int, why string, missed int) {
				a.log.Warn("refused a connection on the HTTP listener", "addr", a.cfg.HTTP, "why", why, "refused_since_last_said", missed)
			}}
		s.tcp = &http.Server{Handler: mux, ReadHeaderTimeout: headerTimeout, IdleTimeout: idleTimeout, MaxHeaderBytes: maxHeaderBytes}
	}
	return s, nil
}

// removeStaleSocket removes a socket file no agent answers on, and refuses
// to start when another agent does.
func removeStaleSocket(path string) error {
	if _, err := os.Stat(path); err != nil {
		return nil
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return fmt.Errorf("another agent is already running on %s", path)
	}
	return os.Remove(path)
}

// peerCred is who is at the other end of c: the credentials the listener
// read at accept time (connlimit), or read now.
func peerCred(c net.Conn) Caller {
	cred, ok := unix.Ucred{}, false
	if cc, is := c.(*connlimit.Conn); is {
		cred, ok = cc.Cred, cc.HasCred
	} else {
		cred, ok = connlimit.PeerCred(c)
	}
	if !ok {
		return Caller{}
	}
	return Caller{Unix: true, UID: int(cred.Uid), GID: int(cred.Gid), PID: int(cred.Pid)}
}

func (s *apiServer) start(errc chan<- error) {
	go func() {
		if err := s.unix.Serve(s.unixLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- err
		}
	}()
	if s.tcp != nil {
		go func() {
			if err := s.tcp.Serve(s.tcpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- err
			}
		}()
	}
}

func (s *apiServer) close() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	s.unix.Shutdown(ctx)
	s.unixLn.Close()
	if s.tcp != nil {
		s.tcp.Shutdown(ctx)
		s.tcpLn.Close()
	}
}

// routes is the local API. Every route says who may call it and what it
// may send (access, apiguard.go), checked before its body is read.
func (a *Agent) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/cluster", guard(readOnly, a.handleCluster))
	mux.HandleFunc("GET /v1/nodes", guard(readOnly, a.handleNodes))
	mux.HandleFunc("GET /v1/nodes/{n}", guard(readOnly, a.handleNode))
	mux.HandleFunc("GET /v1/transitions", guard(readOnly, a.handleTransitions))
	mux.HandleFunc("GET /v1/self", guard(readOnly, a.handleSelf))
	mux.HandleFunc("POST /v1/leave", guard(access{what: "node leave", root: true, rootFor: "change the cluster"}, a.handleLeave))
	mux.HandleFunc("GET /v1/procs", guard(readOnly, a.handleProcs))
	mux.HandleFunc("GET /v1/procs/{cpid}", guard(readOnly, a.handleWhere))
	mux.HandleFunc("POST /v1/signal", guard(change("kill"), a.handleSignal))
	mux.HandleFunc("POST /v1/run", guard(access{what: "run", socket: true, pid: true}, a.handleRun))
	mux.HandleFunc("GET /v1/place", guard(readOnly, a.handlePlace))
	mux.HandleFunc("GET /v1/balance/log", guard(readOnly, a.handleBalanceLog))
	mux.HandleFunc("POST /v1/migrate", guard(change("migrate"), a.handleMigrate))
	mux.HandleFunc("POST /v1/checkpoint", guard(access{what: "checkpoint", socket: true}, a.handleCheckpoint))
	mux.HandleFunc("POST /v1/restore", guard(access{what: "restore", socket: true, pid: true, streamed: true}, a.handleRestore))
	mux.Handle("GET /metrics", guard(readOnly, promhttp.HandlerFor(a.metrics.reg, promhttp.HandlerOpts{}).ServeHTTP))
	a.adminRoutes(mux)
	// Go's profiler, for operators chasing CPU or memory use.
	// root only, on the socket: profiles show the daemon's internals.
	mux.HandleFunc("GET /debug/pprof/", guard(access{what: "profiling", root: true, rootFor: "profile the agent"}, pprof.Index))
	mux.HandleFunc("GET /debug/pprof/profile", guard(access{what: "profiling", root: true, rootFor: "profile the agent"}, pprof.Profile))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := mux.Handler(r); pattern == "" { // no route: nothing is read either
			refuse(w, r, http.StatusNotFound, "no such endpoint: %s %s (see GET /v1/... in the docs; methods matter)", r.Method, r.URL.Path)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, code int, format string, args ...any) {
	writeJSON(w, code, api.Error{Error: fmt.Sprintf(format, args...)})
}

func (a *Agent) handleCluster(w http.ResponseWriter, r *http.Request) {
	reg := a.registry()
	c := api.Cluster{Name: reg.Cluster, Epoch: reg.Epoch, Nodes: len(reg.Nodes)}
	if c.Name == "" {
		c.Name = a.Identity().Cluster
	}
	if rec, _ := a.leaderRec(); rec != nil {
		c.Master = rec.Number
	}
	for _, n := range reg.Nodes {
		if n.State == api.StateUp {
			c.Up++
		}
	}
	writeJSON(w, http.StatusOK, c)
}

func (a *Agent) nodeView(n *state.NodeRec, master, voters map[string]bool) api.Node {
	out := api.Node{Number: n.Number, ID: n.ID, Name: n.Name, Address: n.Addr, State: n.State,
		Incarnation: n.Incarnation, Voter: voters[n.ID], Master: master[n.ID], Since: n.Since, Epoch: n.Epoch}
	if v, seen, ok := a.gossip.Load(n.ID); ok && n.State == api.StateUp {
		out.Load = &api.Load{RunQueue: v.RunQueue, Load1: v.Load1, Load5: v.Load5, Load15: v.Load15,
			CPUUse: v.CPUUse, Cores: v.Cores, Speed: v.Speed, MemTotal: v.MemTotal, MemFree: v.MemFree,
			Procs: v.Procs, Age: time.Since(seen).Seconds()}
	}
	return out
}

func (a *Agent) roles() (master, voters map[string]bool) {
	master, voters = map[string]bool{}, map[string]bool{}
	if _, id := a.store.Raft.LeaderWithID(); id != "" {
		master[string(id)] = true
	}
	if f := a.store.Raft.GetConfiguration(); f.Error() == nil {
		for _, s := range f.Configuration().Servers {
			voters[string(s.ID)] = s.Suffrage == raft.Voter
		}
	}
	return master, voters
}

func (a *Agent) handleNodes(w http.ResponseWriter, r *http.Request) {
	master, voters := a.roles()
	out := []api.Node{}
	for _, n := range a.registry().Sorted() {
		out = append(out, a.nodeView(n, master, voters))
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *Agent) handleNode(w http.ResponseWriter, r *http.Request) {
	arg := r.PathValue("n")
	num, err := strconv.Atoi(arg)
	if arg == "self" {
		num, err = a.Identity().Number, nil
	}
	if err != nil || num < 0 {
		writeErr(w, http.StatusBadRequest, "%q is not a node number", arg)
		return
	}
	reg := a.registry()
	n := reg.Nodes[num]
	if n == nil {
		writeErr(w, http.StatusNotFound, "no node %d in cluster %s", num, reg.Cluster)
		return
	}
	master, voters := a.roles()
	writeJSON(w, http.StatusOK, a.nodeView(n, master, voters))
}

// handleTransitions returns the transitions after epoch `after`; with
// wait=1 it blocks until there is at least one (or 30 s pass).
func (a *Agent) handleTransitions(w http.ResponseWriter, r *http.Request) {
	after, err := strconv.ParseUint(r.URL.Query().Get("after"), 10, 64)
	if r.URL.Query().Get("after") == "" {
		after, err = 0, nil
	}
	if err != nil {
		writeErr(w, http.StatusBadRequest, "after: %q is not an epoch number", r.URL.Query().Get("after"))
		return
	}
	wait := r.URL.Query().Get("wait") == "1"
	deadline := time.After(30 * time.Second)
	for {
		ch := a.store.FSM.Changed()
		var ts []api.Transition
		a.store.FSM.Read(func(reg *state.Registry) { ts = reg.TransitionsAfter(after) })
		if len(ts) > 0 || !wait {
			for i := range ts {
				ts[i].Seen = a.store.FSM.SeenAt(ts[i].Epoch)
			}
			if ts == nil {
				ts = []api.Transition{}
			}
			writeJSON(w, http.StatusOK, ts)
			return
		}
		select {
		case <-ch:
		case <-deadline:
			writeJSON(w, http.StatusOK, []api.Transition{})
			return
		case <-r.Context().Done():
			return
		}
	}
}

func (a *Agent) handleSelf(w http.ResponseWriter, r *http.Request) {
	id := a.Identity()
	why := a.fenceReason()
	writeJSON(w, http.StatusOK, api.Self{Number: id.Number, ID: id.ID, Name: id.Name, Cluster: id.Cluster,
		Member: why == "", Fenced: why, Version: Version})
}

// requireRoot refuses a change unless it comes from uid 0 on the socket.
func requireRoot(w http.ResponseWriter, r *http.Request, what string) bool {
	c := callerOf(r)
	if !c.Unix {
		writeErr(w, http.StatusForbidden, "%s: changes are accepted only on the agent's Unix socket", what)
		return false
	}
	if !isAdmin(c.UID) {
		writeErr(w, http.StatusForbidden, "%s: permission denied: only root may change the cluster (you are uid %d)", what, c.UID)
		return false
	}
	return true
}

func (a *Agent) handleLeave(w http.ResponseWriter, r *http.Request) {
	if !requireRoot(w, r, "node leave") {
		return
	}
	id := a.Identity()
	if id.Number == 0 {
		writeErr(w, http.StatusConflict, "node leave: this node is not registered")
		return
	}
	res, err := a.apply(r.Context(), &state.Command{Op: state.OpTransition, Number: id.Number,
		Kind: api.KindLeave, Incarnation: id.Incarnation, Reason: "left on request"})
	if err != nil {
		writeErr(w, http.StatusServiceUnavailable, "node leave: %v", err)
		return
	}
	if err := res.Err(); err != nil {
		writeErr(w, http.StatusConflict, "node leave: %v", err)
		return
	}
	var t api.Transition
	json.Unmarshal(res.Value, &t)
	a.log.Info("leaving the cluster on request", "uid", callerOf(r).UID, "epoch", t.Epoch)
	writeJSON(w, http.StatusOK, t)
	if a.isLeader() {
		// Hand the master role over before going, so the next master removes
		// this node from the voters.
		if err := a.store.Raft.LeadershipTransfer().Error(); err != nil {
			a.log.Warn("leadership transfer before leaving", "err", err)
		}
	}
	a.leaveOnce.Do(func() { close(a.leaveCh) })
}
