package pe

import (
	"slices"
	"strings"
	"testing"
)

// TestRoleMonitors: a promotable clone with a monitor per role. The
// instance promoted on node1 has its Unpromoted monitor cancelled before
// the promotion and gets the Promoted one after it; the others run the
// Unpromoted monitor; an op duplicated by name and interval runs nowhere.
func TestRoleMonitors(t *testing.T) {
	ops := `<operations>
          <op id="st-mon-p" name="monitor" interval="10s" role="Promoted"/>
          <op id="st-mon-u" name="monitor" interval="11s" role="Unpromoted"/>
          <op id="st-mon-dup1" name="monitor" interval="20s" role="Promoted"/>
          <op id="st-mon-dup2" name="monitor" interval="20s" role="Unpromoted"/>
        </operations>`
	x := strings.Replace(notifyCIB, `type="Stateful"/>`, `type="Stateful">`+ops+`</primitive>`, 1)
	// node1 runs the Unpromoted monitor already.
	x = strings.Replace(x, `call-id="2" rc-code="0" op-status="0" interval="0" op-digest="DIGEST"/>
        </lrm_resource>`, `call-id="2" rc-code="0" op-status="0" interval="0" op-digest="DIGEST"/>
          <lrm_rsc_op id="st_monitor_11000" operation_key="st_monitor_11000" operation="monitor" transition-key="3:1:0:x" transition-magic="0:0;3:1:0:x" call-id="3" rc-code="0" op-status="0" interval="11000" op-digest="DIGEST"/>
        </lrm_resource>`, 1)
	ex := executeDigested(t, x)
	pos := map[string]int{}
	var lines []string
	for i, a := range ex.Executed {
		l := strings.Join(strings.Fields(ExecutionLine(a)), " ")
		lines = append(lines, l)
		pos[l] = i
	}
	for _, want := range []string{
		"Resource action: st cancel=11000 on node1",
		"Resource action: st promote on node1",
		"Resource action: st monitor=10000 on node1",
		"Resource action: st monitor=11000 on node2",
		"Resource action: st monitor=11000 on node3",
	} {
		if _, ok := pos[want]; !ok {
			t.Errorf("missing %q in:\n%s", want, strings.Join(lines, "\n"))
		}
	}
	for _, unwanted := range []string{"monitor=11000 on node1", "monitor=10000 on node2", "monitor=10000 on node3", "monitor=20000"} {
		if slices.ContainsFunc(lines, func(l string) bool { return strings.Contains(l, unwanted) }) {
			t.Errorf("unexpected %q in:\n%s", unwanted, strings.Join(lines, "\n"))
		}
	}
	if t.Failed() {
		return
	}
	if !(pos["Resource action: st cancel=11000 on node1"] < pos["Resource action: st promote on node1"] &&
		pos["Resource action: st promote on node1"] < pos["Resource action: st monitor=10000 on node1"]) {
		t.Errorf("want cancel, promote, monitor in that order on node1:\n%s", strings.Join(lines, "\n"))
	}
}
