package bench

import (
	"testing"
	"time"
)

func TestSummarizeNearestRank(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 100; i++ {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	l := Summarize(ds, 2, false)
	if l.P50 != 50 || l.P99 != 99 || l.Max != 100 || l.Min != 1 || l.Samples != 100 || l.Missed != 2 || l.Mean != 50.5 {
		t.Fatalf("%+v", l)
	}
	if one := Summarize([]time.Duration{3 * time.Millisecond}, 0, true); one.P50 != 3 || one.P99 != 3 || len(one.All) != 1 {
		t.Fatalf("%+v", one)
	}
	if none := Summarize(nil, 5, false); none.Samples != 0 || none.Missed != 5 {
		t.Fatalf("%+v", none)
	}
}
