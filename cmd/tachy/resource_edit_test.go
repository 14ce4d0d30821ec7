package main

import (
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/tachy-ha/tachy/cib"
	"github.com/tachy-ha/tachy/lrmd"
)

const testCIB = `<cib epoch="7" num_updates="0" admin_epoch="0"><configuration><crm_config/>
<nodes><node id="1" uname="n1"/><node id="2" uname="n2"/></nodes>
<resources>
<primitive id="web" class="ocf" provider="heartbeat" type="Dummy"/>
<group id="g"><primitive id="ip" class="ocf" provider="heartbeat" type="Dummy"/><primitive id="app" class="ocf" provider="heartbeat" type="Dummy"/></group>
<clone id="db-clone"><primitive id="db" class="ocf" provider="heartbeat" type="Dummy"/></clone>
</resources>
<constraints>
<rsc_location id="web-n2" rsc="web" node="n2" score="100"/>
<rsc_colocation id="web-with-g" rsc="web" with-rsc="g" score="INFINITY"/>
<rsc_order id="db-then-web" first="db-clone" then="web"/>
<rsc_order id="set-order"><resource_set id="s1"><resource_ref id="web"/><resource_ref id="ip"/></resource_set></rsc_order>
</constraints></configuration>
<status><node_state id="1" uname="n1" in_ccm="true" crmd="online">
<transient_attributes id="1"><instance_attributes id="status-1">
<nvpair id="status-1-fc" name="fail-count-web#monitor_10000" value="1"/></instance_attributes></transient_attributes>
<lrm id="1"><lrm_resources>
<lrm_resource id="web" class="ocf" provider="heartbeat" type="Dummy">
<lrm_rsc_op id="web_last_0" operation_key="web_start_0" operation="start" call-id="3" rc-code="0" op-status="0" interval="0"/>
<lrm_rsc_op id="web_monitor_10000" operation_key="web_monitor_10000" operation="monitor" call-id="4" rc-code="0" op-status="0" interval="10000"/>
</lrm_resource>
<lrm_resource id="ip" class="ocf" provider="heartbeat" type="Dummy">
<lrm_rsc_op id="ip_last_0" operation_key="ip_stop_0" operation="stop" call-id="5" rc-code="0" op-status="0" interval="0"/>
</lrm_resource>
<lrm_resource id="db:0" class="ocf" provider="heartbeat" type="Dummy">
<lrm_rsc_op id="db_last_0" operation_key="db_monitor_0" operation="monitor" call-id="2" rc-code="7" op-status="0" interval="0"/>
</lrm_resource>
</lrm_resources></lrm></node_state>
<node_state id="2" uname="n2" in_ccm="true" crmd="online"><lrm id="2"><lrm_resources>
<lrm_resource id="db:1" class="ocf" provider="heartbeat" type="Dummy">
<lrm_rsc_op id="db_last_0" operation_key="db_start_0" operation="start" call-id="6" rc-code="0" op-status="0" interval="0"/>
</lrm_resource></lrm_resources></lrm></node_state>
</status></cib>`

// The meta-data of a small agent: one required parameter, one optional,
// a suggested monitor and a promote action.
const testMeta = `<?xml version="1.0"?>
<resource-agent name="Test" version="1.0"><version>1.0</version>
<parameters>
<parameter name="state" required="1"><content type="string"/></parameter>
<parameter name="delay"><content type="integer" default="0"/></parameter>
</parameters>
<actions>
<action name="start" timeout="20s"/>
<action name="stop" timeout="25s"/>
<action name="monitor" timeout="20s" interval="10s" depth="0"/>
<action name="monitor" timeout="20s" interval="11s" role="Promoted"/>
<action name="promote" timeout="30s"/>
<action name="demote" timeout="30s"/>
<action name="meta-data" timeout="5s"/>
</actions></resource-agent>`

