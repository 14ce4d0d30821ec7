package pe

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tachy-ha/tachy/cib"
)

const threeNodes = `<cib epoch="1" num_updates="0" admin_epoch="0" have-quorum="1" dc-uuid="1">
  <configuration>
    <crm_config><cluster_property_set id="opts">
      <nvpair id="o1" name="stonith-enabled" value="%STONITH%"/>
      <nvpair id="o2" name="no-quorum-policy" value="stop"/>
    </cluster_property_set></crm_config>
    <nodes><node id="1" uname="n1"/><node id="2" uname="n2"/><node id="3" uname="n3"/></nodes>
    <resources>
      <primitive id="fence" class="stonith" type="fence_dummy"/>
      <primitive id="vip" class="ocf" provider="heartbeat" type="Dummy"/>
    </resources>
    <constraints>
      <rsc_location id="vip-n1" rsc="vip" node="n1" score="100"/>
      <rsc_location id="vip-n3" rsc="vip" node="n3" score="50"/>
    </constraints>
  </configuration>
  <status>
    <node_state id="1" uname="n1" in_ccm="true" crmd="online" join="member" expected="member"><lrm id="1"><lrm_resources>
      <lrm_resource id="vip" class="ocf" provider="heartbeat" type="Dummy">
        <lrm_rsc_op id="vip_last_0" operation_key="vip_start_0" operation="start" transition-key="1:1:0:x" transition-magic="0:0;1:1:0:x" call-id="2" rc-code="0" op-status="0" interval="0" op-digest="f2317cad3d54cec5d7d7aa7d0bf35cf8"/>
      </lrm_resource></lrm_resources></lrm></node_state>
    <node_state id="2" uname="n2" in_ccm="true" crmd="online" join="member" expected="member"><lrm id="2"><lrm_resources>
      <lrm_resource id="fence" class="stonith" type="fence_dummy">
        <lrm_rsc_op id="fence_last_0" operation_key="fence_start_0" operation="start" transition-key="2:1:0:x" transition-magic="0:0;2:1:0:x" call-id="2" rc-code="0" op-status="0" interval="0" op-digest="f2317cad3d54cec5d7d7aa7d0bf35cf8"/>
      </lrm_resource></lrm_resources></lrm></node_state>
    <node_state id="3" uname="n3" in_ccm="true" crmd="online" join="member" expected="member"/>
  </status>
</cib>`

func plansFor(t *testing.T, stonith string, quorate func(string) bool) map[string]Plan {
	t.Helper()
	c, err := cib.Import(strings.NewReader(strings.ReplaceAll(threeNodes, "%STONITH%", stonith)))
	if err != nil {
		t.Fatal(err)
	}
	plans, err := ContingencyPlans(c, time.Unix(1700000000, 0), Options{}, quorate)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]Plan{}
	for _, p := range plans {
		out[p.Lost] = p
	}
	if len(out) != 3 {
		t.Fatalf("plans for %d nodes, want 3", len(out))
	}
	// The CIB is untouched: nothing to do now.
	if res, _ := Schedule(c, time.Unix(1700000000, 0)); len(res.Summary()) != 0 {
		t.Fatalf("current transition not empty: %v", res.Summary())
	}
	return out
}

func lines(acts []*Action) []string {
	var out []string
	for _, a := range acts {
		out = append(out, ExecutionLine(a))
	}
	return out
}

func TestContingencyPlansWithFencing(t *testing.T) {
	plans := plansFor(t, "true", func(string) bool { return true })
	// Losing n1: fence it, then start vip on n3 (its next preference).
	p := plans["n1"]
	want := []string{"Fence (reboot) n1 'peer is no longer part of the cluster'", "Move vip ( n1 -> n3 )"}
	if got := normalised(p.Result.Summary()); !slices.Equal(got, want) {
		t.Errorf("losing n1: summary %q, want %q", got, want)
	}
	exec := lines(p.Executed())
	fence, start := slices.Index(exec, "Fencing n1 (reboot)"), slices.Index(exec, "Resource action: vip             start on n3")
	if fence < 0 || start < 0 || fence > start {
		t.Errorf("losing n1: the takeover must follow the fencing: %q", exec)
	}
	if on := lines(p.On("n3")); !slices.Contains(on, "Resource action: vip             start on n3") {
		t.Errorf("n3's part of the plan: %q", on)
	}
	// Losing n3 (running nothing): only its fencing.
	if got := normalised(plans["n3"].Result.Summary()); !slices.Equal(got, []string{"Fence (reboot) n3 'peer is no longer part of the cluster'"}) {
		t.Errorf("losing n3: %q", got)
	}
}

