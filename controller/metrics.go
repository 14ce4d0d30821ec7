package controller

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tachy-ha/tachy/cib"
	"github.com/tachy-ha/tachy/cib/replica"
	"github.com/tachy-ha/tachy/pe"
)

// Prometheus metrics in the text exposition format, written by hand: the
// daemon needs counters, gauges and histograms, not a client library.

// latencyBuckets are histogram bounds in seconds, from fractions of a
// millisecond (Raft commits on a LAN) to minutes (slow agents).
var latencyBuckets = []float64{0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60, 120}

type histogram struct {
	counts []uint64 // per bucket, cumulative at render time
	count  uint64
	sum    float64
}

func (h *histogram) observe(v float64) {
	if h.counts == nil {
		h.counts = make([]uint64, len(latencyBuckets))
	}
	for i, b := range latencyBuckets {
		if v <= b {
			h.counts[i]++
			break
		}
	}
	h.count++
	h.sum += v
}

// metrics holds the daemon's counters and histograms, keyed by name and
// rendered labels.
type metrics struct {
	mu         sync.Mutex
	counters   map[string]map[string]float64
	histograms map[string]map[string]*histogram
	help       map[string]string
}

func newMetrics() *metrics {
	return &metrics{counters: map[string]map[string]float64{}, histograms: map[string]map[string]*histogram{}, help: map[string]string{
		"tachy_operations_total":           "Resource agent operations run on this node, by action and result.",
		"tachy_operation_seconds":          "How long resource agent operations ran on this node.",
		"tachy_cib_commit_seconds":         "Raft commit latency of CIB changes submitted by this node while DC.",
		"tachy_cib_leader_changes_total":   "Times this node gained or lost the DC role.",
		"tachy_transitions_total":          "Transitions this node ran as DC, by outcome.",
		"tachy_transition_actions_total":   "Actions of transitions this node ran as DC, by outcome.",
		"tachy_fencing_total":              "Fencing actions this node ran as DC, by result.",
		"tachy_monitor_failures_total":     "Recurring monitor failures on this node, by resource.",
		"tachy_heartbeat_frames_total":     "Heartbeat frames received, by verdict.",
		"tachy_node_up":                    "1 when membership on this node sees the node up.",
		"tachy_quorate":                    "1 when this node's partition has quorum.",
		"tachy_quorum_votes":               "Votes: present (total) and expected.",
		"tachy_cib_is_dc":                  "1 when this node is the DC (the Raft leader).",
		"tachy_cib_epoch":                  "The CIB's configuration version (epoch).",
		"tachy_cib_num_updates":            "Status updates since the last configuration change.",
		"tachy_cib_raft_term":              "The current Raft term.",
		"tachy_resource_active":            "1 for each node a resource (instance) is active on, with its role.",
		"tachy_resource_failed":            "1 when the resource has failed.",
		"tachy_transition_pending_actions": "Actions the DC's current plan still has to run.",
		"tachy_fast_lease_revivals_total":  "Times this node's quorum lease lapsed and revived within the grace, its floating IPs kept.",
		"tachy_fast_lease_releases_total":  "Floating IPs this node released because its quorum lease ended.",
	}}
}

func labels(kv ...string) string {
	var b strings.Builder
	for i := 0; i+1 < len(kv); i += 2 {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(kv[i] + `="` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(kv[i+1]) + `"`)
	}
	return b.String()
}

func (m *metrics) add(name string, v float64, kv ...string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.counters[name] == nil {
		m.counters[name] = map[string]float64{}
	}
	m.counters[name][labels(kv...)] += v
}

func (m *metrics) observe(name string, d time.Duration, kv ...string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.histograms[name] == nil {
		m.histograms[name] = map[string]*histogram{}
	}
	l := labels(kv...)
	if m.histograms[name][l] == nil {
		m.histograms[name][l] = &histogram{}
	}
	m.histograms[name][l].observe(d.Seconds())
}

func series(name, l string) string {
	if l == "" {
		return name
	}
	return name + "{" + l + "}"
}

