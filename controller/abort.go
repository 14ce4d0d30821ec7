package controller

import (
	"slices"
	"strconv"
	"strings"

	"github.com/tachy-ha/tachy/cib"
)

// A running transition was planned from one CIB. When what the scheduler
// reads changes under it (the administrator edits the configuration, a
// node joins or is lost, quorum moves, a node attribute such as a
// promotion score or a fail count changes), its remaining actions may be
// wrong: Pacemaker aborts the transition then, lets the actions in flight
// finish, and plans again. Tachy does the same. The operation history is
// left out: the transition writes it itself, and a result it did not
// expect fails its action, which aborts anyway.

// planningInputs is a fingerprint of what a transition's plan depends on
// besides the operation history: equal fingerprints, same plan inputs.
func planningInputs(c *cib.CIB) string {
	if c == nil {
		return ""
	}
	var b strings.Builder
	b.WriteString(strconv.Itoa(c.AdminEpoch) + "." + strconv.Itoa(c.Epoch))
	b.WriteString(" quorum=" + strconv.FormatBool(c.HaveQuorum))
	states := slices.Clone(c.Status.NodeStates)
	slices.SortFunc(states, func(a, b *cib.NodeState) int { return strings.Compare(a.ID, b.ID) })
	for _, s := range states {
		b.WriteString("\nnode " + s.ID + " " + s.Uname + " " + s.InCCM + " " + s.Crmd + " " + s.Join + " " + s.Expected)
		keys := make([]string, 0, len(s.Extra))
		for k := range s.Extra {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			b.WriteString(" " + k + "=" + s.Extra[k])
		}
		var attrs []string
		for _, set := range s.Transient {
			for _, p := range set.Pairs {
				attrs = append(attrs, set.ID+"/"+p.Name+"="+p.Value)
			}
		}
		slices.Sort(attrs)
		for _, a := range attrs {
			b.WriteString("\n  " + a)
		}
	}
	return b.String()
}

// noteInputs is the DC loop telling the running transition (if any) what
// the CIB says now: a transition whose inputs changed is asked to abort.
func (d *Daemon) noteInputs(c *cib.CIB) {
	now := planningInputs(c)
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.transitionRunning && !d.transitionAbort && now != d.transitionInputs {
		d.transitionAbort = true
		d.log.Info("the CIB changed under the running transition: aborting it once the actions in flight finish",
			"transition", d.transitionSeq, "change", firstDifference(d.transitionInputs, now))
	}
}

// abortRequested reports whether the running transition was asked to abort.
func (d *Daemon) abortRequested() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.transitionAbort
}

// firstDifference names the first line of the fingerprint that changed,
// for the log.
func firstDifference(before, after string) string {
	a, b := strings.Split(before, "\n"), strings.Split(after, "\n")
	for i := 0; i < max(len(a), len(b)); i++ {
		switch {
		case i >= len(a):
			return "+" + strings.TrimSpace(b[i])
		case i >= len(b):
			return "-" + strings.TrimSpace(a[i])
		case a[i] != b[i]:
			return strings.TrimSpace(a[i]) + " -> " + strings.TrimSpace(b[i])
		}
	}
	return ""
}
