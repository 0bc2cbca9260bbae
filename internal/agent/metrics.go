package agent

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/ssi-cluster/ssi/internal/api"
	"github.com/ssi-cluster/ssi/internal/load"
	"github.com/ssi-cluster/ssi/internal/state"
)

// metrics are the agent's Prometheus metrics, on its own registry (no
// package globals), served at /metrics.
type metrics struct {
	reg    *prometheus.Registry
	nodes  *prometheus.GaugeVec
	epoch  prometheus.Gauge
	master prometheus.Gauge
	fenced prometheus.Gauge
	// presence: nodes whose presence stream is open to this node (the
	// master); link: 1 while this node's own stream to the master is open.
	presence, link prometheus.Gauge
	runQueue       prometheus.Gauge
	load1          prometheus.Gauge
	cpuUse         prometheus.Gauge
	memFree        prometheus.Gauge
	procs          prometheus.Gauge
	execs          prometheus.Counter // processes started here for deputies
	deputies       prometheus.Counter // runs started by deputies on this node
	lost           prometheus.Counter // deputies told their process was lost
	// reattached counts runs re-attached after a broken stream or a down.
	reattached prometheus.Counter
	// lostOutput counts output bytes that could not be written to a
	// deputy's stdout for another reason than its reader being gone.
	lostOutput prometheus.Counter
}

func newMetrics() *metrics {
	g := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "ssi", Name: name, Help: help})
	}
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: "ssi", Name: name, Help: help})
	}
	m := &metrics{
		reg:      prometheus.NewRegistry(),
		nodes:    prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "ssi", Name: "nodes", Help: "Registered nodes by committed state."}, []string{"state"}),
		epoch:    g("membership_epoch", "The last committed membership epoch."),
		master:   g("is_master", "1 when this node is the CLMS master (raft leader)."),
		fenced:   g("fenced", "1 while this node accepts no cluster work."),
		presence: g("presence_streams", "Nodes holding their presence stream open to this node (on the master, every other live node)."),
		link:     g("master_link", "1 while this node's presence stream to the master is open."),
		runQueue: g("load_run_queue", "Runnable tasks on this node."),
		load1:    g("load_avg1", "One-minute load average of this node."),
		cpuUse:   g("load_cpu_use", "Fraction of this node's CPUs busy."),
		memFree:  g("memory_free_bytes", "Available memory of this node."),
		procs:    g("processes", "Processes on this node."),
		execs:    c("exec_started_total", "Processes started on this node for ssi run."),
		deputies: c("run_started_total", "ssi run requests from this node's deputies."),
		lost:     c("run_lost_total", "Deputies on this node told their process was lost with its node."),
		reattached: c("run_reattached_total",
			"Runs of this node's deputies re-attached to their process after its stream broke or its node was committed down."),
		lostOutput: c("run_output_lost_bytes_total",
			"Output bytes of remote processes that could not be written to their deputy's stdout (not a closed reader)."),
	}
	m.reg.MustRegister(m.nodes, m.epoch, m.master, m.fenced, m.presence, m.link, m.runQueue, m.load1, m.cpuUse, m.memFree, m.procs,
		m.execs, m.deputies, m.lost, m.reattached, m.lostOutput,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) observeLoad(v load.Vector) {
	m.runQueue.Set(float64(v.RunQueue))
	m.load1.Set(v.Load1)
	m.cpuUse.Set(v.CPUUse)
	m.memFree.Set(float64(v.MemFree))
	m.procs.Set(float64(v.Procs))
}

func (m *metrics) observeRegistry(reg *state.Registry, master bool) {
	counts := map[string]int{api.StateUp: 0, api.StateDown: 0, api.StateLeft: 0, state.StateJoining: 0}
	for _, n := range reg.Nodes {
		counts[n.State]++
	}
	for s, c := range counts {
		m.nodes.WithLabelValues(s).Set(float64(c))
	}
	m.epoch.Set(float64(reg.Epoch))
	m.master.Set(boolFloat(master))
}