func loadTestCIB(t *testing.T) *cib.CIB {
	t.Helper()
	c, err := cib.Import(strings.NewReader(testCIB))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func testMetadata(t *testing.T) *lrmd.Metadata {
	t.Helper()
	md, err := lrmd.ParseMetadata([]byte(testMeta))
	if err != nil {
		t.Fatal(err)
	}
	return md
}

// configXML is the configuration section the edit would submit; it must
// pass checkConfig.
func configXML(t *testing.T, c *cib.CIB) string {
	t.Helper()
	xml, err := checkConfig(c)
	if err != nil {
		t.Fatal(err)
	}
	return compactXML(xml)
}

// compactXML drops the export's indentation and writes empty elements
// self-closed, so that tests can look for whole elements.
func compactXML(s string) string {
	s = regexp.MustCompile(`>\s+<`).ReplaceAllString(s, "><")
	return regexp.MustCompile(`<([\w-]+)([^<>]*)></[\w-]+>`).ReplaceAllString(s, "<$1$2/>")
}

func TestParseCreateArgs(t *testing.T) {
	got, err := parseCreateArgs(strings.Fields("web ocf:heartbeat:Dummy state=/tmp/x fake=1 op monitor interval=10s timeout=20s op start timeout=30s meta migration-threshold=2"))
	if err != nil {
		t.Fatal(err)
	}
	want := createSpec{Name: "web", Agent: "ocf:heartbeat:Dummy",
		Params: []kv{{"state", "/tmp/x"}, {"fake", "1"}},
		Ops:    []opSpec{{"monitor", []kv{{"interval", "10s"}, {"timeout", "20s"}}}, {"start", []kv{{"timeout", "30s"}}}},
		Meta:   []kv{{"migration-threshold", "2"}}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
	for _, tc := range []struct{ args, msg string }{
		{"web", "write `tachy resource create NAME AGENT"},
		{"1web ocf:heartbeat:Dummy", `resource name "1web" is not a valid id`},
		{"web ocf:heartbeat:Dummy state", `"state": write KEY=VALUE`},
		{"web ocf:heartbeat:Dummy op", "`op` needs an operation name"},
		{"web ocf:heartbeat:Dummy op interval=10s", "`op` needs an operation name"},
		{"web ocf:heartbeat:Dummy op monitor timeout=10s", "op monitor needs an interval"},
		{"web ocf:heartbeat:Dummy a=1 a=2", "a is given twice"},
		{"web ocf:heartbeat:Dummy meta x", `"x": write KEY=VALUE here (after meta)`},
	} {
		if _, err := parseCreateArgs(strings.Fields(tc.args)); err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: error %v, want %q", tc.args, err, tc.msg)
		}
	}
}

func TestBuildPrimitive(t *testing.T) {
	md := testMetadata(t)
	agent := lrmd.Agent{Class: "ocf", Provider: "test", Type: "Test"}
	spec, _ := parseCreateArgs(strings.Fields("t ocf:test:Test state=/tmp/s meta migration-threshold=3"))
	p, warnings, err := buildPrimitive(spec, agent, md, createOptions{Disabled: true})
	if err != nil || len(warnings) > 0 {
		t.Fatalf("%v %v", err, warnings)
	}
	c := loadTestCIB(t)
	if _, err := createResource(c, p, createOptions{}); err != nil {
		t.Fatal(err)
	}
	xml := configXML(t, c)
	for _, want := range []string{
		`<primitive id="t" class="ocf" provider="test" type="Test">`,
		`<instance_attributes id="t-instance_attributes"><nvpair id="t-instance_attributes-state" name="state" value="/tmp/s"/>`,
		`<meta_attributes id="t-meta_attributes"><nvpair id="t-meta_attributes-migration-threshold" name="migration-threshold" value="3"/><nvpair id="t-meta_attributes-target-role" name="target-role" value="Stopped"/>`,
		`<op id="t-start-interval-0s" name="start" interval="0" timeout="20s"/>`,
		`<op id="t-stop-interval-0s" name="stop" interval="0" timeout="25s"/>`,
		`<op id="t-monitor-interval-10s" name="monitor" interval="10s" timeout="20s"/>`,
	} {
		if !strings.Contains(xml, want) {
			t.Errorf("missing %s in\n%s", want, xml)
		}
	}
	if strings.Contains(xml, "interval-11s") || strings.Contains(xml, "promote") {
		t.Errorf("a non-promotable resource got role monitors or promote:\n%s", xml)
	}

	// Given ops replace the defaults of that name; promotable adds the
	// role monitors and promote/demote.
	spec, _ = parseCreateArgs(strings.Fields("s ocf:test:Test state=x op monitor interval=5 timeout=9s on-fail=restart"))
	p, _, err = buildPrimitive(spec, agent, md, createOptions{Promotable: true})
	if err != nil {
		t.Fatal(err)
	}
	c = loadTestCIB(t)
	if _, err := createResource(c, p, createOptions{Promotable: true}); err != nil {
		t.Fatal(err)
	}
	xml = configXML(t, c)
	for _, want := range []string{
		`<clone id="s-clone"><meta_attributes id="s-clone-meta_attributes"><nvpair id="s-clone-meta_attributes-promotable" name="promotable" value="true"/></meta_attributes><primitive id="s"`,
		`<op id="s-monitor-interval-5s" name="monitor" interval="5s" timeout="9s" on-fail="restart"/>`,
		`<op id="s-promote-interval-0s" name="promote" interval="0" timeout="30s"/>`,
	} {
		if !strings.Contains(xml, want) {
			t.Errorf("missing %s in\n%s", want, xml)
		}
	}

	// Bad parameters: refused, naming the parameter; --force makes them
	// warnings.
	for _, tc := range []struct {
		args string
		opts createOptions
		msg  string
	}{
		{"x ocf:test:Test", createOptions{}, `required parameter "state" of ocf:test:Test is missing`},
		{"x ocf:test:Test state=1 nope=2", createOptions{}, `ocf:test:Test has no parameter "nope" (its parameters are state, delay); fix the command, or add --force`},
		{"x ocf:test:Test state=1 delay=soon", createOptions{}, `parameter "delay" of ocf:test:Test must be an integer`},
		{"x ocf:test:Test state=1 op monitor interval=often", createOptions{}, "op monitor interval=often: not an interval"},
		{"x ocf:test:Test state=1 op start timeout=-1", createOptions{}, "op start timeout=-1: not a timeout"},
		{"x ocf:test:Test state=1 op start colour=red", createOptions{}, `op start: unknown option "colour"`},
		{"x ocf:test:Test state=1 op monitor interval=1s role=Boss", createOptions{}, "op monitor role=Boss: use Started"},
	} {
		spec, err := parseCreateArgs(strings.Fields(tc.args))
		if err == nil {
			_, _, err = buildPrimitive(spec, agent, md, tc.opts)
		}
		if err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: error %v, want %q", tc.args, err, tc.msg)
		}
	}
	spec, _ = parseCreateArgs(strings.Fields("x ocf:test:Test nope=2"))
	if _, w, err := buildPrimitive(spec, agent, md, createOptions{Force: true}); err != nil || len(w) != 2 {
		t.Errorf("--force: %v, warnings %q", err, w)
	}
	noPromote, _ := lrmd.ParseMetadata([]byte(strings.ReplaceAll(testMeta, `name="promote"`, `name="reload"`)))
	spec, _ = parseCreateArgs(strings.Fields("x ocf:test:Test state=1"))
	if _, _, err := buildPrimitive(spec, agent, noPromote, createOptions{Promotable: true}); err == nil || !strings.Contains(err.Error(), "no promote action") {
		t.Errorf("promotable without promote: %v", err)
	}
}

