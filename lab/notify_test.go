package lab_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// agentCall is one run of ocf:pacemaker:Stateful as its envfile parameter
// records it: the action and the agent's environment.
type agentCall struct {
	action string
	env    map[string]string
}

// notifyVar is the value of an OCF_RESKEY_CRM_meta_notify_* variable.
func (c agentCall) notifyVar(name string) string { return c.env["OCF_RESKEY_CRM_meta_notify_"+name] }

// readEnvFile parses the dumps Stateful appends for every call:
// "### ACTION @ DATE ###", the sorted environment, "###".
func readEnvFile(path string) []agentCall {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var calls []agentCall
	var cur *agentCall
	for _, line := range strings.Split(string(b), "\n") {
		switch {
		case strings.HasPrefix(line, "### ") && strings.HasSuffix(line, " ###"):
			action, _, _ := strings.Cut(strings.TrimPrefix(line, "### "), " @ ")
			calls = append(calls, agentCall{action: action, env: map[string]string{}})
			cur = &calls[len(calls)-1]
		case line == "###":
			cur = nil
		case cur != nil:
			if k, v, ok := strings.Cut(line, "="); ok {
				cur.env[k] = v
			}
		}
	}
	// The last dump may still be being written.
	if cur != nil {
		calls = calls[:len(calls)-1]
	}
	return calls
}

// notifications lists a node's notify calls of one type and operation.
func notifications(calls []agentCall, typ, op string) []agentCall {
	var out []agentCall
	for _, c := range calls {
		if c.action == "notify" && c.notifyVar("type") == typ && c.notifyVar("operation") == op {
			out = append(out, c)
		}
	}
	return out
}

func wordSet(s string) []string {
	w := strings.Fields(s)
	slices.Sort(w)
	return w
}

