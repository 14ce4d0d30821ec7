package pe

import (
	"strings"
	"testing"

	"github.com/tachy-ha/tachy/cib"
)

func TestStripInstance(t *testing.T) {
	for in, want := range map[string]string{
		"rsc:0":    "rsc",
		"rsc:12":   "rsc",
		"rsc":      "rsc",
		"a:b":      "a:b",
		"a:b:3":    "a:b",
		"rsc:":     "rsc:",
		"grp:x:10": "grp:x",
	} {
		if got := stripInstance(in); got != want {
			t.Errorf("stripInstance(%q) = %q, want %q", in, got, want)
		}
	}
}

func clone(id, meta, child string) string {
	return `<clone id="` + id + `"><meta_attributes id="` + id + `-m">` + meta + `</meta_attributes>` + child + `</clone>`
}

var nvSeq int

func nv(name, value string) string {
	nvSeq++
	return `<nvpair id="nv-` + name + itoa(nvSeq) + `" name="` + name + `" value="` + value + `"/>`
}

// noParamsDigest is the op-digest of a start of a resource without
// parameters, so that the histories below show no definition change.
var noParamsDigest = cib.OpDigest(map[string]string{"CRM_meta_interval": "0"})

// running is a history where id was started on node1.
func running(id string, call int) string {
	return `<lrm_resource id="` + id + `" class="ocf" provider="pacemaker" type="Dummy">
<lrm_rsc_op id="` + id + `_start" operation="start" call-id="` + itoa(call) + `" rc-code="0" op-status="0" interval="0" transition-key="1:1:0:x" op-digest="` + noParamsDigest + `"/>
</lrm_resource>`
}

