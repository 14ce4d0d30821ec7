package pe

import (
	"encoding/xml"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/tachy-ha/tachy/cib"
)

// notifyCIB is a three-node cluster with a promotable clone (notify=true)
// running unpromoted everywhere, whose instance on node1 has the best
// promotion score: the transition promotes it.
const notifyCIB = `<cib epoch="1" num_updates="0" admin_epoch="0" validate-with="pacemaker-3.7" have-quorum="1" execution-date="1700000000">
  <configuration>
    <crm_config><cluster_property_set id="o">
      <nvpair id="o1" name="stonith-enabled" value="false"/>
    </cluster_property_set></crm_config>
    <nodes>
      <node id="1" uname="node1"/><node id="2" uname="node2"/><node id="3" uname="node3"/>
    </nodes>
    <resources>
      <clone id="ms">
        <meta_attributes id="ms-meta">
          <nvpair id="ms-p" name="promotable" value="true"/>
          <nvpair id="ms-n" name="notify" value="true"/>
        </meta_attributes>
        <primitive id="st" class="ocf" provider="pacemaker" type="Stateful"/>
      </clone>
    </resources>
    <constraints/>
  </configuration>
  <status>
    <node_state id="1" uname="node1" in_ccm="true" crmd="online" join="member" expected="member">
      <transient_attributes id="1"><instance_attributes id="s1"><nvpair id="s1-m" name="master-st" value="10"/></instance_attributes></transient_attributes>
      <lrm id="1"><lrm_resources>
        <lrm_resource id="st" class="ocf" provider="pacemaker" type="Stateful">
          <lrm_rsc_op id="st_last_0" operation_key="st_start_0" operation="start" transition-key="1:1:0:x" transition-magic="0:0;1:1:0:x" call-id="2" rc-code="0" op-status="0" interval="0" op-digest="DIGEST"/>
        </lrm_resource>
      </lrm_resources></lrm>
    </node_state>
    <node_state id="2" uname="node2" in_ccm="true" crmd="online" join="member" expected="member">
      <transient_attributes id="2"><instance_attributes id="s2"><nvpair id="s2-m" name="master-st" value="5"/></instance_attributes></transient_attributes>
      <lrm id="2"><lrm_resources>
        <lrm_resource id="st" class="ocf" provider="pacemaker" type="Stateful">
          <lrm_rsc_op id="st_last_0" operation_key="st_start_0" operation="start" transition-key="2:1:0:x" transition-magic="0:0;2:1:0:x" call-id="2" rc-code="0" op-status="0" interval="0" op-digest="DIGEST"/>
        </lrm_resource>
      </lrm_resources></lrm>
    </node_state>
    <node_state id="3" uname="node3" in_ccm="true" crmd="online" join="member" expected="member">
      <lrm id="3"><lrm_resources/></lrm>
    </node_state>
  </status>
</cib>`

// executeDigested schedules a test CIB whose history's op-digest is
// DIGEST (the digest of no parameters) and runs the transition.
func executeDigested(t *testing.T, x string) Execution {
	t.Helper()
	c, err := cib.Import(strings.NewReader(strings.ReplaceAll(x, "DIGEST", cib.OpDigest(map[string]string{}))))
	if err != nil {
		t.Fatal(err)
	}
	res, _, err := Simulation(c)
	if err != nil {
		t.Fatal(err)
	}
	return res.Execute()
}

