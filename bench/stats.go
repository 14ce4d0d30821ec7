// Package bench holds the benchmarks behind `tachy bench`: each runs in the
// namespace lab and returns a result that prints as JSON.
package bench

import (
	"math"
	"slices"
	"time"
)

// Latency summarises samples in milliseconds.
type Latency struct {
	Samples int       `json:"samples"`
	Missed  int       `json:"missed"` // expected events that never came
	P50     float64   `json:"p50_ms"`
	P99     float64   `json:"p99_ms"`
	Max     float64   `json:"max_ms"`
	Min     float64   `json:"min_ms"`
	Mean    float64   `json:"mean_ms"`
	All     []float64 `json:"all_ms,omitempty"`
}

// Summarize computes nearest-rank percentiles of ds.
func Summarize(ds []time.Duration, missed int, keepAll bool) Latency {
	l := Latency{Samples: len(ds), Missed: missed}
	if len(ds) == 0 {
		return l
	}
	ms := make([]float64, len(ds))
	sum := 0.0
	for i, d := range ds {
		ms[i] = float64(d) / 1e6
		sum += ms[i]
	}
	sorted := slices.Clone(ms)
	slices.Sort(sorted)
	rank := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(sorted)))) - 1
		return round3(sorted[max(i, 0)])
	}
	l.P50, l.P99 = rank(0.50), rank(0.99)
	l.Min, l.Max = round3(sorted[0]), round3(sorted[len(sorted)-1])
	l.Mean = round3(sum / float64(len(ms)))
	if keepAll {
		for i := range ms {
			ms[i] = round3(ms[i])
		}
		l.All = ms
	}
	return l
}

func round3(v float64) float64 { return math.Round(v*1000) / 1000 }