func TestCloneScheduling(t *testing.T) {
	cases := []struct {
		name            string
		rscs, cons, lrm string
		want            []string
	}{
		{
			name: "anonymous clone starts one instance per node",
			rscs: clone("c", "", prim("rsc", "")),
			want: []string{"Start rsc:0 ( node1 )", "Start rsc:1 ( node2 )"},
		},
		{
			name: "an instance running under the bare id stays where it is",
			rscs: clone("c", "", prim("rsc", "")),
			lrm:  running("rsc", 2),
			want: []string{"Start rsc:1 ( node2 )"},
		},
		{
			name: "any history instance number maps to the first free instance",
			rscs: clone("c", "", prim("rsc", "")),
			lrm:  running("rsc:7", 2),
			want: []string{"Start rsc:1 ( node2 )"},
		},
		{
			name: "a second active history entry on the node is an orphan",
			rscs: clone("c", "", prim("rsc", "")),
			lrm:  running("rsc:0", 2) + running("rsc:1", 3),
			want: []string{"Start rsc:1 ( node2 )", "Stop rsc:2 ( node1 ) due to node availability"},
		},
		{
			name: "anonymous clones run one instance per node whatever clone-node-max says",
			rscs: clone("c", nv("clone-max", "4")+nv("clone-node-max", "2"), prim("rsc", "")),
			want: []string{"Start rsc:0 ( node1 )", "Start rsc:1 ( node2 )"},
		},
		{
			name: "unique clones honour clone-node-max",
			rscs: clone("c", nv("clone-max", "4")+nv("clone-node-max", "2")+nv("globally-unique", "true"), prim("rsc", "")),
			want: []string{"Start rsc:0 ( node1 )", "Start rsc:1 ( node2 )", "Start rsc:2 ( node1 )", "Start rsc:3 ( node2 )"},
		},
		{
			name: "a running instance is pre-assigned only where it scores best",
			rscs: clone("c", nv("clone-max", "1"), prim("rsc", "")),
			cons: `<rsc_location id="l" rsc="c" node="node2" score="100"/>`,
			lrm:  running("rsc", 2),
			want: []string{"Move rsc:0 ( node1 -> node2 )"},
		},
		{
			name: "target-role Stopped on the clone stops its instances",
			rscs: clone("c", nv("target-role", "Stopped"), prim("rsc", "")),
			lrm:  running("rsc", 2),
			want: []string{"Stop rsc:0 ( node1 ) due to node availability"},
		},
		{
			name: "an instance on a banned node stops and a free one starts elsewhere",
			rscs: clone("c", "", prim("rsc", "")),
			cons: `<rsc_location id="l" rsc="c" node="node1" score="-INFINITY"/>`,
			lrm:  running("rsc", 2),
			want: []string{"Stop rsc:0 ( node1 ) due to node availability", "Start rsc:1 ( node2 )"},
		},
		{
			name: "a primitive colocated with a clone goes where an instance is",
			rscs: clone("c", nv("clone-max", "1"), prim("rsc", "")) + prim("p", ""),
			cons: `<rsc_colocation id="col" rsc="p" with-rsc="c" score="INFINITY"/>` +
				`<rsc_location id="l" rsc="c" node="node2" score="50"/>`,
			want: []string{"Start rsc:0 ( node2 )", "Start p ( node2 )"},
		},
		{
			name: "a clone colocated with a primitive follows it when not everywhere",
			rscs: prim("p", "") + clone("c", nv("clone-max", "1"), prim("rsc", "")),
			cons: `<rsc_colocation id="col" rsc="c" with-rsc="p" score="INFINITY"/>` +
				`<rsc_location id="l" rsc="p" node="node2" score="50"/>`,
			want: []string{"Start p ( node2 )", "Start rsc:0 ( node2 )"},
		},
		{
			name: "ordering after a clone with no runnable instance blocks the start",
			rscs: clone("c", "", prim("rsc", "")) + prim("p", ""),
			cons: `<rsc_location id="l1" rsc="c" node="node1" score="-INFINITY"/>` +
				`<rsc_location id="l2" rsc="c" node="node2" score="-INFINITY"/>` +
				`<rsc_order id="o" first="c" then="p"/>`,
			want: []string{"Start p ( node1 ) due to unrunnable c running (blocked)"},
		},
		{
			name: "require-all=false needs only one instance",
			rscs: clone("c", "", prim("rsc", "")) + prim("p", ""),
			cons: `<rsc_location id="l1" rsc="c" node="node1" score="-INFINITY"/>` +
				`<rsc_order id="o" first="c" then="p" require-all="false"/>`,
			want: []string{"Start rsc:0 ( node2 )", "Start p ( node1 )"},
		},
		{
			name: "clone-min not met blocks what is ordered after",
			rscs: clone("c", nv("clone-min", "2"), prim("rsc", "")) + prim("p", ""),
			cons: `<rsc_location id="l1" rsc="c" node="node1" score="-INFINITY"/>` +
				`<rsc_order id="o" first="c" then="p"/>`,
			want: []string{"Start rsc:0 ( node2 )", "Start p ( node1 ) due to unrunnable clone-one-or-more:o (blocked)"},
		},
		{
			name: "a clone's start restarts nothing ordered after it on other nodes",
			rscs: clone("c", "", prim("rsc", "")) + prim("p", ""),
			cons: `<rsc_location id="l1" rsc="c" node="node1" score="-INFINITY"/>` +
				`<rsc_location id="l2" rsc="p" node="node1" score="100"/>` +
				`<rsc_order id="o" first="c" then="p"/>`,
			lrm:  running("p", 2),
			want: []string{"Start rsc:0 ( node2 )"},
		},
		{
			name: "interleaved clones pair instances by node",
			rscs: clone("a", nv("interleave", "true"), prim("ra", "")) + clone("b", nv("interleave", "true"), prim("rb", "")),
			cons: `<rsc_location id="l1" rsc="a" node="node1" score="-INFINITY"/>` +
				`<rsc_order id="o" first="a" then="b"/>`,
			want: []string{"Start ra:0 ( node2 )", "Start rb:1 ( node2 )"},
		},
		{
			name: "cloned group instances are named per member",
			rscs: clone("c", "", `<group id="g">`+prim("a", "")+prim("b", "")+`</group>`),
			lrm:  running("a", 2) + running("b:3", 3),
			want: []string{"Start a:1 ( node2 )", "Start b:1 ( node2 )"},
		},
		{
			name: "unique clone instances keep their numbers",
			rscs: clone("c", nv("globally-unique", "true"), prim("rsc", "")),
			lrm:  running("rsc:1", 2),
			want: []string{"Start rsc:0 ( node2 )"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := cibXML(t, "", tc.rscs, tc.cons, tc.lrm, "")
			r := schedule(t, c)
			var got []string
			for _, l := range r.Summary() {
				got = append(got, strings.Join(strings.Fields(strings.TrimPrefix(strings.TrimSpace(l), "*")), " "))
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("summary:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(tc.want, "\n  "))
			}
		})
	}
}

// promoted is a history where id was started and promoted on node1.
func promoted(id string) string {
	return `<lrm_resource id="` + id + `" class="ocf" provider="pacemaker" type="Stateful">
<lrm_rsc_op id="` + id + `_start" operation="start" call-id="2" rc-code="0" op-status="0" interval="0" transition-key="1:1:0:x" op-digest="` + noParamsDigest + `"/>
<lrm_rsc_op id="` + id + `_promote" operation="promote" call-id="3" rc-code="0" op-status="0" interval="0" transition-key="2:1:0:x" op-digest="` + noParamsDigest + `"/>
</lrm_resource>`
}

func TestPromotableScheduling(t *testing.T) {
	ms := func(meta string) string {
		return clone("ms", nv("promotable", "true")+meta, `<primitive id="rsc" class="ocf" provider="pacemaker" type="Stateful"/>`)
	}
	cases := []struct {
		name                   string
		rscs, cons, lrm, attrs string
		want                   []string
	}{
		{
			name: "no promotion score: both instances start unpromoted",
			rscs: ms(""),
			want: []string{"Start rsc:0 ( node1 )", "Start rsc:1 ( node2 )"},
		},
		{
			name:  "the instance where the promotion score is set is promoted",
			rscs:  ms(""),
			attrs: nv("master-rsc", "10"),
			want:  []string{"Promote rsc:0 ( Stopped -> Promoted node1 )", "Start rsc:1 ( node2 )"},
		},
		{
			name:  "a unique instance's promotion score draws it to its node",
			rscs:  ms(nv("globally-unique", "true")),
			attrs: nv("master-rsc:1", "10"),
			want:  []string{"Start rsc:0 ( node2 )", "Promote rsc:1 ( Stopped -> Promoted node1 )"},
		},
		{
			name:  "a running unpromoted instance is promoted in place",
			rscs:  ms(""),
			lrm:   strings.Replace(running("rsc", 2), "Dummy", "Stateful", 1), // the same agent
			attrs: nv("master-rsc", "5"),
			want:  []string{"Promote rsc:0 ( Unpromoted -> Promoted node1 )", "Start rsc:1 ( node2 )"},
		},
		{
			name: "a promoted instance without a promotion score is demoted",
			rscs: ms(""),
			lrm:  promoted("rsc"),
			want: []string{"Demote rsc:0 ( Promoted -> Unpromoted node1 )", "Start rsc:1 ( node2 )"},
		},
		{
			name:  "a role=Promoted location outweighs the promotion score",
			rscs:  ms(""),
			cons:  `<rsc_location id="l" rsc="ms" role="Master" node="node2" score="100"/>`,
			attrs: nv("master-rsc", "10"),
			want:  []string{"Start rsc:0 ( node1 )", "Promote rsc:1 ( Stopped -> Promoted node2 )"},
		},
		{
			name:  "promoted-max=0 promotes nothing",
			rscs:  ms(nv("promoted-max", "0")),
			lrm:   promoted("rsc"),
			attrs: nv("master-rsc", "10"),
			want:  []string{"Demote rsc:0 ( Promoted -> Unpromoted node1 )", "Start rsc:1 ( node2 )"},
		},
		{
			name: "the promotion is blocked when what the promoted role needs cannot start",
			rscs: ms("") + prim("p", ""),
			cons: `<rsc_colocation id="c" rsc="ms" rsc-role="Master" with-rsc="p" score="INFINITY"/>` +
				`<rsc_location id="l1" rsc="p" node="node1" score="-INFINITY"/>` +
				`<rsc_location id="l2" rsc="p" node="node2" score="-INFINITY"/>` +
				`<rsc_location id="l3" rsc="ms" role="Master" node="node1" score="10"/>`,
			want: []string{"Start rsc:0 ( node1 )", "Start rsc:1 ( node2 )"},
		},
		{
			name: "a primitive colocated with the promoted role follows it",
			rscs: ms("") + prim("p", ""),
			cons: `<rsc_colocation id="c" rsc="p" with-rsc="ms" with-rsc-role="Master" score="INFINITY"/>` +
				`<rsc_location id="l" rsc="ms" role="Master" node="node2" score="100"/>`,
			want: []string{"Start rsc:0 ( node1 )", "Promote rsc:1 ( Stopped -> Promoted node2 )", "Start p ( node2 )"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := cibXML(t, "", tc.rscs, tc.cons, tc.lrm, tc.attrs)
			r := schedule(t, c)
			var got []string
			for _, l := range r.Summary() {
				got = append(got, strings.Join(strings.Fields(strings.TrimPrefix(strings.TrimSpace(l), "*")), " "))
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("summary:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(tc.want, "\n  "))
			}
		})
	}
}

func TestFailAttrMatch(t *testing.T) {
	cases := []struct {
		key, prefix string
		anon, want  bool
	}{
		{"fail-count-rsc", "fail-count-rsc", true, true},
		{"fail-count-rsc:3", "fail-count-rsc", true, true},
		{"fail-count-rsc:3#monitor_10000", "fail-count-rsc", true, true},
		{"fail-count-rsc:3", "fail-count-rsc", false, false},
		{"fail-count-rsc:", "fail-count-rsc", true, false},
		{"fail-count-rsc2", "fail-count-rsc", true, false},
		{"fail-count-rsc#start_0", "fail-count-rsc", false, true},
	}
	for _, c := range cases {
		if got := failAttrMatch(c.key, c.prefix, c.anon); got != c.want {
			t.Errorf("failAttrMatch(%q, %q, %v) = %v, want %v", c.key, c.prefix, c.anon, got, c.want)
		}
	}
}
