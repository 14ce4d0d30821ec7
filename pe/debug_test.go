package pe

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/tachy-ha/tachy/cib"
)

// TestDebugCorpus prints the actions scheduled for the corpus test named
// by PE_DEBUG, or for the CIB file it names if it ends in .xml (a
// development aid; skipped otherwise).
func TestDebugCorpus(t *testing.T) {
	name := os.Getenv("PE_DEBUG")
	if name == "" {
		t.Skip("PE_DEBUG not set")
	}
	path := filepath.Join(conformanceDir, "xml", name+".xml")
	if filepath.Ext(name) == ".xml" {
		path = name // a CIB file, e.g. one TestDifferential kept
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Skip(err)
	}
	c, err := cib.Import(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	res, err := ScheduleWith(c, corpusNow(c), Options{Sanitized: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res.Resources {
		for _, p := range r.primitives() {
			t.Logf("%s role=%s next=%s running=%v assigned=%v failed=%v managed=%v prio=%d sort=%d hist=%q", p.ID, p.Role, p.NextRole, names(p.RunningOn), p.AssignedTo, p.Failed, p.Managed, p.promoPriority, p.sortIndex, p.histName)
		}
	}
	for _, n := range res.Nodes {
		t.Logf("node %s online=%v unclean=%v standby=%v", n.Name, n.Online, n.Unclean, n.Standby)
	}
	for _, a := range res.Actions {
		t.Logf("action %d %s optional=%v runnable=%v reason=%q", a.ID, a.Key()+"@"+a.Node, a.Optional, a.Runnable, a.Reason)
	}
	if os.Getenv("PE_DEBUG_EDGES") != "" {
		for _, e := range res.Edges {
			t.Logf("edge %s@%s -> %s@%s kind=%b", res.Actions[e.First].Key(), res.Actions[e.First].Node, res.Actions[e.Then].Key(), res.Actions[e.Then].Node, e.Kind)
		}
	}
	t.Log(res.String())
}

func names(ns []*Node) []string {
	var out []string
	for _, n := range ns {
		out = append(out, n.Name)
	}
	return out
}