func num(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

// writeCounters renders the counters and histograms.
func (m *metrics) writeCounters(w io.Writer) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, name := range sortedKeys(m.counters) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s counter\n", name, m.help[name], name)
		for _, l := range sortedKeys(m.counters[name]) {
			fmt.Fprintf(w, "%s %s\n", series(name, l), num(m.counters[name][l]))
		}
	}
	for _, name := range sortedKeys(m.histograms) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s histogram\n", name, m.help[name], name)
		for _, l := range sortedKeys(m.histograms[name]) {
			h := m.histograms[name][l]
			var cum uint64
			sep := ""
			if l != "" {
				sep = ","
			}
			for i, b := range latencyBuckets {
				if h.counts != nil {
					cum += h.counts[i]
				}
				fmt.Fprintf(w, "%s_bucket{%s%sle=\"%s\"} %d\n", name, l, sep, num(b), cum)
			}
			fmt.Fprintf(w, "%s_bucket{%s%sle=\"+Inf\"} %d\n", name, l, sep, h.count)
			fmt.Fprintf(w, "%s %s\n%s %d\n", series(name+"_sum", l), num(h.sum), series(name+"_count", l), h.count)
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (m *metrics) gauge(w io.Writer, name string, values map[string]float64) {
	fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s gauge\n", name, m.help[name], name)
	for _, l := range sortedKeys(values) {
		fmt.Fprintf(w, "%s %s\n", series(name, l), num(values[l]))
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// writeMetrics renders everything: live gauges from the daemon's state
// and the CIB, then the counters.
func (d *Daemon) writeMetrics(w io.Writer) {
	st := d.Status()
	m := d.metrics
	up := map[string]float64{}
	for _, mem := range st.Members {
		up[labels("node", mem.Name)] = b2f(mem.State == "up")
	}
	m.gauge(w, "tachy_node_up", up)
	m.gauge(w, "tachy_quorate", map[string]float64{"": b2f(st.Quorum.Quorate)})
	m.gauge(w, "tachy_quorum_votes", map[string]float64{labels("kind", "present"): float64(st.Quorum.TotalVotes), labels("kind", "expected"): float64(st.Quorum.ExpectedVotes)})
	f := st.Frames
	frames := map[string]float64{labels("verdict", "accepted"): float64(f.Accepted), labels("verdict", "bad_key"): float64(f.BadMAC),
		labels("verdict", "replayed"): float64(f.Replay), labels("verdict", "stale"): float64(f.Stale), labels("verdict", "malformed"): float64(f.Malformed)}
	fmt.Fprintf(w, "# HELP tachy_heartbeat_frames_total %s\n# TYPE tachy_heartbeat_frames_total counter\n", m.help["tachy_heartbeat_frames_total"])
	for _, l := range sortedKeys(frames) {
		fmt.Fprintf(w, "%s %s\n", series("tachy_heartbeat_frames_total", l), num(frames[l]))
	}
	if c := st.CIB; c != nil {
		m.gauge(w, "tachy_cib_is_dc", map[string]float64{"": b2f(c.IsDC)})
		m.gauge(w, "tachy_cib_epoch", map[string]float64{"": float64(c.Version.Epoch)})
		m.gauge(w, "tachy_cib_num_updates", map[string]float64{"": float64(c.Version.NumUpdates)})
		m.gauge(w, "tachy_cib_raft_term", map[string]float64{"": float64(c.Term)})
		if c.IsDC {
			m.gauge(w, "tachy_transition_pending_actions", map[string]float64{"": float64(len(c.Transition))})
		}
		doc, _ := d.cib.r.Current()
		if res, err := pe.Schedule(doc, time.Now()); err == nil {
			writeResourceGauges(w, m, res)
		}
	}
	d.writeVolumeGauges(w)
	m.writeCounters(w)
}

func writeResourceGauges(w io.Writer, m *metrics, res *pe.Result) {
	active, failed := map[string]float64{}, map[string]float64{}
	states, _ := res.States()
	for _, s := range states {
		for _, n := range s.Nodes {
			active[labels("resource", s.ID, "node", n, "role", s.Role)] = 1
		}
		failed[labels("resource", s.ID)] = b2f(s.Failed)
	}
	m.gauge(w, "tachy_resource_active", active)
	m.gauge(w, "tachy_resource_failed", failed)
}

// serveMetrics serves /metrics on addr until the listener is closed.
func (d *Daemon) serveMetrics(addr string) (io.Closer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: listening on %s: %w (local.metrics)", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		d.writeMetrics(w)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	return srv, nil
}

// record counts a value in the daemon's metrics; safe before Run sets
// them up (tests build daemons by hand).
func (d *Daemon) count(name string, kv ...string) {
	if d.metrics != nil {
		d.metrics.add(name, 1, kv...)
	}
}

// metricAdd adds v to a counter (safe without metrics, as count).
func (d *Daemon) metricAdd(name string, v float64, kv ...string) {
	if d.metrics != nil {
		d.metrics.add(name, v, kv...)
	}
}

// submit commits a change as DC, timing the Raft commit.
func (d *Daemon) submit(ctx context.Context, ch *cib.Change) (replica.Version, error) {
	start := time.Now()
	v, err := d.cib.r.Submit(ctx, ch)
	if err == nil {
		d.timing("tachy_cib_commit_seconds", time.Since(start))
	}
	return v, err
}

func (d *Daemon) timing(name string, dur time.Duration, kv ...string) {
	if d.metrics != nil {
		d.metrics.observe(name, dur, kv...)
	}
}