// A promotable clone with notify=true of the real ocf:pacemaker:Stateful,
// whose envfile parameter (a file per node, by a rule on #uname) records
// the environment of every call: the instances receive the pre- and
// post-notifications of a promotion and of a start, in order around the
// action, with Pacemaker's variables (OCF_RESKEY_CRM_meta_notify_type,
// _operation, _start/_promote/_active/_unpromoted/_promoted_resource and
// _uname, ...), and no notification is recorded in the CIB's operation
// history. The clone first runs on n1 and n2 (n3 is banned), where one
// instance is promoted; then the ban is lifted and an instance starts on
// n3.
func TestClusterCloneNotifications(t *testing.T) {
	needLab(t)
	if _, err := os.Stat("/usr/lib/ocf/resource.d/pacemaker/Stateful"); err != nil {
		t.Skip("pacemaker-resource-agents is not installed (ocf:pacemaker:Stateful)")
	}
	l, _ := startCluster(t, "xdp", 3)
	waitDC(t, l, l.Nodes(), 20*time.Second)
	envDir := t.TempDir()
	cibFile := filepath.Join(t.TempDir(), "cib.xml")
	os.WriteFile(cibFile, []byte(strings.ReplaceAll(notifyCIB, "ENVDIR", envDir)), 0o644)
	mustCLI(t, l, "n1", "config", "import", cibFile)
	envOf := func(n string) []agentCall { return readEnvFile(filepath.Join(envDir, "env-"+n)) }

	// Started on n1 and n2, one promoted.
	primary, other := "", ""
	waitRoles(t, l, func(r map[string]string) bool {
		primary, other = "", ""
		for n, role := range r {
			switch role {
			case "Promoted":
				primary = n
			case "Unpromoted":
				other = n
			}
		}
		return len(r) == 2 && r["n3"] == "" && primary != "" && other != ""
	}, "not one promoted and one unpromoted instance on n1 and n2")

	// Both instances hear of the promotion before and after it.
	var prePromote, postPromote map[string]agentCall
	eventually(t, 30*time.Second, func() error {
		prePromote, postPromote = map[string]agentCall{}, map[string]agentCall{}
		for _, n := range []string{primary, other} {
			calls := envOf(n)
			pre, post := notifications(calls, "pre", "promote"), notifications(calls, "post", "promote")
			if len(pre) != 1 || len(post) != 1 {
				return fmt.Errorf("%s received %d pre- and %d post-promote notifications, want 1 and 1", n, len(pre), len(post))
			}
			prePromote[n], postPromote[n] = pre[0], post[0]
		}
		return nil
	})
	// On the promoted node: pre-notification, promote, post-notification.
	var order []string
	for _, c := range envOf(primary) {
		if c.action == "promote" || c.action == "notify" && c.notifyVar("operation") == "promote" {
			order = append(order, c.action+"/"+c.notifyVar("type"))
		}
	}
	if !slices.Equal(order, []string{"notify/pre", "promote/", "notify/post"}) {
		t.Errorf("on %s the promotion ran as %v, want the pre-notification, the promote, the post-notification", primary, order)
	}
	promoted := "st:" + prePromote[primary].env["OCF_RESKEY_CRM_meta_clone"]
	for n, c := range map[string]agentCall{"pre " + primary: prePromote[primary], "pre " + other: prePromote[other],
		"post " + primary: postPromote[primary], "post " + other: postPromote[other]} {
		for name, want := range map[string]string{
			"promote_resource": promoted, "promote_uname": primary,
			"start_resource": " ", "stop_resource": " ", "demote_resource": " ",
			"promoted_resource": " ", "master_resource": " ", // the roles before the transition
			"all_uname": "n1 n2 n3", "key_operation": map[bool]string{true: "promote", false: "promoted"}[strings.HasPrefix(n, "pre")],
		} {
			if got := c.notifyVar(name); got != want {
				t.Errorf("%s: notify_%s=%q, want %q", n, name, got, want)
			}
		}
		if got := wordSet(c.notifyVar("active_uname")); !slices.Equal(got, []string{"n1", "n2"}) {
			t.Errorf("%s: notify_active_uname %v, want n1 n2", n, got)
		}
		if c.notifyVar("unpromoted_uname") != c.notifyVar("active_uname") || c.notifyVar("slave_resource") != c.notifyVar("active_resource") {
			t.Errorf("%s: unpromoted %q / %q, active %q / %q", n, c.notifyVar("unpromoted_uname"), c.notifyVar("slave_resource"),
				c.notifyVar("active_uname"), c.notifyVar("active_resource"))
		}
		if len(strings.Fields(c.notifyVar("inactive_resource"))) != 1 {
			t.Errorf("%s: notify_inactive_resource %q, want the one instance that is not running", n, c.notifyVar("inactive_resource"))
		}
	}

	// Lift the ban: an instance starts on n3. The two running instances
	// hear of it before and after; the new one after only.
	mustCLI(t, l, "n2", "constraint", "remove", "ban-n3")
	waitRoles(t, l, func(r map[string]string) bool {
		return len(r) == 3 && r[primary] == "Promoted" && r["n3"] == "Unpromoted"
	}, "no instance started on n3")
	var preStart, postStart map[string]agentCall
	eventually(t, 30*time.Second, func() error {
		preStart, postStart = map[string]agentCall{}, map[string]agentCall{}
		for _, n := range l.Nodes() {
			calls := envOf(n)
			var pre, post []agentCall
			for _, c := range notifications(calls, "pre", "start") {
				if c.notifyVar("start_uname") == "n3" {
					pre = append(pre, c)
				}
			}
			for _, c := range notifications(calls, "post", "start") {
				if c.notifyVar("start_uname") == "n3" {
					post = append(post, c)
				}
			}
			wantPre := 1
			if n == "n3" {
				wantPre = 0 // not running yet: no pre-notification
			}
			if len(pre) != wantPre || len(post) != 1 {
				return fmt.Errorf("%s received %d pre- and %d post-start notifications of the start on n3, want %d and 1", n, len(pre), len(post), wantPre)
			}
			if n != "n3" {
				preStart[n] = pre[0]
			}
			postStart[n] = post[0]
		}
		return nil
	})
	var started string
	for _, c := range envOf("n3") {
		if c.action == "start" {
			started = "st:" + c.env["OCF_RESKEY_CRM_meta_clone"]
		}
	}
	check := func(what string, c agentCall) {
		for name, want := range map[string]string{
			"start_resource": started, "start_uname": "n3", "promote_resource": " ", "stop_resource": " ",
			"promoted_resource": promoted, "promoted_uname": primary, "master_uname": primary,
			"unpromoted_uname": other, "all_uname": "n1 n2 n3", "available_uname": "n1 n2 n3",
		} {
			if got := c.notifyVar(name); got != want {
				t.Errorf("%s: notify_%s=%q, want %q", what, name, got, want)
			}
		}
		if got := wordSet(c.notifyVar("active_uname")); !slices.Equal(got, []string{"n1", "n2"}) {
			t.Errorf("%s: notify_active_uname %v, want n1 n2", what, got)
		}
	}
	for n, c := range preStart {
		check("pre-start on "+n, c)
	}
	for n, c := range postStart {
		check("post-start on "+n, c)
	}
	// On n3 the start comes before its post-notification.
	var n3 []string
	for _, c := range envOf("n3") {
		if c.action == "start" || c.action == "notify" && c.notifyVar("start_uname") == "n3" {
			n3 = append(n3, c.action+"/"+c.notifyVar("type"))
		}
	}
	if !slices.Equal(n3, []string{"start/", "notify/post"}) {
		t.Errorf("on n3: %v, want the start then its post-notification", n3)
	}

	// Notifications leave no trace in the operation history.
	out := mustCLI(t, l, "n1", "config", "export")
	if !strings.Contains(out, `operation="promote"`) || strings.Contains(out, `operation="notify"`) {
		t.Errorf("the CIB should record the promotion and no notification:\n%s", out)
	}
	t.Logf("promoted %s on %s; started %s on n3; %d calls on %s", promoted, primary, started, len(envOf(primary)), primary)
}