func TestContingencyPlansWithoutFencingOrQuorum(t *testing.T) {
	plans := plansFor(t, "false", func(string) bool { return true })
	if got := normalised(plans["n1"].Result.Summary()); !slices.Equal(got, []string{"Start vip ( n3 )"}) {
		t.Errorf("losing n1 without fencing: %q", got)
	}
	// Survivors without quorum stop what they run (no-quorum-policy=stop).
	plans = plansFor(t, "false", func(string) bool { return false })
	got := normalised(plans["n3"].Result.Summary())
	if !slices.ContainsFunc(got, func(l string) bool { return strings.HasPrefix(l, "Stop vip ( n1 )") }) {
		t.Errorf("losing n3 and quorum: %q", got)
	}
}

func TestWithoutNodeRejectsUnknown(t *testing.T) {
	c, err := cib.Import(strings.NewReader(strings.ReplaceAll(threeNodes, "%STONITH%", "true")))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := WithoutNode(c, "n9", true); err == nil || !strings.Contains(err.Error(), `"n9"`) {
		t.Errorf("err %v", err)
	}
}

func normalised(ls []string) []string {
	var out []string
	for _, l := range ls {
		out = append(out, strings.Join(strings.Fields(strings.TrimPrefix(strings.TrimSpace(l), "* ")), " "))
	}
	return out
}

// TestContingencyAgainstCrmSimulate compares plans with what crm_simulate
// computes for the same node loss (--node-fail, which records the loss as
// WithoutNode does): for the test CIB, and for every tenth corpus input
// whose current transition pe already reproduces.
func TestContingencyAgainstCrmSimulate(t *testing.T) {
	crm, err := exec.LookPath("crm_simulate")
	if err != nil {
		t.Skip("crm_simulate not installed (pacemaker-cli-utils)")
	}
	dir := t.TempDir()
	var files []string
	for _, stonith := range []string{"true", "false"} {
		f := filepath.Join(dir, "three-"+stonith+".xml")
		if err := os.WriteFile(f, []byte(strings.ReplaceAll(threeNodes, "%STONITH%", stonith)), 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	passing := readPassing(t)
	var names []string
	for n := range passing {
		names = append(names, n)
	}
	slices.Sort(names)
	step := 10
	if testing.Short() {
		step = 40
	}
	for i := 0; i < len(names); i += step {
		files = append(files, filepath.Join(conformanceDir, "xml", names[i]+".xml"))
	}
	var compared, same, inputs, inputsSame int
	for fi, f := range files {
		allSame := true
		synthetic := fi < 2
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		c, err := cib.Import(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		plans, err := ContingencyPlans(c, SimulationTime(c), Options{Sanitized: true}, func(string) bool { return c.HaveQuorum })
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, p := range plans {
			out, err := exec.Command(crm, "-x", f, "-S", "--node-fail", p.Lost).CombinedOutput()
			if err != nil {
				t.Fatalf("crm_simulate -x %s --node-fail %s: %v\n%s", f, p.Lost, err, out)
			}
			want := transitionSummary(string(out))
			got := transitionSummary(p.Result.String())
			compared++
			switch {
			case slices.Equal(got, want):
				same++
			case synthetic:
				allSame = false
				t.Errorf("%s losing %s: got\n  %s\nwant\n  %s", filepath.Base(f), p.Lost, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
			default:
				allSame = false
				t.Logf("%s losing %s: got\n  %s\nwant\n  %s", filepath.Base(f), p.Lost, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
			}
		}
		if len(plans) > 0 {
			inputs++
			if allSame {
				inputsSame++
			}
		}
	}
	t.Logf("contingency plans matching crm_simulate --node-fail: %d/%d plans, all plans of %d/%d inputs", same, compared, inputsSame, inputs)
	// Corpus inputs exercise scheduler corners the pe does not all get
	// right yet: 124 of 141 plans matched, all of 37 of 41 inputs, when
	// this was last counted; the rest are the order of two fencing lines,
	// a node that was shutting down when lost, and reasons of group
	// members. The bound is on inputs: one input with many nodes (as
	// bug-lf-2508's 16 plans) would sway a count of plans in the short
	// sample.
	// The short sample (every 40th passing input, 17 of them) holds
	// several of the multi-node inputs that miss: 12 of 17 when counted.
	bound := 80
	if testing.Short() {
		bound = 65
	}
	if inputsSame*100 < inputs*bound {
		t.Errorf("all plans match crm_simulate for only %d of %d inputs", inputsSame, inputs)
	}
}