// TestNotifyPromote checks the notifications of a start and a promotion:
// the clone's pseudo-actions, an instance's notify action on each node
// where it runs or will, their variables and their order.
func TestNotifyPromote(t *testing.T) {
	ex := executeDigested(t, notifyCIB)
	var lines []string
	pos := map[string]int{}
	for i, a := range ex.Executed {
		l := ExecutionLine(a)
		lines = append(lines, l)
		pos[a.Key()+"@"+a.Node] = i
	}
	if len(ex.Stalled) > 0 {
		t.Fatalf("stalled: %v", ex.Stalled)
	}
	for _, want := range []string{
		"Pseudo action:   ms_pre_notify_start_0", "Pseudo action:   ms_confirmed-post_notify_running_0",
		"Pseudo action:   ms_pre_notify_promote_0", "Pseudo action:   ms_confirmed-post_notify_promoted_0",
		"Resource action: st              start on node3",
		"Resource action: st              promote on node1",
	} {
		if !slices.Contains(lines, want) {
			t.Errorf("missing %q in:\n%s", want, strings.Join(lines, "\n"))
		}
	}
	// Which instance runs where.
	inst := map[string]string{}
	for _, a := range ex.Executed {
		if a.Task == "start" || a.Task == "promote" {
			inst[a.Task] = a.Resource
		}
	}
	// Pre-start goes to the two running instances only; post-start to all
	// three; pre- and post-promote to all three.
	notifies := map[string][]string{}
	for _, a := range ex.Executed {
		if a.Task != "notify" || a.Pseudo {
			continue
		}
		k := a.Meta["notify_type"] + "-" + a.Meta["notify_operation"]
		notifies[k] = append(notifies[k], a.Node)
		if got := a.Key(); got != a.Resource+"_"+a.Meta["notify_type"]+"_notify_"+a.Meta["notify_operation"]+"_0" {
			t.Errorf("notify key %s", got)
		}
	}
	for k, want := range map[string][]string{
		"pre-start": {"node1", "node2"}, "post-start": {"node1", "node2", "node3"},
		"pre-promote": {"node1", "node2", "node3"}, "post-promote": {"node1", "node2", "node3"},
	} {
		got := notifies[k]
		sort.Strings(got)
		if !slices.Equal(got, want) {
			t.Errorf("%s notifications on %v, want %v", k, got, want)
		}
	}
	// Variables: the same lists in every notification of the transition.
	for _, a := range ex.Executed {
		if a.Task != "notify" || a.Pseudo {
			continue
		}
		m := a.Meta
		for k, want := range map[string]string{
			"notify_start_resource":   inst["start"],
			"notify_start_uname":      "node3",
			"notify_promote_resource": inst["promote"],
			"notify_promote_uname":    "node1",
			"notify_stop_resource":    " ", "notify_stop_uname": " ",
			"notify_demote_resource": " ", "notify_demote_uname": " ",
			"notify_promoted_resource": " ", "notify_master_resource": " ",
			"notify_all_uname":       "node1 node2 node3",
			"notify_available_uname": "node1 node2 node3",
			"notify_key_type":        a.Meta["notify_type"],
		} {
			if m[k] != want {
				t.Errorf("%s on %s: %s=%q, want %q", a.Key(), a.Node, k, m[k], want)
			}
		}
		// The two active instances, by instance id with their nodes.
		if got := strings.Fields(m["notify_active_resource"]); len(got) != 2 || m["notify_active_resource"] != m["notify_unpromoted_resource"] ||
			m["notify_slave_uname"] != m["notify_unpromoted_uname"] || len(strings.Fields(m["notify_inactive_resource"])) != 1 {
			t.Errorf("%s on %s: active %q unpromoted %q inactive %q", a.Key(), a.Node, m["notify_active_resource"],
				m["notify_unpromoted_resource"], m["notify_inactive_resource"])
		}
	}
	// Order: pre-notifications before the action, post-notifications after
	// it, the promotion after the start's post-notifications.
	before := func(a, b string) {
		t.Helper()
		pa, oka := pos[a]
		pb, okb := pos[b]
		if !oka || !okb || pa >= pb {
			t.Errorf("%s (%d, %v) should run before %s (%d, %v)", a, pa, oka, b, pb, okb)
		}
	}
	st, pr := inst["start"], inst["promote"]
	before(pr+"_pre_notify_start_0@node1", "ms_confirmed-pre_notify_start_0@")
	before("ms_confirmed-pre_notify_start_0@", st+"_start_0@node3")
	before(st+"_start_0@node3", st+"_post_notify_start_0@node3")
	before(st+"_post_notify_start_0@node3", "ms_confirmed-post_notify_running_0@")
	before("ms_confirmed-post_notify_running_0@", "ms_pre_notify_promote_0@")
	before(pr+"_pre_notify_promote_0@node1", pr+"_promote_0@node1")
	before(pr+"_promote_0@node1", pr+"_post_notify_promote_0@node1")
	// Post-notifications and the clone's completions still run after an
	// abort (priority INFINITY); pre-notifications do not.
	for _, a := range ex.Executed {
		post := a.Meta["notify_type"] == "post" || a.Task == "running" || a.Task == "promoted"
		if post != (a.Priority == InfinityPriority) {
			t.Errorf("%s on %s: priority %d", a.Key(), a.Node, a.Priority)
		}
	}
	// The required start and promote carry the variables too.
	for _, a := range ex.Executed {
		if (a.Task == "start" || a.Task == "promote") && !a.Pseudo && a.Meta["notify_start_uname"] != "node3" {
			t.Errorf("%s on %s lacks the notification variables: %v", a.Key(), a.Node, a.Meta)
		}
	}
}

