package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc"

	"github.com/ssi-cluster/ssi/internal/config"
	"github.com/ssi-cluster/ssi/internal/gomax"
	"github.com/ssi-cluster/ssi/internal/load"
	"github.com/ssi-cluster/ssi/internal/membership"
	"github.com/ssi-cluster/ssi/internal/migrate"
	"github.com/ssi-cluster/ssi/internal/pki"
	"github.com/ssi-cluster/ssi/internal/ratelimit"
	"github.com/ssi-cluster/ssi/internal/state"
	"github.com/ssi-cluster/ssi/internal/transport"
	"github.com/ssi-cluster/ssi/internal/vproc"
)

// Version is the agent's version string.
var Version = "0.1.0-dev"

// Agent is one node's daemon.
type Agent struct {
	cfg       config.Config
	log       *slog.Logger
	logOut    io.Writer
	advertise string
	bundle    *pki.Bundle // NodeCertPEM (renewal) and GossipKey (rotation) change: under mu
	creds     *pki.Creds
	joins     *joinGate // failed joins per source address
	// confirmLog samples the master's log of gossip deaths it refused.
	confirmLog *ratelimit.Sampler
	healer     healProber // the master's probes of down nodes out of raft (heal.go)

	mu      sync.Mutex
	id      *Identity
	fenced  string // why this node accepts no cluster work; "" when a member
	started time.Time

	store   *state.Store
	gossip  *membership.Membership
	pool    *transport.Pool
	rpc     *grpc.Server
	rpcLn   net.Listener
	sampler *load.Sampler
	metrics *metrics
	httpAPI *apiServer

	userNames sync.Map     // uid -> login name, for ps
	track     *tracker     // processes run for deputies, here and elsewhere
	procs     *vproc.Cache // this node's process table, files kept open
	ownOnly   bool         // list only the agent's descendants (load_scope agent)
	mig       *migrations
	bal       *balancer // the balancing driver's state (balance.go)
	// keyOutSince: as master, when a removed node was first seen out of
	// the raft configuration with the gossip key still stale (loops.go).
	keyOutSince time.Time
	shim        string    // this binary, run as the exec helper (rexec.ShimArg)
	spool       spoolBook // disk promised to images being spooled (restore.go)

	leaveCh   chan struct{} // closed by a `node leave` request
	presence  *presence     // presence streams (presence.go)
	leaveOnce sync.Once
	stopped   chan struct{}
	stopping  atomic.Bool // shutting down: deputies re-attach through the next agent, their runs are not hung up
	once      sync.Once
}

// New prepares an agent: checks the state directory, joins the cluster if
// this node has never joined, opens every listener. It starts no loops; Run
// does. On error everything opened is closed again.
func New(ctx context.Context, cfg config.Config, logOut io.Writer, log *slog.Logger) (a *Agent, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}
	// What the agent inherited goes to none of the processes it starts or
	// restores (a stray pipe would also keep them from migrating).
	unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC)
	a = &Agent{cfg: cfg, log: log, logOut: logOut, leaveCh: make(chan struct{}), presence: newPresence(), stopped: make(chan struct{}),
		track: newTracker(), mig: newMigrations(), bal: newBalancer(), procs: vproc.NewCache("/proc")}
	a.mig.step = migrate.StepHookFromEnv()
	if a.mig.fault, err = migrate.FaultFromEnv(); err != nil {
		return nil, err
	}
	if a.shim, err = os.Executable(); err != nil {
		return nil, fmt.Errorf("finding the agent's own binary (the exec helper): %w", err)
	}
	if a.advertise, err = advertiseAddr(cfg); err != nil {
		return nil, err
	}
	if err := CheckStateDir(cfg.StateDir); err != nil {
		return nil, err
	}
	if err := checkNotRemoved(cfg.StateDir); err != nil {
		return nil, err
	}
	id, err := LoadIdentity(cfg.StateDir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if id, err = a.joinCluster(ctx, nil, nil); err != nil {
			return nil, err
		}
	case err != nil:
		return nil, err
	}
	if a.bundle, err = pki.LoadBundle(cfg.StateDir); err != nil {
		return nil, fmt.Errorf("credentials in %s: %w", cfg.StateDir, err)
	}
	if a.bundle, err = a.renewExpired(ctx, id, a.bundle); err != nil {
		return nil, err
	}
	if a.creds, err = pki.NewCreds(a.bundle.CA, a.bundle.NodeCertPEM, a.bundle.NodeKeyPEM); err != nil {
		return nil, fmt.Errorf("credentials in %s: %w", cfg.StateDir, err)
	}
	a.joins = newJoinGate()
	a.confirmLog = ratelimit.NewSampler(time.Minute, 1024)
	if cfg.Name != "" && cfg.Name != id.Name {
		log.Warn("the configured name differs from the name this node joined with; keeping the joined name",
			"configured", cfg.Name, "name", id.Name)
	}
	id.Incarnation++
	if err := id.Save(cfg.StateDir); err != nil {
		return nil, err
	}
	a.id = id
	a.fenced = "starting"
	self := a // a is nil once an error is returned
	defer func() {
		if err != nil {
			self.closeAll()
		}
	}()
	if err := a.open(); err != nil {
		return nil, err
	}
	return a, nil
}