func newPrim(id string) *cib.Primitive {
	return &cib.Primitive{ID: id, Class: "ocf", Provider: "heartbeat", Type: "Dummy", Operations: &cib.Operations{}}
}

func TestCreatePlacement(t *testing.T) {
	c := loadTestCIB(t)
	if _, err := createResource(c, newPrim("mid"), createOptions{Group: "g", After: "ip"}); err != nil {
		t.Fatal(err)
	}
	if _, err := createResource(c, newPrim("first"), createOptions{Group: "g", Before: "ip"}); err != nil {
		t.Fatal(err)
	}
	if _, err := createResource(c, newPrim("solo"), createOptions{Group: "g2"}); err != nil {
		t.Fatal(err)
	}
	if _, err := createResource(c, newPrim("cl"), createOptions{Clone: true}); err != nil {
		t.Fatal(err)
	}
	xml := configXML(t, c)
	for _, want := range []string{
		`<group id="g"><primitive id="first"`,
		`<primitive id="ip" class="ocf" provider="heartbeat" type="Dummy"/><primitive id="mid"`,
		`<group id="g2"><primitive id="solo"`,
		`<clone id="cl-clone"><primitive id="cl"`,
	} {
		if !strings.Contains(xml, want) {
			t.Errorf("missing %s in\n%s", want, xml)
		}
	}
	before := configXML(t, loadTestCIB(t))
	for _, tc := range []struct {
		id   string
		opts createOptions
		msg  string
	}{
		{"web", createOptions{}, `id "web" is already used (by a primitive): choose another name`},
		{"s1", createOptions{}, `id "s1" is already used (by a resource_set)`},
		{"x", createOptions{Group: "web"}, "--group web: web is not a group"},
		{"x", createOptions{Group: "web-n2"}, `--group web-n2: id "web-n2" is already used (by a rsc_location)`},
		{"x", createOptions{Group: "g", Before: "nope"}, "nope is not a member of group g (its members are ip, app)"},
		{"x", createOptions{Before: "ip"}, "add --group GROUP"},
		{"x", createOptions{Group: "g", Clone: true}, "use only one of --group, --clone and --promotable"},
		{"x", createOptions{Group: "new", After: "ip"}, "group new does not exist yet"},
	} {
		c := loadTestCIB(t)
		if _, err := createResource(c, newPrim(tc.id), tc.opts); err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s %+v: error %v, want %q", tc.id, tc.opts, err, tc.msg)
		}
		_ = before
	}
}

