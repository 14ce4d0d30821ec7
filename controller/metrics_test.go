package controller

import (
	"strings"
	"testing"
	"time"
)

func TestMetricsExposition(t *testing.T) {
	m := newMetrics()
	m.add("tachy_operations_total", 1, "action", "start", "result", "ok")
	m.add("tachy_operations_total", 2, "action", "start", "result", "ok")
	m.add("tachy_operations_total", 1, "action", `we"ird`, "result", "failed")
	m.observe("tachy_cib_commit_seconds", 1500*time.Microsecond)
	m.observe("tachy_cib_commit_seconds", 3*time.Second)
	var b strings.Builder
	m.writeCounters(&b)
	out := b.String()
	for _, want := range []string{
		"# TYPE tachy_operations_total counter\n",
		`tachy_operations_total{action="start",result="ok"} 3` + "\n",
		`tachy_operations_total{action="we\"ird",result="failed"} 1` + "\n",
		"# TYPE tachy_cib_commit_seconds histogram\n",
		`tachy_cib_commit_seconds_bucket{le="0.001"} 0` + "\n",
		`tachy_cib_commit_seconds_bucket{le="0.002"} 1` + "\n",
		`tachy_cib_commit_seconds_bucket{le="5"} 2` + "\n",
		`tachy_cib_commit_seconds_bucket{le="+Inf"} 2` + "\n",
		"tachy_cib_commit_seconds_sum 3.0015\n",
		"tachy_cib_commit_seconds_count 2\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
}