// TestNotifyMetaAgainstCrmSimulate compares the variables of every notify
// action of the corpus's notifying clones with those in crm_simulate's
// transition graph: they must be equal for the inputs whose executed
// actions pe reproduces; elsewhere differences are logged.
func TestNotifyMetaAgainstCrmSimulate(t *testing.T) {
	bin := crmSimulate()
	if bin == "" {
		t.Skip("crm_simulate not installed (apt-get install pacemaker-cli-utils)")
	}
	if testing.Short() {
		t.Skip("runs crm_simulate on the corpus")
	}
	tests := readIndex(t)
	dir := t.TempDir()
	compared, strict, actions := 0, 0, 0
	for _, ct := range tests {
		path, res, sameSet, ok := corpusExecution(ct.name, `name="notify" value="true"`)
		if !ok {
			continue
		}
		graph := filepath.Join(dir, ct.name+".graph")
		if out, err := exec.Command(bin, "-x", path, "-S", "-G", graph).CombinedOutput(); err != nil {
			t.Fatalf("%s: crm_simulate: %v\n%s", ct.name, err, out)
		}
		ref := graphNotifyMeta(t, graph)
		mine := map[string]map[string]string{}
		for _, a := range res.Execute().Executed {
			if a.Task == "notify" && !a.Pseudo {
				m := map[string]string{}
				for k, v := range a.Meta {
					if strings.HasPrefix(k, "notify_") {
						m[k] = v
					}
				}
				mine[a.Key()+"@"+a.Node] = m
			}
		}
		compared++
		if sameSet {
			strict++
		}
		for k, rm := range ref {
			actions++
			mm, ok := mine[k]
			if !ok {
				if sameSet {
					t.Errorf("%s: no notify action %s", ct.name, k)
				}
				continue
			}
			// Where the executed actions differ anyway, differences
			// are reported, not failed.
			report := t.Errorf
			if !sameSet {
				report = t.Logf
			}
			for name, v := range rm {
				if mm[name] != v {
					report("%s: %s: %s=%q, crm_simulate %q", ct.name, k, name, mm[name], v)
				}
			}
			for name := range mm {
				if _, ok := rm[name]; !ok {
					report("%s: %s: %s=%q not in crm_simulate's graph", ct.name, k, name, mm[name])
				}
			}
		}
	}
	t.Logf("notification variables compared for %d corpus inputs (%d with the same executed actions, where they must be equal), %d notify actions", compared, strict, actions)
	if strict == 0 {
		t.Fatal("no corpus input compared")
	}
}

// graphNotifyMeta reads the notify actions of a transition graph: by
// internal operation key and node, their CRM_meta_notify_* attributes
// (without the prefix).
func graphNotifyMeta(t *testing.T, path string) map[string]map[string]string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var g struct {
		Synapses []struct {
			Ops []struct {
				Operation string `xml:"operation,attr"`
				Key       string `xml:"internal_operation_key,attr"`
				OpKey     string `xml:"operation_key,attr"`
				Node      string `xml:"on_node,attr"`
				Raw       struct {
					Attrs []xml.Attr `xml:",any,attr"`
				} `xml:"attributes"`
			} `xml:"action_set>rsc_op"`
		} `xml:"synapse"`
	}
	if err := xml.Unmarshal(data, &g); err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]string{}
	for _, s := range g.Synapses {
		for _, op := range s.Ops {
			if op.Operation != "notify" {
				continue
			}
			m := map[string]string{}
			for _, a := range op.Raw.Attrs {
				if name, ok := strings.CutPrefix(a.Name.Local, "CRM_meta_notify_"); ok {
					m["notify_"+name] = a.Value
				}
			}
			key := op.Key
			if key == "" {
				key = op.OpKey
			}
			out[key+"@"+op.Node] = m
		}
	}
	return out
}