func TestDeleteResource(t *testing.T) {
	for _, tc := range []struct {
		id                string
		removed, dropped  []string
		present, notThere []string
	}{
		{"web", []string{"web"}, []string{"web-n2", "web-with-g", "db-then-web"}, []string{`<resource_ref id="ip"/>`}, []string{`id="web"`}},
		{"ip", []string{"ip"}, nil, []string{`<group id="g"><primitive id="app"`, `<resource_ref id="web"/></resource_set>`}, []string{`id="ip"`}},
		{"g", []string{"app", "g", "ip"}, []string{"web-with-g"}, []string{`<resource_set id="s1"><resource_ref id="web"/></resource_set>`}, []string{`id="ip"`, `id="g"`}},
		{"db", []string{"db", "db-clone"}, []string{"db-then-web"}, nil, []string{"clone"}},
	} {
		c := loadTestCIB(t)
		removed, dropped, err := deleteResource(c, tc.id)
		if err != nil {
			t.Fatalf("%s: %v", tc.id, err)
		}
		if !reflect.DeepEqual(removed, tc.removed) || !reflect.DeepEqual(dropped, tc.dropped) {
			t.Errorf("delete %s: removed %v, constraints %v; want %v, %v", tc.id, removed, dropped, tc.removed, tc.dropped)
		}
		xml := configXML(t, c)
		for _, s := range tc.present {
			if !strings.Contains(xml, s) {
				t.Errorf("delete %s: missing %s in\n%s", tc.id, s, xml)
			}
		}
		for _, s := range tc.notThere {
			if strings.Contains(xml, s) {
				t.Errorf("delete %s: %s still in\n%s", tc.id, s, xml)
			}
		}
	}
	// Deleting both members of a group removes the group.
	c := loadTestCIB(t)
	deleteResource(c, "ip")
	if removed, _, _ := deleteResource(c, "app"); !reflect.DeepEqual(removed, []string{"app", "g"}) {
		t.Errorf("last member: removed %v", removed)
	}
	configXML(t, c)
	if _, _, err := deleteResource(loadTestCIB(t), "nope"); err == nil || !strings.Contains(err.Error(), `resource "nope" does not exist: the resources are web, g, ip, app, db-clone, db`) {
		t.Errorf("missing resource: %v", err)
	}
}

