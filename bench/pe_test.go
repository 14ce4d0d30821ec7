package bench

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"github.com/tachy-ha/tachy/cib"
	"github.com/tachy-ha/tachy/pe"
)

func TestSummaryLines(t *testing.T) {
	out := "Current cluster status:\n  * Node List:\n\nTransition Summary:\n  * Start      rsc1    ( node2 )\n\n  * Stop   rsc2  ( node1 )  due to node availability\nExecuting Cluster Transition:\n  * Resource action: rsc1 start on node2\n"
	want := []string{"* Start rsc1 ( node2 )", "* Stop rsc2 ( node1 ) due to node availability"}
	if got := summaryLines(out); !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	if summaryLines("no such section") != nil {
		t.Fatal("a summary from text without one")
	}
}

// The generated clusters import and schedule, and plan work: starts for
// the stopped resources at least.
func TestGenerateCIB(t *testing.T) {
	var b bytes.Buffer
	if err := GenerateCIB(&b, 200, 8, 1); err != nil {
		t.Fatal(err)
	}
	doc, err := cib.Import(&b)
	if err != nil {
		t.Fatal(err)
	}
	r, err := pe.Schedule(doc, time.Unix(doc.ExecutionDate, 0))
	if err != nil {
		t.Fatal(err)
	}
	starts := 0
	for _, a := range r.Actions {
		if a.Task == "start" && a.Runnable && !a.Optional {
			starts++
		}
	}
	if starts < 100 {
		t.Fatalf("%d starts planned for 200 resources of which about 50 run", starts)
	}
}

// Scheduling stays near-linear in the number of resources: a quadratic
// step (one crept in once, through a per-resource scan of all resources)
// takes seconds here; the bound is loose enough for a busy machine.
func TestScheduleScales(t *testing.T) {
	var b bytes.Buffer
	if err := GenerateCIB(&b, 2000, 32, 1); err != nil {
		t.Fatal(err)
	}
	c, err := cib.Import(&b)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := pe.Schedule(c, time.Now()); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("scheduling 2,000 resources on 32 nodes took %s: something became quadratic", d)
	}
}
