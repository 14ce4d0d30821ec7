package pe

import (
	"bytes"
	"encoding/xml"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tachy-ha/tachy/cib"
)

// migrationCIB: A (allow-migrate, 10s monitor) runs on node1 and is
// placed on node2; B, stopped, is placed on node1. CONSTRAINTS and
// HISTORY1 and HISTORY2 (more of A's history on node1 and node2) are
// filled in by each test.
const migrationCIB = `<cib epoch="1" num_updates="0" admin_epoch="0" validate-with="pacemaker-3.7" have-quorum="1" execution-date="1700000000">
  <configuration>
    <crm_config><cluster_property_set id="o">
      <nvpair id="o1" name="stonith-enabled" value="false"/>
    </cluster_property_set></crm_config>
    <nodes>
      <node id="1" uname="node1"/><node id="2" uname="node2"/>
    </nodes>
    <resources>
      <primitive id="A" class="ocf" provider="heartbeat" type="Dummy">
        <meta_attributes id="A-meta"><nvpair id="A-m" name="allow-migrate" value="true"/></meta_attributes>
        <operations><op id="A-mon" name="monitor" interval="10s"/></operations>
      </primitive>
      <primitive id="B" class="ocf" provider="heartbeat" type="Dummy"/>
    </resources>
    <constraints>
      <rsc_location id="A-loc" rsc="A" node="node2" score="INFINITY"/>
      <rsc_location id="B-loc" rsc="B" node="node1" score="INFINITY"/>
      CONSTRAINTS
    </constraints>
  </configuration>
  <status>
    <node_state id="1" uname="node1" in_ccm="true" crmd="online" join="member" expected="member">
      <lrm id="1"><lrm_resources>
        <lrm_resource id="A" class="ocf" provider="heartbeat" type="Dummy">
          <lrm_rsc_op id="A_last_0" operation_key="A_start_0" operation="start" transition-key="1:1:0:x" transition-magic="0:0;1:1:0:x" call-id="2" rc-code="0" op-status="0" interval="0" op-digest="DIGEST"/>
          HISTORY1
        </lrm_resource>
        <lrm_resource id="B" class="ocf" provider="heartbeat" type="Dummy">
          <lrm_rsc_op id="B_last_0" operation_key="B_monitor_0" operation="monitor" transition-key="2:1:7:x" transition-magic="0:7;2:1:7:x" call-id="1" rc-code="7" op-status="0" interval="0" op-digest="DIGEST"/>
        </lrm_resource>
      </lrm_resources></lrm>
    </node_state>
    <node_state id="2" uname="node2" in_ccm="true" crmd="online" join="member" expected="member">
      <lrm id="2"><lrm_resources>
        <lrm_resource id="A" class="ocf" provider="heartbeat" type="Dummy">
          <lrm_rsc_op id="A_last_0" operation_key="A_monitor_0" operation="monitor" transition-key="3:1:7:x" transition-magic="0:7;3:1:7:x" call-id="1" rc-code="7" op-status="0" interval="0" op-digest="DIGEST"/>
          HISTORY2
        </lrm_resource>
        <lrm_resource id="B" class="ocf" provider="heartbeat" type="Dummy">
          <lrm_rsc_op id="B_last_0" operation_key="B_monitor_0" operation="monitor" transition-key="4:1:7:x" transition-magic="0:7;4:1:7:x" call-id="1" rc-code="7" op-status="0" interval="0" op-digest="DIGEST"/>
        </lrm_resource>
      </lrm_resources></lrm>
    </node_state>
  </status>
</cib>`