func TestConstraintEdits(t *testing.T) {
	c := loadTestCIB(t)
	for _, f := range []func() (string, error){
		func() (string, error) { return addLocation(c, "g", "n1", "50", "") },
		func() (string, error) { return addLocation(c, "g", "n1", "-INFINITY", "") },
		func() (string, error) { return addColocation(c, "db-clone", "g", "", "") },
		func() (string, error) { return addOrder(c, "g", "db-clone", "", "") },
		func() (string, error) { return addOrder(c, "web", "g", "optional", "my-order") },
		func() (string, error) { return moveResource(c, "web", "n1") },
		func() (string, error) { return moveResource(c, "web", "n2") }, // replaces the first
		func() (string, error) { return banResource(c, "web", "n1") },
	} {
		if _, err := f(); err != nil {
			t.Fatal(err)
		}
	}
	xml := configXML(t, c)
	for _, want := range []string{
		`<rsc_location id="location-g-n1-50" rsc="g" node="n1" score="50"/>`,
		`<rsc_location id="location-g-n1--INFINITY" rsc="g" node="n1" score="-INFINITY"/>`,
		`<rsc_colocation id="colocation-db-clone-g-INFINITY" rsc="db-clone" with-rsc="g" score="INFINITY"/>`,
		`<rsc_order id="order-g-db-clone-mandatory" first="g" first-action="start" then="db-clone" then-action="start"/>`,
		`<rsc_order id="my-order" first="web" first-action="start" then="g" then-action="start" kind="Optional"/>`,
		`<rsc_location id="cli-prefer-web" rsc="web" node="n2" score="INFINITY"/>`,
		`<rsc_location id="cli-ban-web-on-n1" rsc="web" node="n1" score="-INFINITY"/>`,
	} {
		if !strings.Contains(xml, want) {
			t.Errorf("missing %s in\n%s", want, xml)
		}
	}
	if strings.Count(xml, "cli-prefer-web") != 1 {
		t.Errorf("a second move did not replace the first:\n%s", xml)
	}
	if gone, err := clearResource(c, "web", ""); err != nil || !reflect.DeepEqual(gone, []string{"cli-prefer-web", "cli-ban-web-on-n1"}) {
		t.Errorf("clear: %v %v", gone, err)
	}
	if err := removeConstraint(c, "my-order"); err != nil {
		t.Fatal(err)
	}
	if xml := configXML(t, c); strings.Contains(xml, "cli-") || strings.Contains(xml, "my-order") {
		t.Errorf("clear/remove left:\n%s", xml)
	}

	for _, tc := range []struct {
		name string
		f    func(c *cib.CIB) error
		msg  string
	}{
		{"location missing rsc", func(c *cib.CIB) error { _, err := addLocation(c, "nope", "n1", "10", ""); return err }, `resource "nope" does not exist: the resources are web, g`},
		{"location clone child", func(c *cib.CIB) error { _, err := addLocation(c, "db", "n1", "10", ""); return err }, "db is inside clone db-clone: name the clone db-clone instead"},
		{"location unknown node", func(c *cib.CIB) error { _, err := addLocation(c, "web", "n9", "10", ""); return err }, `unknown node "n9": the cluster's nodes are n1, n2`},
		{"location bad score", func(c *cib.CIB) error { _, err := addLocation(c, "web", "n1", "lots", ""); return err }, `score "lots": use an integer, INFINITY or -INFINITY`},
		{"location taken id", func(c *cib.CIB) error { _, err := addLocation(c, "web", "n1", "10", "web-n2"); return err }, `id "web-n2" is already used (by a rsc_location): choose another --id`},
		{"location bad id", func(c *cib.CIB) error { _, err := addLocation(c, "web", "n1", "10", "9x"); return err }, `constraint id "9x" is not a valid id`},
		{"colocation missing with", func(c *cib.CIB) error { _, err := addColocation(c, "web", "nope", "", ""); return err }, `resource "nope" does not exist`},
		{"colocation self", func(c *cib.CIB) error { _, err := addColocation(c, "web", "web", "", ""); return err }, "web cannot be colocated with itself"},
		{"order missing first", func(c *cib.CIB) error { _, err := addOrder(c, "nope", "web", "", ""); return err }, `resource "nope" does not exist`},
		{"order bad kind", func(c *cib.CIB) error { _, err := addOrder(c, "g", "web", "Sometimes", ""); return err }, "--kind Sometimes: use Mandatory, Optional or Serialize"},
		{"remove missing", func(c *cib.CIB) error { return removeConstraint(c, "nope") }, `no constraint "nope": the constraints are web-n2, web-with-g, db-then-web, set-order`},
		{"move missing node", func(c *cib.CIB) error { _, err := moveResource(c, "web", "n3"); return err }, `unknown node "n3": the cluster's nodes are n1, n2`},
		{"ban missing rsc", func(c *cib.CIB) error { _, err := banResource(c, "nope", "n1"); return err }, `resource "nope" does not exist`},
		{"standby unknown node", func(c *cib.CIB) error { return setNodeAttribute(c, "n7", "standby", nil) }, `unknown node "n7": the cluster's nodes are n1, n2`},
	} {
		c := loadTestCIB(t)
		before := configXML(t, c)
		err := tc.f(c)
		if err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.msg)
		}
		if after := configXML(t, c); after != before {
			t.Errorf("%s: refused, but the configuration changed:\n%s", tc.name, after)
		}
	}
}

func TestColocationArgs(t *testing.T) {
	for _, tc := range []struct {
		args             string
		rsc, with, score string
		bad              bool
	}{
		{"a with b", "a", "b", "", false},
		{"a b", "a", "b", "", false},
		{"a with b -100", "a", "b", "-100", false},
		{"a", "", "", "", true},
		{"a with b c d", "", "", "", true},
	} {
		r, w, s, err := parseColocationArgs(strings.Fields(tc.args))
		if (err != nil) != tc.bad || (!tc.bad && (r != tc.rsc || w != tc.with || s != tc.score)) {
			t.Errorf("%s: %q %q %q %v", tc.args, r, w, s, err)
		}
	}
}

