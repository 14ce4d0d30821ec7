package lab_test

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tachy-ha/tachy/lab"
)

// The pcs-like command line against a namespace-lab cluster running the
// real ocf:heartbeat:Dummy: resources and a group created with `tachy
// resource create` start; ban and move move them; standby empties a node;
// disable/enable, restart and cleanup work; delete stops a resource; and
// every kind of bad input is refused with a message that says what to
// fix, leaving the configuration as it was.
func TestClusterCLI(t *testing.T) {
	needLab(t)
	if _, err := os.Stat("/usr/lib/ocf/resource.d/heartbeat/Dummy"); err != nil {
		t.Skip("resource-agents is not installed (ocf:heartbeat:Dummy)")
	}
	l, _ := startCluster(t, "xdp", 3)
	nodes := l.Nodes()
	waitDC(t, l, nodes, 20*time.Second)
	mustCLI(t, l, "n1", "property", "set", "stonith-enabled=false")
	// The DC adds every member to the configuration's nodes.
	deadline := time.Now().Add(20 * time.Second)
	for {
		var list []struct{ Name string }
		out := mustCLI(t, l, "n2", "node", "list", "--json")
		if err := json.Unmarshal([]byte(out), &list); err != nil {
			t.Fatalf("node list --json: %v\n%s", err, out)
		}
		if len(list) == len(nodes) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the configuration does not list every node:\n%s", out)
		}
		time.Sleep(100 * time.Millisecond)
	}

	anywhere := func(string) bool { return true }
	mustCLI(t, l, "n1", "resource", "create", "web", "ocf:heartbeat:Dummy", "op", "monitor", "interval=1s")
	mustCLI(t, l, "n2", "resource", "create", "ip", "ocf:heartbeat:Dummy", "--group", "g")
	mustCLI(t, l, "n3", "resource", "create", "app", "ocf:heartbeat:Dummy", "--group", "g")
	web := waitPlaced(t, l, "web", anywhere, "not started")
	gNode := waitPlaced(t, l, "ip", anywhere, "not started")
	waitPlaced(t, l, "app", func(n string) bool { return n == gNode }, "not with ip in group g")
	waitCLI(t, l, func(export string) bool {
		return strings.Contains(export, `<op id="web-monitor-interval-1s" name="monitor" interval="1s"`) &&
			strings.Contains(export, `<op id="ip-monitor-interval-10s" name="monitor" interval="10s" timeout="20s"`) && // Dummy's advertised monitor
			strings.Contains(export, `<group id="g">`)
	}, "the created resources are not in the export as pcs names them", "config", "export")
	waitList(t, l, "web", web)

	// Ban it from its node: it moves; move it to the third: it goes there.
	mustCLI(t, l, "n2", "resource", "ban", "web", web)
	banned := web
	web = waitPlaced(t, l, "web", func(n string) bool { return n != banned }, "not moved off the node it was banned from")
	var third string
	for _, n := range nodes {
		if n != banned && n != web {
			third = n
		}
	}
	mustCLI(t, l, "n3", "resource", "move", "web", third)
	web = waitPlaced(t, l, "web", func(n string) bool { return n == third }, "not moved to "+third)
	waitCLI(t, l, func(out string) bool {
		return strings.Contains(out, "Resource: web Disabled on: Node: "+banned+" (score:-INFINITY) (id:cli-ban-web-on-"+banned+")") &&
			strings.Contains(out, "Resource: web Enabled on: Node: "+third+" (score:INFINITY) (id:cli-prefer-web)")
	}, "constraint list does not show the ban and the move", "constraint", "list")
	t.Logf("web banned from %s, then moved to %s", banned, web)
	mustCLI(t, l, "n1", "resource", "clear", "web")
	waitCLI(t, l, func(out string) bool { return !strings.Contains(out, "cli-") }, "clear left constraints", "constraint", "list", "--json")

	// Standby empties a node; unstandby lets it run resources again.
	mustCLI(t, l, "n2", "node", "standby", gNode)
	notThere := func(n string) bool { return n != gNode }
	waitPlaced(t, l, "ip", notThere, "still on the standby node")
	waitPlaced(t, l, "app", notThere, "still on the standby node")
	waitPlaced(t, l, "web", notThere, "still on the standby node")
	waitCLI(t, l, func(out string) bool {
		return strings.Contains(out, gNode+" (id ") && strings.Contains(out, "online, standby")
	},
		"node list does not show the standby", "node", "list")
	t.Logf("standby %s: ip, app and web run elsewhere", gNode)
	mustCLI(t, l, "n2", "node", "unstandby", gNode)
	mustCLI(t, l, "n2", "node", "maintenance", gNode)
	mustCLI(t, l, "n2", "node", "maintenance", gNode, "--off")
	waitCLI(t, l, func(out string) bool {
		return !strings.Contains(out, `name="standby"`) && !strings.Contains(out, `name="maintenance"`)
	},
		"unstandby / maintenance --off left the attribute", "config", "export")

	// Disable stops the group, enable starts it again.
	mustCLI(t, l, "n1", "resource", "disable", "g")
	waitStopped(t, l, "ip")
	waitStopped(t, l, "app")
	mustCLI(t, l, "n1", "resource", "enable", "g")
	gNode = waitPlaced(t, l, "ip", anywhere, "not started again after enable")
	waitPlaced(t, l, "app", func(n string) bool { return n == gNode }, "not with ip after enable")
	// Restart stops and starts; cleanup forgets the history (the DC
	// probes again and finds it running).
	if out := mustCLI(t, l, "n2", "resource", "restart", "web"); !strings.Contains(out, "restarted web") {
		t.Fatalf("restart: %s", out)
	}
	web = waitPlaced(t, l, "web", anywhere, "not started after restart")
	if out := mustCLI(t, l, "n3", "resource", "cleanup", "web"); !strings.Contains(out, "Cleaned up web on") {
		t.Fatalf("cleanup: %s", out)
	}
	waitPlaced(t, l, "web", func(n string) bool { return n == web }, "moved by a cleanup")
	waitList(t, l, "web", web)

	// Concurrent changes from every node: each read-modify-write is
	// conditional on the epoch it read and retried, so none is lost.
	var wg sync.WaitGroup
	errs := make([]error, 6)
	outs := make([]string, 6)
	for i := range errs {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			outs[i], errs[i] = tachyCLI(t, l, nodes[i%len(nodes)], "resource", "create", fmt.Sprintf("c%d", i), "ocf:heartbeat:Dummy", "--disabled")
		}(i)
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("concurrent create c%d: %v %s", i, err, outs[i])
		}
	}
	waitCLI(t, l, func(out string) bool {
		for i := range errs {
			if !strings.Contains(out, fmt.Sprintf(`<primitive id="c%d"`, i)) {
				return false
			}
		}
		return true
	}, "a concurrent create was lost", "config", "export")
	for i := range errs {
		mustCLI(t, l, "n2", "resource", "delete", fmt.Sprintf("c%d", i))
	}

	// Bad input: refused with what to fix; the configuration is unchanged.
	before := configSection(waitCLI(t, l, func(out string) bool { return !strings.Contains(out, `<primitive id="c`) },
		"deleted resources still configured", "config", "export"))
	badXML := t.TempDir() + "/bad.xml"
	os.WriteFile(badXML, []byte(`<cib><configuration><resources><primitive id="x" class="ocf" type="Dummy"/></resources></configuration></cib>`), 0o644)
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"resource", "create", "x", "ocf:heartbeat:Nope"}, "agent ocf:heartbeat:Nope is not installed on this node"},
		{[]string{"resource", "create", "vip", "ocf:heartbeat:IPaddr2"}, `required parameter "ip" of ocf:heartbeat:IPaddr2 is missing`},
		{[]string{"resource", "create", "x", "ocf:heartbeat:Dummy", "colour=red"}, `ocf:heartbeat:Dummy has no parameter "colour"`},
		{[]string{"resource", "create", "web", "ocf:heartbeat:Dummy"}, `id "web" is already used (by a primitive): choose another name`},
		{[]string{"resource", "create", "x", "ocf:heartbeat:Dummy", "op", "monitor", "interval=often"}, "op monitor interval=often: not an interval"},
		{[]string{"resource", "create", "x", "ocf:heartbeat:Dummy", "--group", "web"}, "--group web: web is not a group"},
		{[]string{"resource", "delete", "nope"}, `resource "nope" does not exist: the resources are web, g, ip, app`},
		{[]string{"resource", "move", "web", "n9"}, `unknown node "n9": the cluster's nodes are`},
		{[]string{"constraint", "location", "add", "nope", "n1", "100"}, `resource "nope" does not exist`},
		{[]string{"constraint", "location", "add", "web", "n1", "lots"}, `score "lots": use an integer, INFINITY or -INFINITY`},
		{[]string{"constraint", "colocation", "add", "web", "with", "nope"}, `resource "nope" does not exist`},
		{[]string{"constraint", "order", "add", "nope", "then", "web"}, `resource "nope" does not exist`},
		{[]string{"constraint", "remove", "nope"}, `no constraint "nope"`},
		{[]string{"node", "standby", "n9"}, `unknown node "n9": the cluster's nodes are`},
		{[]string{"config", "import", badXML}, "needs a provider"},
	} {
		out, err := tachyCLI(t, l, "n2", tc.args...)
		if err == nil || !strings.Contains(out, tc.msg) {
			t.Errorf("tachy %s: %v, output %q; want it refused with %q", strings.Join(tc.args, " "), err, out, tc.msg)
		}
	}
	if after := configSection(mustCLI(t, l, "n1", "config", "export")); after != before {
		t.Fatalf("refused commands changed the configuration:\n%s\nwas:\n%s", after, before)
	}

	// Constraints through the CLI: listed, removed with their resource.
	mustCLI(t, l, "n1", "constraint", "colocation", "add", "web", "with", "g", "--id", "web-with-g")
	orderOut := mustCLI(t, l, "n1", "constraint", "order", "add", "g", "then", "web")
	deadline = time.Now().Add(20 * time.Second)
	for {
		w, ip, app := dummyNodes(l, "web"), dummyNodes(l, "ip"), dummyNodes(l, "app")
		if len(w) == 1 && slices.Equal(w, ip) && slices.Equal(w, app) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("web with g: web on %v, ip on %v, app on %v\n%s\n%s", w, ip, app, mustCLI(t, l, "n1", "resource", "list"), mustCLI(t, l, "n1", "config", "export"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	waitCLI(t, l, func(out string) bool {
		return strings.Contains(out, "start g then start web (kind:Mandatory) (id:order-g-web-mandatory)") && strings.Contains(out, "web with g (score:INFINITY) (id:web-with-g)")
	}, "constraint list lacks the order or the colocation (order add said "+orderOut+")", "constraint", "list")
	// Delete stops it and takes its constraints along.
	out := mustCLI(t, l, "n3", "resource", "delete", "web")
	if !strings.Contains(out, "Removing Constraint - web-with-g") || !strings.Contains(out, "Deleting Resource - web") {
		t.Fatalf("delete: %s", out)
	}
	waitStopped(t, l, "web")
	waitCLI(t, l, func(out string) bool { return !strings.Contains(configSection(out), `"web`) }, "web is still configured", "config", "export")
}

// waitCLI runs a read-only command on n1 until its output satisfies ok,
// and returns that output. Reads through the daemon can trail a change
// just committed by a moment (see the report of the cli branch), so a
// check right after a change polls.
func waitCLI(t *testing.T, l *lab.Lab, ok func(string) bool, what string, args ...string) string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		out := mustCLI(t, l, "n1", args...)
		if ok(out) {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: tachy %s:\n%s", what, strings.Join(args, " "), out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitStopped waits until Dummy rsc runs nowhere.
func waitStopped(t *testing.T, l *lab.Lab, rsc string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for len(dummyNodes(l, rsc)) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%s still runs on %v", rsc, dummyNodes(l, rsc))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitList waits until resource list --json shows rsc active on node
// alone (the CIB records the start a moment after the state file appears).
func waitList(t *testing.T, l *lab.Lab, rsc, node string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var list []struct {
			ID       string   `json:"id"`
			ActiveOn []string `json:"active_on"`
		}
		out := mustCLI(t, l, "n1", "resource", "list", "--json")
		if err := json.Unmarshal([]byte(out), &list); err != nil {
			t.Fatalf("resource list --json: %v\n%s", err, out)
		}
		i := slices.IndexFunc(list, func(r struct {
			ID       string   `json:"id"`
			ActiveOn []string `json:"active_on"`
		}) bool {
			return r.ID == rsc
		})
		if i >= 0 && slices.Equal(list[i].ActiveOn, []string{node}) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("resource list does not show %s on %s:\n%s\n%s", rsc, node, out, mustCLI(t, l, "n1", "resource", "list"))
		}
		time.Sleep(100 * time.Millisecond)
	}
}