func migrationResult(t *testing.T, constraints, history string, history2 ...string) *Result {
	t.Helper()
	x := strings.NewReplacer("CONSTRAINTS", constraints, "HISTORY1", history, "HISTORY2", strings.Join(history2, ""),
		"DIGEST", cib.OpDigest(map[string]string{})).Replace(migrationCIB)
	c, err := cib.Import(strings.NewReader(x))
	if err != nil {
		t.Fatal(err)
	}
	res, _, err := Simulation(c)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func executedLines(res *Result) []string {
	var out []string
	for _, a := range res.Execute().Executed {
		out = append(out, strings.Join(strings.Fields(ExecutionLine(a)), " "))
	}
	return out
}

func findAction(res *Result, rsc, task, node string) *Action {
	for _, a := range res.Actions {
		if a.Resource == rsc && a.Task == task && a.Interval == 0 && (node == "" || a.Node == node) && inGraph(a) {
			return a
		}
	}
	return nil
}

func TestMigrationActions(t *testing.T) {
	res := migrationResult(t, "", "")
	if !slices.Contains(res.Summary(), "  * Migrate    A       ( node1 -> node2 )") {
		t.Fatalf("summary %q", res.Summary())
	}
	to, from := findAction(res, "A", "migrate_to", "node1"), findAction(res, "A", "migrate_from", "node2")
	if to == nil || from == nil {
		t.Fatalf("no migrate_to on node1 / migrate_from on node2:\n%s", res.Execute())
	}
	for _, a := range []*Action{to, from} {
		if a.Meta["migrate_source"] != "node1" || a.Meta["migrate_target"] != "node2" || a.Pseudo {
			t.Errorf("%s meta %v pseudo %v", a.Key(), a.Meta, a.Pseudo)
		}
	}
	if to.Meta["record-pending"] != "true" {
		t.Errorf("migrate_to meta %v: want record-pending", to.Meta)
	}
	if start := findAction(res, "A", "start", "node2"); start == nil || !start.Pseudo {
		t.Errorf("start on node2 %+v: want a pseudo-action", start)
	}
	// The migration's order: migrate_to, migrate_from, stop on the
	// source, the pseudo start, then the monitor on the target.
	pos := map[string]int{}
	for i, l := range executedLines(res) {
		pos[l] = i + 1
	}
	chain := []string{
		"Resource action: A migrate_to on node1",
		"Resource action: A migrate_from on node2",
		"Resource action: A stop on node1",
		"Pseudo action: A_start_0",
		"Resource action: A monitor=10000 on node2",
	}
	for i, l := range chain {
		if pos[l] == 0 || (i > 0 && pos[l] < pos[chain[i-1]]) {
			t.Fatalf("executed:\n%s\nwant in this order:\n%s", strings.Join(executedLines(res), "\n"), strings.Join(chain, "\n"))
		}
	}
	if slices.Contains(executedLines(res), "Resource action: A start on node2") {
		t.Error("A is started on node2 as well as migrated")
	}
}

// An ordering "B then A" (start) also orders B's start before A's
// migrate_to; "A then B" leaves B's start free of A's migration (it
// follows A's pseudo start).
func TestMigrationOrderings(t *testing.T) {
	res := migrationResult(t, `<rsc_order id="ord1" first="B" then="A"/>`, "")
	lines := executedLines(res)
	if i, j := slices.Index(lines, "Resource action: B start on node1"), slices.Index(lines, "Resource action: A migrate_to on node1"); i < 0 || j < 0 || i > j {
		t.Errorf("B then A: executed\n%s", strings.Join(lines, "\n"))
	}
	res = migrationResult(t, `<rsc_order id="ord1" first="A" then="B"/>`, "")
	lines = executedLines(res)
	if i, j := slices.Index(lines, "Pseudo action: A_start_0"), slices.Index(lines, "Resource action: B start on node1"); i < 0 || j < 0 || i > j {
		t.Errorf("A then B: executed\n%s", strings.Join(lines, "\n"))
	}
}

// A migrate_to already done towards node2 (no migrate_from there yet):
// the resource counts as active on both nodes and the migration
// continues with migrate_from alone.
func TestPartialMigrationContinues(t *testing.T) {
	res := migrationResult(t, "", `<lrm_rsc_op id="A_migrate_to_0" operation_key="A_migrate_to_0" operation="migrate_to" transition-key="5:2:0:x" transition-magic="0:0;5:2:0:x" call-id="3" rc-code="0" op-status="0" interval="0" migrate_source="node1" migrate_target="node2"/>`)
	if !slices.Contains(res.Summary(), "  * Migrate    A       ( node1 -> node2 )") {
		t.Fatalf("summary %q", res.Summary())
	}
	want := []string{
		"Resource action: A migrate_from on node2",
		"Resource action: A stop on node1",
		"Pseudo action: A_start_0",
	}
	lines := executedLines(res)
	for _, l := range want {
		if !slices.Contains(lines, l) {
			t.Errorf("executed:\n%s\nmissing %q", strings.Join(lines, "\n"), l)
		}
	}
	for _, l := range []string{"Resource action: A migrate_to on node1", "Resource action: A stop on node2", "Resource action: A start on node2"} {
		if slices.Contains(lines, l) {
			t.Errorf("executed %q:\n%s", l, strings.Join(lines, "\n"))
		}
	}
	if r := res.ws.byID["A"]; len(r.RunningOn) != 2 {
		t.Errorf("A running on %d nodes, want source and target", len(r.RunningOn))
	}
}

// A migrate_from that failed on the target, then a stop there: the
// migration ended (not partial); A runs on node1 alone.
func TestFailedMigrateFromIsNotPartial(t *testing.T) {
	res := migrationResult(t, "", `<lrm_rsc_op id="A_migrate_to_0" operation_key="A_migrate_to_0" operation="migrate_to" transition-key="5:2:0:x" transition-magic="0:0;5:2:0:x" call-id="3" rc-code="0" op-status="0" interval="0" migrate_source="node1" migrate_target="node2"/>`,
		`<lrm_rsc_op id="A_last_failure_0" operation_key="A_migrate_from_0" operation="migrate_from" transition-key="6:2:0:x" transition-magic="0:1;6:2:0:x" call-id="2" rc-code="1" op-status="0" interval="0" migrate_source="node1" migrate_target="node2"/>`+
			`<lrm_rsc_op id="A_last_0" operation_key="A_stop_0" operation="stop" transition-key="7:2:0:x" transition-magic="0:0;7:2:0:x" call-id="3" rc-code="0" op-status="0" interval="0"/>`)
	r := res.ws.byID["A"]
	if r.partialTarget != nil || r.partialSource != nil || len(r.RunningOn) != 1 || r.RunningOn[0].Name != "node1" {
		t.Fatalf("A running on %v, partial target %v", r.RunningOn, r.partialTarget)
	}
}

// Orderings that loop through the migration actions (crm_simulate
// produces an invalid transition here): the resource moves by stop and
// start instead, and the transition runs to its end.
func TestMigrationLoopFallsBack(t *testing.T) {
	res := migrationResult(t, `<rsc_order id="ord1" first="A" first-action="stop" then="B" then-action="start" symmetrical="false"/><rsc_order id="ord2" first="B" then="A" symmetrical="false"/>`, "")
	ex := res.Execute()
	if len(ex.Stalled) > 0 {
		t.Fatalf("stalled:\n%s", ex)
	}
	lines := executedLines(res)
	for _, l := range []string{"Resource action: A stop on node1", "Resource action: B start on node1", "Resource action: A start on node2"} {
		if !slices.Contains(lines, l) {
			t.Errorf("executed:\n%s\nmissing %q", strings.Join(lines, "\n"), l)
		}
	}
	if findAction(res, "A", "migrate_to", "") != nil || !slices.Contains(res.Summary(), "  * Move       A       ( node1 -> node2 )") {
		t.Errorf("summary %q\n%s", res.Summary(), ex)
	}
}

// TestMigrationAgainstCrmSimulate compares the migration actions of the
// corpus with crm_simulate's transition graphs: the migrate_to and
// migrate_from actions (key and node) and their migrate_source and
// migrate_target meta must be equal for every input whose executed
// actions pe reproduces; elsewhere differences are logged.
func TestMigrationAgainstCrmSimulate(t *testing.T) {
	bin := crmSimulate()
	if bin == "" {
		t.Skip("crm_simulate not installed (apt-get install pacemaker-cli-utils)")
	}
	if testing.Short() {
		t.Skip("runs crm_simulate on the corpus")
	}
	dir := t.TempDir()
	compared, strict := 0, 0
	for _, ct := range readIndex(t) {
		path, res, sameSet, ok := corpusExecution(ct.name, "allow-migrate")
		if !ok {
			continue
		}
		report := t.Logf
		if sameSet {
			report = t.Errorf
			strict++
		}
		graph := filepath.Join(dir, ct.name+".graph")
		if out, err := exec.Command(bin, "-x", path, "-S", "-G", graph).CombinedOutput(); err != nil {
			t.Fatalf("%s: crm_simulate: %v\n%s", ct.name, err, out)
		}
		ref := graphMigrationMeta(t, graph)
		mine := map[string]string{}
		for _, a := range res.Execute().Executed {
			if a.Task == "migrate_to" || a.Task == "migrate_from" {
				mine[a.Key()+"@"+a.Node] = a.Meta["migrate_source"] + "->" + a.Meta["migrate_target"]
			}
		}
		compared++
		for k, v := range ref {
			if mine[k] != v {
				report("%s: %s: migration %q, crm_simulate %q", ct.name, k, mine[k], v)
			}
		}
		for k := range mine {
			if _, ok := ref[k]; !ok {
				report("%s: %s not in crm_simulate's graph", ct.name, k)
			}
		}
	}
	t.Logf("migration actions compared for %d corpus inputs with allow-migrate (%d with the same executed actions, where they must be equal)", compared, strict)
	if strict == 0 {
		t.Fatal("no corpus input compared")
	}
}

// graphMigrationMeta reads the migrate_to and migrate_from actions of a
// transition graph: by operation key and node, "source->target" from
// their CRM_meta_migrate_source and CRM_meta_migrate_target.
func graphMigrationMeta(t *testing.T, path string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var g struct {
		Synapses []struct {
			Ops []struct {
				Operation string `xml:"operation,attr"`
				OpKey     string `xml:"operation_key,attr"`
				Node      string `xml:"on_node,attr"`
				Attrs     struct {
					Source string `xml:"CRM_meta_migrate_source,attr"`
					Target string `xml:"CRM_meta_migrate_target,attr"`
				} `xml:"attributes"`
			} `xml:"action_set>rsc_op"`
		} `xml:"synapse"`
	}
	if err := xml.Unmarshal(data, &g); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, s := range g.Synapses {
		for _, op := range s.Ops {
			if op.Operation == "migrate_to" || op.Operation == "migrate_from" {
				out[op.OpKey+"@"+op.Node] = op.Attrs.Source + "->" + op.Attrs.Target
			}
		}
	}
	return out
}

// corpusExecution schedules the corpus input name if its XML contains
// marker, and reports whether its executed actions are the summary's (as a
// set); ok is false for an input that is absent, lacks the marker, or does
// not schedule.
func corpusExecution(name, marker string) (path string, res *Result, sameSet, ok bool) {
	path = filepath.Join(conformanceDir, "xml", name+".xml")
	data, err := os.ReadFile(path)
	if err != nil || !bytes.Contains(data, []byte(marker)) {
		return "", nil, false, false
	}
	expected, err := os.ReadFile(filepath.Join(conformanceDir, "summary", name+".summary"))
	if err != nil {
		return "", nil, false, false
	}
	c, err := cib.Import(bytes.NewReader(data))
	if err != nil {
		return "", nil, false, false
	}
	if res, _, err = Simulation(c); err != nil {
		return "", nil, false, false
	}
	got := section(res.Execute().String(), "Executing Cluster Transition:")
	want := section(string(expected), "Executing Cluster Transition:")
	slices.Sort(got)
	slices.Sort(want)
	return path, res, slices.Equal(got, want), true
}
