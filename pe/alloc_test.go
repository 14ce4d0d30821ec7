package pe

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tachy-ha/tachy/cib"
)

// cibXML builds a two-node CIB without fencing around the given resources,
// constraints and status history.
func cibXML(t *testing.T, props, resources, constraints, lrm1, attrs1 string) *cib.CIB {
	t.Helper()
	doc := `<cib admin_epoch="0" epoch="1" num_updates="0" have-quorum="1" validate-with="pacemaker-3.0">
<configuration>
<crm_config><cluster_property_set id="cps">
<nvpair id="p1" name="stonith-enabled" value="false"/>` + props + `
</cluster_property_set></crm_config>
<nodes><node id="n1" uname="node1"/><node id="n2" uname="node2"/></nodes>
<resources>` + resources + `</resources>
<constraints>` + constraints + `</constraints>
</configuration>
<status>
<node_state id="n1" uname="node1" in_ccm="true" crmd="online" join="member" expected="member">
<transient_attributes id="n1"><instance_attributes id="ta1">` + attrs1 + `</instance_attributes></transient_attributes>
<lrm id="n1"><lrm_resources>` + lrm1 + `</lrm_resources></lrm>
</node_state>
<node_state id="n2" uname="node2" in_ccm="true" crmd="online" join="member" expected="member"/>
</status></cib>`
	if dir := os.Getenv("PE_DUMP_DIR"); dir != "" {
		// For checking a case against crm_simulate.
		name := strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())
		_ = os.WriteFile(filepath.Join(dir, name+".xml"), []byte(doc), 0o644)
	}
	c, err := cib.Import(strings.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func prim(id, meta string) string {
	return `<primitive id="` + id + `" class="ocf" provider="pacemaker" type="Dummy"><meta_attributes id="` + id + `-m">` + meta + `</meta_attributes></primitive>`
}

// started is a history where id started on node1 and its 10s monitor then
// returned rc.
func started(id string, rc int) string {
	return `<lrm_resource id="` + id + `" class="ocf" provider="pacemaker" type="Dummy">
<lrm_rsc_op id="` + id + `_start" operation="start" call-id="2" rc-code="0" op-status="0" interval="0" transition-key="1:1:0:x"/>
<lrm_rsc_op id="` + id + `_mon" operation="monitor" call-id="3" rc-code="` + itoa(rc) + `" op-status="0" interval="10000" transition-key="2:1:0:x"/>
</lrm_resource>`
}

func itoa(i int) string { return strconv.Itoa(i) }

func schedule(t *testing.T, c *cib.CIB) *Result {
	t.Helper()
	r, err := Schedule(c, time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func placement(r *Result, id string) string {
	for _, rsc := range r.Resources {
		for _, p := range rsc.primitives() {
			if p.ID == id {
				if p.AssignedTo == nil {
					return ""
				}
				return p.AssignedTo.Name
			}
		}
	}
	return "?"
}

func TestAllocationRules(t *testing.T) {
	cases := []struct {
		name                           string
		props, rscs, cons, lrm, attrs1 string
		want                           map[string]string // resource -> node ("" stopped)
		summary                        []string
	}{
		{
			name: "ties go to the node with fewer resources, then by name",
			rscs: prim("a", "") + prim("b", ""),
			want: map[string]string{"a": "node1", "b": "node2"},
		},
		{
			name: "location preference",
			rscs: prim("a", ""),
			cons: `<rsc_location id="l" rsc="a" node="node2" score="50"/>`,
			want: map[string]string{"a": "node2"},
		},
		{
			name: "stickiness keeps a running resource against a weaker preference",
			rscs: prim("a", `<nvpair id="s" name="resource-stickiness" value="100"/>`),
			cons: `<rsc_location id="l" rsc="a" node="node2" score="50"/>`,
			lrm:  started("a", 0),
			want: map[string]string{"a": "node1"},
		},
		{
			name:    "a stronger preference moves it",
			rscs:    prim("a", `<nvpair id="s" name="resource-stickiness" value="100"/>`),
			cons:    `<rsc_location id="l" rsc="a" node="node2" score="150"/>`,
			lrm:     started("a", 0),
			want:    map[string]string{"a": "node2"},
			summary: []string{"  * Move       a       ( node1 -> node2 )"},
		},
		{
			name: "mandatory colocation follows the primary",
			rscs: prim("a", "") + prim("b", ""),
			cons: `<rsc_location id="l" rsc="b" node="node2" score="10"/><rsc_colocation id="c" rsc="a" with-rsc="b" score="INFINITY"/>`,
			want: map[string]string{"a": "node2", "b": "node2"},
		},
		{
			name: "anti-colocation",
			rscs: prim("a", "") + prim("b", ""),
			cons: `<rsc_location id="l" rsc="a" node="node2" score="10"/><rsc_location id="l2" rsc="b" node="node2" score="20"/><rsc_colocation id="c" rsc="a" with-rsc="b" score="-INFINITY"/>`,
			want: map[string]string{"a": "node1", "b": "node2"},
		},
		{
			name: "colocation with a stopped primary stops the dependent",
			rscs: prim("a", "") + prim("b", `<nvpair id="t" name="target-role" value="Stopped"/>`),
			cons: `<rsc_colocation id="c" rsc="a" with-rsc="b" score="INFINITY"/>`,
			want: map[string]string{"a": "", "b": ""},
		},
		{
			name:    "migration threshold reached moves a failed resource",
			rscs:    prim("a", `<nvpair id="mt" name="migration-threshold" value="2"/>`),
			lrm:     started("a", 0),
			attrs1:  `<nvpair id="fc" name="fail-count-a#monitor_10000" value="2"/>`,
			want:    map[string]string{"a": "node2"},
			summary: []string{"  * Move       a       ( node1 -> node2 )"},
		},
		{
			name:    "failed monitor is recovered in place",
			rscs:    prim("a", ""),
			lrm:     started("a", 7),
			want:    map[string]string{"a": "node1"},
			summary: []string{"  * Recover    a       ( node1 )"},
		},
		{
			name:    "asymmetric cluster needs an explicit preference",
			props:   `<nvpair id="p2" name="symmetric-cluster" value="false"/>`,
			rscs:    prim("a", "") + prim("b", ""),
			cons:    `<rsc_location id="l" rsc="b" node="node2" score="0"/>`,
			want:    map[string]string{"a": "", "b": "node2"},
			summary: []string{"  * Start      b       ( node2 )"},
		},
		{
			name:    "target-role Stopped stops a running resource",
			rscs:    prim("a", `<nvpair id="t" name="target-role" value="Stopped"/>`),
			lrm:     started("a", 0),
			want:    map[string]string{"a": ""},
			summary: []string{"  * Stop       a       ( node1 )  due to node availability"},
		},
		{
			// Checked with crm_simulate 2.1.5: b is placed first (priority),
			// and the anti-colocated dependent's stronger preference for
			// node1 pushes it to node2.
			name:    "higher priority is placed first, influenced by its dependents",
			rscs:    prim("a", "") + prim("b", `<nvpair id="pr" name="priority" value="10"/>`),
			cons:    `<rsc_colocation id="c" rsc="a" with-rsc="b" score="-INFINITY"/><rsc_location id="l" rsc="a" node="node1" score="10"/><rsc_location id="l2" rsc="b" node="node1" score="5"/>`,
			want:    map[string]string{"a": "node1", "b": "node2"},
			summary: []string{"  * Start      b       ( node2 )", "  * Start      a       ( node1 )"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := schedule(t, cibXML(t, c.props, c.rscs, c.cons, c.lrm, c.attrs1))
			for id, want := range c.want {
				if got := placement(r, id); got != want {
					t.Errorf("%s on %q, want %q", id, got, want)
				}
			}
			if c.summary != nil {
				got := r.Summary()
				if strings.Join(got, "\n") != strings.Join(c.summary, "\n") {
					t.Errorf("summary:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(c.summary, "\n"))
				}
			}
		})
	}
}

func TestSummaryWidths(t *testing.T) {
	// Widths only grow: a long name widens later lines, not earlier ones.
	w := &summaryWriter{rscWidth: 5, detailWidth: 5}
	n1, n2 := &Node{Name: "node1"}, &Node{Name: "node2"}
	short := &Resource{ID: "r", Role: cib.RoleStopped, NextRole: cib.RoleStarted}
	long := &Resource{ID: "a-long-name", Role: cib.RoleStarted, NextRole: cib.RoleStarted}
	w.item("Start", short, nil, n1, &Action{Runnable: true}, nil)
	w.item("Move", long, n1, n2, &Action{Runnable: true}, nil)
	w.item("Start", short, nil, n1, &Action{Runnable: false, Reason: "no quorum"}, nil)
	want := []string{
		"  * Start      r       ( node1 )",
		"  * Move       a-long-name     ( node1 -> node2 )",
		"  * Start      r               (          node1 )  due to no quorum (blocked)",
	}
	for i := range want {
		if w.lines[i] != want[i] {
			t.Errorf("line %d = %q, want %q", i, w.lines[i], want[i])
		}
	}
}
