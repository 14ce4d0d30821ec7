package cib

import (
	"slices"
	"strconv"
)

// FencingRecord is one fencing in the CIB's fencing history: who was
// fenced how, by which device, on whose request, when, and whether it
// worked. Pacemaker's fencer keeps this history in memory; tachy keeps it
// in the replicated status, so a new DC and every node see it.
type FencingRecord struct {
	Target   string `json:"target"`
	Action   string `json:"action"`             // reboot, off, on
	OK       bool   `json:"ok"`                 // confirmed
	Device   string `json:"device,omitempty"`   // the device(s) that did it, or the last tried
	Delegate string `json:"delegate,omitempty"` // the node that ran the device
	Origin   string `json:"origin,omitempty"`   // the node that asked (the DC)
	Error    string `json:"error,omitempty"`
	// Completed is when it ended, in Unix seconds.
	Completed int64 `json:"completed"`
}

// FencingHistoryMax is how many fencing records the CIB keeps.
const FencingHistoryMax = 50

const fencingSection = "tachy_fencing_history"

// FencingHistory returns the recorded fencings, oldest first.
func (c *CIB) FencingHistory() []FencingRecord {
	var out []FencingRecord
	for _, sec := range c.Status.Other {
		if sec.Name != fencingSection {
			continue
		}
		for _, e := range sec.Children {
			if e.Name != "fencing" {
				continue
			}
			get := func(k string) string { v, _ := e.Attr(k); return v }
			done, _ := strconv.ParseInt(get("completed"), 10, 64)
			out = append(out, FencingRecord{Target: get("target"), Action: get("action"), OK: get("state") == "done",
				Device: get("device"), Delegate: get("delegate"), Origin: get("origin"), Error: get("error"), Completed: done})
		}
	}
	return out
}

// withFencing returns the status sections with f appended to the fencing
// history (a new slice: the CIB it came from is not changed).
func withFencing(other []*XMLElement, f *FencingRecord) []*XMLElement {
	state := "failed"
	if f.OK {
		state = "done"
	}
	attrs := []Attr{{"target", f.Target}, {"action", f.Action}, {"state", state}}
	for _, kv := range [][2]string{{"device", f.Device}, {"delegate", f.Delegate}, {"origin", f.Origin}, {"error", f.Error}} {
		if kv[1] != "" {
			attrs = append(attrs, Attr{kv[0], kv[1]})
		}
	}
	attrs = append(attrs, Attr{"completed", strconv.FormatInt(f.Completed, 10)})
	sec := &XMLElement{Name: fencingSection}
	out := make([]*XMLElement, 0, len(other)+1)
	for _, e := range other {
		if e.Name == fencingSection {
			sec.Children = slices.Clone(e.Children)
			continue
		}
		out = append(out, e)
	}
	sec.Children = append(sec.Children, &XMLElement{Name: "fencing", Attrs: attrs})
	if n := len(sec.Children); n > FencingHistoryMax {
		sec.Children = slices.Clone(sec.Children[n-FencingHistoryMax:])
	}
	return append(out, sec)
}