func advertiseAddr(cfg config.Config) (string, error) {
	if cfg.Advertise != "" {
		return cfg.Advertise, nil
	}
	if ip := net.ParseIP(cfg.Bind); ip != nil && !ip.IsUnspecified() {
		return cfg.Bind, nil
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return "", fmt.Errorf("finding an address to advertise: %w", err)
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil && !ipn.IP.IsLoopback() {
			return ipn.IP.String(), nil
		}
	}
	return "", errors.New("no non-loopback IPv4 address to advertise; set advertise")
}

func (a *Agent) hostPort(port int) string {
	return net.JoinHostPort(a.cfg.Bind, strconv.Itoa(port))
}

func (a *Agent) open() error {
	cfg := a.cfg
	cliTLS := a.creds.ClientTLS()
	from := transport.FromIP(cfg.Bind) // connections leave from the bound address
	a.pool = transport.NewPool(cliTLS, from)
	a.metrics = newMetrics()

	ln, err := net.Listen("tcp", a.hostPort(cfg.RPCPort))
	if err != nil {
		return fmt.Errorf("rpc listener: %w", err)
	}
	a.rpcLn = a.creds.Track(ln)
	a.rpc = transport.NewServer(a.creds.ServerTLS(true), (*rpcHandler)(a))

	raftAdv := &net.TCPAddr{IP: net.ParseIP(a.advertise), Port: cfg.RaftPort}
	layer, err := transport.NewRaftLayer(a.hostPort(cfg.RaftPort), raftAdv, a.creds.RaftServerTLS(), cliTLS, a.creds.Track, from)
	if err != nil {
		return fmt.Errorf("raft listener: %w", err)
	}
	raftDir := filepath.Join(cfg.StateDir, "raft")
	fresh := !state.HasState(raftDir)
	a.store, err = state.Open(state.Config{Dir: raftDir, ID: a.id.ID, Layer: layer,
		Heartbeat: time.Duration(cfg.RaftHeartbeat), LogOutput: a.logOut, LogLevel: raftLogLevel(cfg.LogLevel),
		LogJSON: cfg.LogFormat == "json"})
	if err != nil {
		layer.Close()
		return err
	}
	if a.id.Bootstrap && fresh {
		if err := a.store.Bootstrap(a.id.ID, raftAdv.String()); err != nil {
			return fmt.Errorf("bootstrap: %w", err)
		}
	}
	// A removed node is refused at every handshake, both ways.
	a.creds.SetRevoked(func(id string) bool {
		var removed bool
		a.store.FSM.Read(func(reg *state.Registry) { removed = reg.IsRemoved(id) })
		return removed
	})

	scope := load.ScopeAll
	if cfg.LoadScope == "agent" || (cfg.LoadScope == "" && os.Geteuid() != 0) {
		scope = load.ScopeDescendants
	}
	a.ownOnly = scope == load.ScopeDescendants
	a.sampler = load.NewSampler("/proc", scope, os.Getpid(), cfg.Speed)

	var mlLog io.Writer
	if cfg.LogLevel == "debug" {
		mlLog = a.logOut
	}
	a.gossip, err = membership.Start(membership.Config{
		ID: a.id.ID, Bind: cfg.Bind, Advertise: a.advertise, Port: cfg.GossipPort,
		SecretKey: a.bundle.GossipKey, Meta: a.meta(),
		ProbeInterval: time.Duration(cfg.ProbeInterval), ProbeTimeout: time.Duration(cfg.ProbeTimeout),
		SuspicionMult: cfg.SuspicionMult, Gossip: time.Duration(cfg.GossipInterval),
		Log: a.log.With("part", "membership"), LogOutput: mlLog,
	})
	if err != nil {
		return err
	}
	if a.httpAPI, err = a.listenAPI(); err != nil {
		return err
	}
	return nil
}