// notifyCIB: Stateful clone, notify=true, banned from n3; each node's
// agent dumps its environment to ENVDIR/env-NODE.
var notifyCIB = `<cib epoch="1" num_updates="0" admin_epoch="0"><configuration><crm_config>
<cluster_property_set id="cib-bootstrap-options"><nvpair id="p1" name="stonith-enabled" value="false"/></cluster_property_set>
</crm_config><nodes/><resources>
<clone id="st-clone"><meta_attributes id="st-clone-meta"><nvpair id="st-prom" name="promotable" value="true"/><nvpair id="st-notify" name="notify" value="true"/></meta_attributes>
<primitive id="st" class="ocf" provider="pacemaker" type="Stateful">` + envfileSets() + `<operations>
<op id="st-mon-p" name="monitor" interval="1s" role="Promoted" timeout="10s"/><op id="st-mon-u" name="monitor" interval="2s" role="Unpromoted" timeout="10s"/></operations></primitive></clone>
</resources><constraints><rsc_location id="ban-n3" rsc="st-clone" node="n3" score="-INFINITY"/></constraints></configuration><status/></cib>`

func envfileSets() string {
	var b strings.Builder
	for _, n := range []string{"n1", "n2", "n3"} {
		fmt.Fprintf(&b, `<instance_attributes id="st-ia-%[1]s"><rule id="st-r-%[1]s" score="0"><expression id="st-e-%[1]s" attribute="#uname" operation="eq" value="%[1]s"/></rule><nvpair id="st-env-%[1]s" name="envfile" value="ENVDIR/env-%[1]s"/></instance_attributes>`, n)
	}
	return b.String()
}
