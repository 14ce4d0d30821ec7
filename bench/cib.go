package bench

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tachy-ha/tachy/cib"
	"github.com/tachy-ha/tachy/controller"
	"github.com/tachy-ha/tachy/lab"
)

// CIBOptions configures the replicated-CIB benchmark.
type CIBOptions struct {
	Nodes    int
	Dir      string // lab state directory
	Binary   string
	Updates  int           // sequential updates timed, on the DC and on a follower each
	Clients  int           // concurrent clients for the throughput run
	Duration time.Duration // of the throughput run
	Progress io.Writer
}

// CIBResult is what `tachy bench cib` prints.
type CIBResult struct {
	Benchmark string `json:"benchmark"`
	Started   string `json:"started"`
	Nodes     int    `json:"nodes"`
	DC        string `json:"dc"`
	// Commit latency: one status update (a transient node attribute, the
	// most frequent kind of change) from `tachy` on a node's control
	// socket until the change is committed by a majority (each fsyncs its
	// log) and applied on the DC.
	CommitOnDC       Latency `json:"commit_on_dc"`
	CommitFromFollow Latency `json:"commit_forwarded_from_follower"`
	Throughput       struct {
		Clients       int     `json:"clients"`
		Seconds       float64 `json:"seconds"`
		Updates       int64   `json:"updates"`
		Errors        int64   `json:"errors"`
		UpdatesPerSec float64 `json:"updates_per_s"`
	} `json:"throughput"`
}

// CIB measures Raft commit latency and sustained updates per second of the
// replicated CIB in the namespace lab.
func CIB(ctx context.Context, o CIBOptions) (*CIBResult, error) {
	logf := func(format string, args ...any) {
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, format+"\n", args...)
		}
	}
	res := &CIBResult{Benchmark: "cib", Started: time.Now().UTC().Format(time.RFC3339), Nodes: o.Nodes}
	_ = lab.DownAll(o.Dir)
	l, err := lab.Up(ctx, lab.UpOptions{Nodes: o.Nodes, Dir: o.Dir, Binary: o.Binary, Interval: 2 * time.Millisecond, MissCount: 4, Receiver: "auto"})
	if err != nil {
		return nil, err
	}
	defer l.Down()
	dc, err := waitForDC(l, 20*time.Second)
	if err != nil {
		return nil, err
	}
	res.DC = dc
	follower := ""
	for _, n := range l.Nodes() {
		if n != dc {
			follower = n
			break
		}
	}
	logf("cib: DC is %s; %d sequential updates on the DC, then from %s", dc, o.Updates, follower)
	if res.CommitOnDC, err = sequential(ctx, l, dc, dc, o.Updates); err != nil {
		return nil, err
	}
	if res.CommitFromFollow, err = sequential(ctx, l, follower, dc, o.Updates); err != nil {
		return nil, err
	}

	logf("cib: %d clients on the DC for %s", o.Clients, o.Duration)
	var done, failed atomic.Int64
	var wg sync.WaitGroup
	tctx, cancel := context.WithTimeout(ctx, o.Duration)
	defer cancel()
	start := time.Now()
	for c := 0; c < o.Clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			cl := controller.Client{Socket: l.Socket(dc)}
			name := "bench-client-" + strconv.Itoa(c)
			for i := 0; tctx.Err() == nil; i++ {
				v := strconv.Itoa(i)
				if _, err := cl.Change(&cib.Change{Op: cib.OpSetNodeAttribute, Node: dc, Name: name, Value: &v}); err != nil {
					failed.Add(1)
					continue
				}
				done.Add(1)
			}
		}(c)
	}
	wg.Wait()
	el := time.Since(start).Seconds()
	t := &res.Throughput
	t.Clients, t.Seconds, t.Updates, t.Errors = o.Clients, round3(el), done.Load(), failed.Load()
	t.UpdatesPerSec = round3(float64(t.Updates) / el)
	return res, nil
}

func sequential(ctx context.Context, l *lab.Lab, via, target string, n int) (Latency, error) {
	cl := controller.Client{Socket: l.Socket(via)}
	var ds []time.Duration
	for i := 0; i < n && ctx.Err() == nil; i++ {
		v := strconv.Itoa(i)
		t0 := time.Now()
		if _, err := cl.Change(&cib.Change{Op: cib.OpSetNodeAttribute, Node: target, Name: "bench-seq-" + via, Value: &v}); err != nil {
			return Latency{}, fmt.Errorf("update %d through %s: %w", i, via, err)
		}
		ds = append(ds, time.Since(t0))
	}
	return Summarize(ds, 0, false), nil
}

// waitForDC waits until every node names the same DC and the CIB lists
// every node.
func waitForDC(l *lab.Lab, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		dcs := map[string]bool{}
		for _, n := range l.Nodes() {
			st, err := controller.Client{Socket: l.Socket(n)}.Status()
			if err != nil || st.CIB == nil {
				dcs[""] = true
				continue
			}
			dcs[st.CIB.DC] = true
		}
		if len(dcs) == 1 && !dcs[""] {
			// The new DC records the nodes in the CIB first.
			if doc, err := (controller.Client{Socket: l.Socket(l.Nodes()[0])}).CIB(); err == nil {
				if c, err := cib.Import(strings.NewReader(doc.XML)); err == nil && len(c.Configuration.Nodes) == len(l.Nodes()) {
					for dc := range dcs {
						return dc, nil
					}
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return "", fmt.Errorf("the lab's nodes did not agree on a DC in %s", timeout)
}