func raftLogLevel(l string) string {
	if l == "debug" {
		return "debug"
	}
	return "warn"
}

func (a *Agent) meta() membership.Meta {
	return membership.Meta{Name: a.id.Name, Number: a.id.Number, RPCPort: a.cfg.RPCPort,
		RaftPort: a.cfg.RaftPort, Incarnation: a.id.Incarnation}
}

// Identity returns a copy of this node's identity.
func (a *Agent) Identity() Identity {
	a.mu.Lock()
	defer a.mu.Unlock()
	return *a.id
}

// Run runs the agent until ctx ends or the node leaves the cluster, then
// shuts down. It returns nil after a clean shutdown.
func (a *Agent) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if os.Getenv("GOMAXPROCS") == "" {
		// One P while idle, every P while images and streams flow
		// (package gomax); an operator's GOMAXPROCS is obeyed as it is.
		gomax.Start(runtime.GOMAXPROCS(0))
	}
	errc := make(chan error, 4)
	// The processes held for deputies are this node's again before any
	// home can ask for them.
	a.readopt()
	go func() { errc <- a.rpc.Serve(a.rpcLn) }()
	a.started = time.Now()
	a.httpAPI.start(errc)
	var wg sync.WaitGroup
	for _, loop := range []func(context.Context){a.joinLoop, a.loadLoop, a.leaderLoop, a.fenceLoop, a.selfLoop, a.adoptLoop,
		a.renewLoop, a.removalLoop, a.gossipKeyLoop, a.recoverMigrations, a.presenceLoop, a.balanceLoop} {
		wg.Add(1)
		go func() { defer wg.Done(); loop(ctx) }()
	}
	a.log.Info("agent running", "name", a.id.Name, "id", a.id.ID, "number", a.id.Number,
		"cluster", a.id.Cluster, "incarnation", a.id.Incarnation, "advertise", a.advertise,
		"gossip", a.cfg.GossipPort, "rpc", a.cfg.RPCPort, "raft", a.cfg.RaftPort, "socket", a.cfg.Socket)
	var err error
	select {
	case <-ctx.Done():
		a.log.Info("shutting down")
	case <-a.leaveCh:
		a.log.Info("left the cluster; shutting down")
		a.sayLeaving()
	case err = <-errc:
		a.log.Error("a server failed", "err", err)
	}
	a.stopping.Store(true)
	cancel()
	wg.Wait()
	a.closeAll()
	return err
}

// closeAll stops everything New opened; safe to call once things are half open.
func (a *Agent) closeAll() {
	a.once.Do(func() {
		if a.httpAPI != nil {
			a.httpAPI.close()
		}
		defer a.procs.Close()
		if a.gossip != nil {
			select {
			case <-a.leaveCh:
				a.gossip.Leave(time.Second)
			default:
				a.gossip.Shutdown()
			}
		}
		if a.rpc != nil {
			a.rpc.Stop()
		}
		if a.rpcLn != nil {
			a.rpcLn.Close()
		}
		if a.store != nil {
			if err := a.store.Close(); err != nil {
				a.log.Warn("closing raft", "err", err)
			}
		}
		if a.pool != nil {
			a.pool.Close()
		}
		close(a.stopped)
	})
}

// isLeader reports whether this node is the CLMS master now.
func (a *Agent) isLeader() bool { return a.store.Raft.State() == raft.Leader }

// registry returns a copy of the committed registry.
func (a *Agent) registry() *state.Registry {
	var r *state.Registry
	a.store.FSM.Read(func(reg *state.Registry) { r = reg.Clone() })
	return r
}

// leaderRec returns the registry entry of the current leader, if known.
func (a *Agent) leaderRec() (*state.NodeRec, string) {
	_, id := a.store.Raft.LeaderWithID()
	if id == "" {
		return nil, ""
	}
	var rec *state.NodeRec
	a.store.FSM.Read(func(reg *state.Registry) {
		if n := reg.ByID(string(id)); n != nil {
			cp := *n
			rec = &cp
		}
	})
	return rec, string(id)
}