func TestNodeAndMeta(t *testing.T) {
	c := loadTestCIB(t)
	on := "on"
	if err := setNodeAttribute(c, "n1", "standby", &on); err != nil {
		t.Fatal(err)
	}
	if err := setNodeAttribute(c, "n2", "maintenance", &on); err != nil {
		t.Fatal(err)
	}
	if err := disableResource(c, "g"); err != nil {
		t.Fatal(err)
	}
	xml := configXML(t, c)
	for _, want := range []string{
		`<node id="1" uname="n1"><instance_attributes id="nodes-1"><nvpair id="nodes-1-standby" name="standby" value="on"/></instance_attributes></node>`,
		`<nvpair id="nodes-2-maintenance" name="maintenance" value="on"/>`,
		`<group id="g"><meta_attributes id="g-meta_attributes"><nvpair id="g-meta_attributes-target-role" name="target-role" value="Stopped"/>`,
	} {
		if !strings.Contains(xml, want) {
			t.Errorf("missing %s in\n%s", want, xml)
		}
	}
	if err := setNodeAttribute(c, "n1", "standby", nil); err != nil {
		t.Fatal(err)
	}
	if err := enableResource(c, "ip"); err != nil { // enabling a member enables its group
		t.Fatal(err)
	}
	xml = configXML(t, c)
	if strings.Contains(xml, `name="standby"`) || strings.Contains(xml, "target-role") {
		t.Errorf("unstandby/enable left:\n%s", xml)
	}
}

func TestActiveNodesAndLists(t *testing.T) {
	c := loadTestCIB(t)
	for rsc, want := range map[string][]string{"web": {"n1"}, "ip": nil, "g": nil, "db-clone": {"n2"}, "db": {"n2"}} {
		if got := activeNodes(c, rsc); !reflect.DeepEqual(got, want) {
			t.Errorf("%s active on %v, want %v", rsc, got, want)
		}
	}
	infos := resourceInfos(c)
	if len(infos) != 6 || infos[1].Kind != "group" || !reflect.DeepEqual(infos[1].Members, []string{"ip", "app"}) || infos[2].Parent != "g" || infos[0].Agent != "ocf:heartbeat:Dummy" {
		t.Errorf("resource infos: %+v", infos)
	}
	text := formatConstraints(constraintInfos(c))
	for _, want := range []string{
		"Location Constraints:\n  Resource: web Enabled on: Node: n2 (score:100) (id:web-n2)\n",
		"Ordering Constraints:\n  start db-clone then start web (kind:Mandatory) (id:db-then-web)\n  set web ip (kind:Mandatory) (id:set-order)\n",
		"Colocation Constraints:\n  web with g (score:INFINITY) (id:web-with-g)\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("constraint list lacks %q:\n%s", want, text)
		}
	}
}

// The agent checks on this machine: an agent that is not installed is
// named as such; the real Dummy's meta-data gives its monitor.
func TestAgentMetadata(t *testing.T) {
	if _, _, err := agentMetadata("ocf:heartbeat:Nope"); err == nil || !strings.Contains(err.Error(), "agent ocf:heartbeat:Nope is not installed on this node: ") {
		t.Errorf("unknown agent: %v", err)
	}
	if _, _, err := agentMetadata("heartbeat"); err == nil || !strings.Contains(err.Error(), "want class:provider:type") {
		t.Errorf("malformed agent: %v", err)
	}
	if _, err := os.Stat("/usr/lib/ocf/resource.d/heartbeat/Dummy"); err != nil {
		t.Skip("resource-agents is not installed")
	}
	a, md, err := agentMetadata("ocf:heartbeat:Dummy")
	if err != nil {
		t.Fatal(err)
	}
	spec, _ := parseCreateArgs([]string{"d", "ocf:heartbeat:Dummy"})
	p, _, err := buildPrimitive(spec, a, md, createOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c := loadTestCIB(t)
	createResource(c, p, createOptions{})
	if xml := configXML(t, c); !strings.Contains(xml, `<op id="d-monitor-interval-10s" name="monitor" interval="10s" timeout="20s"/>`) {
		t.Errorf("Dummy's default monitor:\n%s", xml)
	}
}
