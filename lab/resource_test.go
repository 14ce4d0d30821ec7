package lab_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tachy-ha/tachy/cib"
	"github.com/tachy-ha/tachy/lab"
)

// Where ocf:heartbeat:Dummy runs: each node's daemon gives its agents a
// state directory of its own (state_dir/rsctmp), and Dummy keeps a state
// file there while started.
func dummyNodes(l *lab.Lab, rsc string) []string {
	var out []string
	for _, n := range l.Nodes() {
		dir := filepath.Join(filepath.Dir(l.ConfigPath(n)), "state", "rsctmp")
		if _, err := os.Stat(filepath.Join(dir, "Dummy-"+rsc+".state")); err == nil {
			out = append(out, n)
		}
	}
	return out
}

// eventually calls check every 20 ms until it returns nil, and fails the
// test with its last error after timeout. check may fail the test itself
// at once (for a state that must never be seen).
func eventually(t *testing.T, timeout time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitPlaced waits until rsc runs on exactly one node that satisfies ok,
// and returns it.
func waitPlaced(t *testing.T, l *lab.Lab, rsc string, ok func(string) bool, what string) string {
	t.Helper()
	var node string
	eventually(t, 20*time.Second, func() error {
		on := dummyNodes(l, rsc)
		if len(on) > 1 {
			t.Fatalf("%s is active on %v at once", rsc, on)
		}
		if len(on) == 1 && ok(on[0]) {
			node = on[0]
			return nil
		}
		return fmt.Errorf("%s: %s; it runs on %v", rsc, what, on)
	})
	return node
}

// Resources in the namespace lab, run by the DC through each node's lrmd
// with the real ocf:heartbeat:Dummy agent: started where pe places them, a
// failed monitor recovered in place, a second failure (migration-threshold
// 2) moves the resource, and a dead node's resources start elsewhere.
func TestClusterRunsResources(t *testing.T) {
	needLab(t)
	if _, err := os.Stat("/usr/lib/ocf/resource.d/heartbeat/Dummy"); err != nil {
		t.Skip("resource-agents is not installed (ocf:heartbeat:Dummy)")
	}
	l, _ := startCluster(t, "xdp", 3)
	waitDC(t, l, l.Nodes(), 20*time.Second)
	cibFile := filepath.Join(t.TempDir(), "cib.xml")
	os.WriteFile(cibFile, []byte(resourceCIB), 0o644)
	mustCLI(t, l, "n1", "config", "import", cibFile)

	anywhere := func(string) bool { return true }
	web := waitPlaced(t, l, "web", func(n string) bool { return n == "n2" }, "not started on n2 (location 100)")
	ipNode := waitPlaced(t, l, "ip", anywhere, "not started")
	if app := waitPlaced(t, l, "app", anywhere, "not started"); app != ipNode {
		t.Fatalf("group members apart: ip on %s, app on %s", ipNode, app)
	}

	// A failed monitor: recovered where it was.
	fail := func(node string) {
		dir := filepath.Join(filepath.Dir(l.ConfigPath(node)), "state", "rsctmp")
		if err := os.Remove(filepath.Join(dir, "Dummy-web.state")); err != nil {
			t.Fatal(err)
		}
	}
	fail(web)
	time.Sleep(1500 * time.Millisecond) // the 1 s monitor notices
	waitPlaced(t, l, "web", func(n string) bool { return n == web }, "not recovered in place after one failure")
	if out := mustCLI(t, l, "n3", "config", "export"); !strings.Contains(out, `name="fail-count-web#monitor_1000" value="1"`) {
		t.Fatalf("no fail count recorded:\n%s", out)
	}
	// The second failure reaches migration-threshold: it moves.
	fail(web)
	moved := waitPlaced(t, l, "web", func(n string) bool { return n != web }, "not moved after reaching migration-threshold")
	t.Logf("web: recovered on %s, then moved to %s", web, moved)

	// Prometheus metrics: each node's operations, the resources where
	// they run, the DC's Raft commits.
	var all strings.Builder
	for _, n := range l.Nodes() {
		var out bytes.Buffer
		url := fmt.Sprintf("http://%s/metrics", netip.AddrPortFrom(l.Address(n, 0), lab.MetricsPort))
		if err := l.Exec(context.Background(), n, []string{"curl", "-sf", url}, nil, &out, &out); err != nil {
			t.Fatalf("metrics of %s: %v\n%s", n, err, out.String())
		}
		all.WriteString(out.String())
	}
	for _, want := range []string{`tachy_operations_total{action="start",result="ok"}`, `tachy_monitor_failures_total{resource="web"}`,
		`tachy_resource_active{resource="web",node="` + moved + `",role="Started"} 1`, `tachy_cib_commit_seconds_count`, `tachy_quorate 1`} {
		if !strings.Contains(all.String(), want) {
			t.Fatalf("metrics lack %s:\n%s", want, all.String())
		}
	}

	// The node running the group dies (stonith is disabled in this
	// configuration, so its loss alone lets the others take over).
	if err := l.Kill(ipNode); err != nil {
		t.Fatal(err)
	}
	// The dead node's agents cannot clean up: forget its state files.
	os.RemoveAll(filepath.Join(filepath.Dir(l.ConfigPath(ipNode)), "state", "rsctmp"))
	newIP := waitPlaced(t, l, "ip", func(n string) bool { return n != ipNode }, "not restarted after its node died")
	waitPlaced(t, l, "app", func(n string) bool { return n == newIP }, "not with ip after its node died")
}

const resourceCIB = `<cib epoch="1" num_updates="0" admin_epoch="0"><configuration><crm_config>
<cluster_property_set id="cib-bootstrap-options"><nvpair id="p1" name="stonith-enabled" value="false"/></cluster_property_set>
</crm_config><nodes/><resources>
<primitive id="web" class="ocf" provider="heartbeat" type="Dummy"><operations><op id="web-mon" name="monitor" interval="1s" timeout="10s"/></operations>
<meta_attributes id="web-meta"><nvpair id="web-mt" name="migration-threshold" value="2"/></meta_attributes></primitive>
<group id="g"><primitive id="ip" class="ocf" provider="heartbeat" type="Dummy"/><primitive id="app" class="ocf" provider="heartbeat" type="Dummy"/></group>
</resources><constraints><rsc_location id="web-n2" rsc="web" node="n2" score="100"/></constraints></configuration><status/></cib>`

// With fencing enabled, a lost node is fenced (the lab device kills what
// is left in its namespace and clears its volatile state) before its
// resources start elsewhere; the CIB records the fencing.
func TestClusterFencesLostNode(t *testing.T) {
	needLab(t)
	if _, err := os.Stat("/usr/lib/ocf/resource.d/heartbeat/Dummy"); err != nil {
		t.Skip("resource-agents is not installed (ocf:heartbeat:Dummy)")
	}
	l, _ := startCluster(t, "xdp", 3)
	waitDC(t, l, l.Nodes(), 20*time.Second)
	cibFile := filepath.Join(t.TempDir(), "cib.xml")
	os.WriteFile(cibFile, []byte(strings.ReplaceAll(fencedCIB, "LABDIR", l.Dir())), 0o644)
	mustCLI(t, l, "n1", "config", "import", cibFile)
	anywhere := func(string) bool { return true }
	victim := waitPlaced(t, l, "ip", anywhere, "not started")
	waitPlaced(t, l, "app", func(n string) bool { return n == victim }, "not with ip")
	var rest []string
	for _, n := range l.Nodes() {
		if n != victim {
			rest = append(rest, n)
		}
	}
	// Only the daemon dies: its agents' state stays, as resources
	// would on a node that is merely cut off. Fencing must clear it
	// before the group may start elsewhere, and remove the addresses its
	// agents added (as an IPaddr2 VIP would be), as a reboot does.
	vip := "10.77.2.200/24"
	if b, err := exec.Command("ip", "-n", l.Namespace(victim), "addr", "add", vip, "dev", "svc").CombinedOutput(); err != nil {
		t.Fatalf("adding a VIP on %s: %v %s", victim, err, b)
	}
	if err := l.Kill(victim); err != nil {
		t.Fatal(err)
	}
	moved := waitPlaced(t, l, "ip", func(n string) bool { return n != victim }, "not recovered after fencing")
	if b, _ := exec.Command("ip", "-n", l.Namespace(victim), "-o", "addr", "show").CombinedOutput(); strings.Contains(string(b), "10.77.2.200/") || !strings.Contains(string(b), l.Address(victim, lab.Service).String()+"/24") {
		t.Fatalf("after fencing, %s should have its lab addresses and not the VIP:\n%s", victim, b)
	}
	waitPlaced(t, l, "app", func(n string) bool { return n == moved }, "not with ip after fencing")
	out := mustCLI(t, l, rest[0], "config", "export")
	if !strings.Contains(out, `uname="`+victim+`" in_ccm="false" crmd="offline" join="down" expected="down"`) {
		t.Fatalf("the CIB does not record %s as fenced:\n%s", victim, out)
	}
	fenced := false
	for _, n := range rest {
		b, _ := os.ReadFile(l.LogPath(n))
		fenced = fenced || strings.Contains(string(b), `msg="node fenced" node=`+n+` peer=`+victim)
	}
	if !fenced {
		t.Fatal("no survivor logged fencing the lost node")
	}
	// The topology's first level (a device that cannot reach the node)
	// failed, the second fenced it after its pcmk_delay_base; the CIB's
	// fencing history, which tachy status shows, has it.
	var st struct {
		Fencing []struct {
			Target, Action, Device string
			OK                     bool
		} `json:"fencing_history"`
	}
	js := mustCLI(t, l, rest[0], "status", "--json")
	if err := json.Unmarshal([]byte(js), &st); err != nil {
		t.Fatalf("status --json: %v\n%s", err, js)
	}
	if len(st.Fencing) != 1 || st.Fencing[0].Target != victim || !st.Fencing[0].OK || st.Fencing[0].Device != "fencer" || st.Fencing[0].Action != "reboot" {
		t.Fatalf("fencing history: %+v, want one reboot of %s by fencer (after broken failed)", st.Fencing, victim)
	}
	if txt := mustCLI(t, l, rest[0], "status"); !strings.Contains(txt, "Fencing History:\n  * reboot of "+victim+" successful: delegate=") {
		t.Fatalf("tachy status lacks the fencing history:\n%s", txt)
	}
	logs := ""
	for _, n := range rest {
		b, _ := os.ReadFile(l.LogPath(n))
		logs += string(b)
	}
	if !strings.Contains(logs, `msg="fencing delay (pcmk_delay_base/max)" node=`) || !strings.Contains(logs, "broken: fence_tachy_lab: ip netns pids nosuch-"+victim) {
		t.Fatalf("the logs do not show level 1 failing and the delay of level 2")
	}
}

const fencedCIB = `<cib epoch="1" num_updates="0" admin_epoch="0"><configuration><crm_config>
<cluster_property_set id="cib-bootstrap-options"><nvpair id="p1" name="stonith-enabled" value="true"/></cluster_property_set>
</crm_config><nodes/><resources>
<primitive id="broken" class="stonith" type="fence_tachy_lab"><instance_attributes id="broken-ia"><nvpair id="broken-dir" name="lab_dir" value="LABDIR"/><nvpair id="broken-ns" name="namespace_prefix" value="nosuch-"/></instance_attributes></primitive>
<primitive id="fencer" class="stonith" type="fence_tachy_lab"><instance_attributes id="fencer-ia"><nvpair id="fencer-dir" name="lab_dir" value="LABDIR"/><nvpair id="fencer-delay" name="pcmk_delay_base" value="300ms"/></instance_attributes></primitive>
<group id="g"><primitive id="ip" class="ocf" provider="heartbeat" type="Dummy"/><primitive id="app" class="ocf" provider="heartbeat" type="Dummy"/></group>
</resources><constraints/>
<fencing-topology><fencing-level id="fl-1" index="1" target-pattern="^n[0-9]+$" devices="broken"/><fencing-level id="fl-2" index="2" target-pattern="^n[0-9]+$" devices="fencer"/></fencing-topology>
</configuration><status/></cib>`

// statefulRoles reads where ocf:pacemaker:Stateful runs and in which role:
// the agent keeps its role in HA_VARRUN (state_dir/run on each node).
func statefulRoles(l *lab.Lab, rsc string) map[string]string {
	out := map[string]string{}
	for _, n := range l.Nodes() {
		b, err := os.ReadFile(filepath.Join(filepath.Dir(l.ConfigPath(n)), "state", "run", "Stateful-"+rsc+".state"))
		if err == nil {
			out[n] = strings.TrimSpace(string(b))
		}
	}
	return out
}

func waitRoles(t *testing.T, l *lab.Lab, ok func(map[string]string) bool, what string) map[string]string {
	t.Helper()
	var roles map[string]string
	eventually(t, 30*time.Second, func() error {
		roles = statefulRoles(l, "st")
		promoted := 0
		for _, r := range roles {
			if r == "Promoted" {
				promoted++
			}
		}
		if promoted > 1 {
			t.Fatalf("two instances promoted at once: %v", roles)
		}
		if ok(roles) {
			return nil
		}
		return fmt.Errorf("%s: roles %v", what, roles)
	})
	return roles
}

// A promotable clone of the real ocf:pacemaker:Stateful agent (which sets
// its promotion score with crm_attribute, answered by tachy's shim): an
// instance on every node, one promoted; when the promoted node is lost it
// is fenced and another instance is promoted.
func TestClusterPromotableClone(t *testing.T) {
	needLab(t)
	if _, err := os.Stat("/usr/lib/ocf/resource.d/pacemaker/Stateful"); err != nil {
		t.Skip("pacemaker-resource-agents is not installed (ocf:pacemaker:Stateful)")
	}
	l, _ := startCluster(t, "xdp", 3)
	waitDC(t, l, l.Nodes(), 20*time.Second)
	cibFile := filepath.Join(t.TempDir(), "cib.xml")
	os.WriteFile(cibFile, []byte(strings.ReplaceAll(promotableCIB, "LABDIR", l.Dir())), 0o644)
	mustCLI(t, l, "n1", "config", "import", cibFile)
	primary := ""
	waitRoles(t, l, func(r map[string]string) bool {
		if len(r) != 3 {
			return false
		}
		for n, role := range r {
			if role == "Promoted" {
				primary = n
			}
		}
		return primary != ""
	}, "not one promoted and two unpromoted instances")
	checkRoleMonitors(t, l, primary)
	// The Promoted monitor catches a promoted instance that fails in
	// place (Stateful's test hook makes its monitor return
	// OCF_FAILED_PROMOTED): the failure is recorded and the clone gets a
	// promoted instance again.
	rcFile := filepath.Join(filepath.Dir(l.ConfigPath(primary)), "state", "run", "Stateful-st.state.rc")
	if err := os.WriteFile(rcFile, []byte("9\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, func() error {
		if out := mustCLI(t, l, primary, "config", "export"); !strings.Contains(out, `name="fail-count-st#monitor_1000"`) {
			return errors.New("no failure of the Promoted monitor recorded")
		}
		return nil
	})
	os.Remove(rcFile)
	waitRoles(t, l, func(r map[string]string) bool {
		promoted := 0
		for _, role := range r {
			if role == "Promoted" {
				promoted++
			}
		}
		return len(r) == 3 && promoted == 1
	}, "no promoted instance again after the promoted one failed")
	primary = ""
	for n, role := range statefulRoles(l, "st") {
		if role == "Promoted" {
			primary = n
		}
	}
	checkRoleMonitors(t, l, primary)
	if err := l.Kill(primary); err != nil {
		t.Fatal(err)
	}
	roles := waitRoles(t, l, func(r map[string]string) bool {
		if _, left := r[primary]; left {
			return false // fencing clears the lost node's state
		}
		for _, role := range r {
			if role == "Promoted" {
				return true
			}
		}
		return false
	}, "no instance promoted after the promoted node was lost")
	t.Logf("promoted on %s; after losing it: %v", primary, roles)
}

// checkRoleMonitors: the history shows each instance running the monitor
// of its role only: the Promoted one (1 s, rc 8) where it is promoted, the
// Unpromoted one (2 s) elsewhere.
func checkRoleMonitors(t *testing.T, l *lab.Lab, promoted string) {
	t.Helper()
	eventually(t, 20*time.Second, func() error {
		c, err := cib.Import(strings.NewReader(mustCLI(t, l, promoted, "config", "export")))
		if err != nil {
			return err
		}
		for _, st := range c.Status.NodeStates {
			if st.LRM == nil || !slices.Contains(l.Nodes(), st.Uname) {
				continue
			}
			for _, lr := range st.LRM.Resources {
				if lr.ID != "st" {
					continue
				}
				// Entries older than the last stop are history only.
				stopped := 0
				for _, op := range lr.Ops {
					if op.Operation == "stop" {
						stopped = max(stopped, op.CallID)
					}
				}
				mons := map[time.Duration]int{}
				for _, op := range lr.Ops {
					if op.Operation == "monitor" && op.Interval > 0 && op.CallID > stopped && !strings.HasSuffix(op.ID, "_last_failure_0") {
						mons[op.Interval] = op.RCCode
					}
				}
				want := map[time.Duration]int{2 * time.Second: 0}
				if st.Uname == promoted {
					want = map[time.Duration]int{time.Second: 8}
				}
				if fmt.Sprint(mons) != fmt.Sprint(want) {
					return fmt.Errorf("%s runs monitors %v (interval: rc), want %v", st.Uname, mons, want)
				}
			}
		}
		return nil
	})
}

const promotableCIB = `<cib epoch="1" num_updates="0" admin_epoch="0"><configuration><crm_config>
<cluster_property_set id="cib-bootstrap-options"><nvpair id="p1" name="stonith-enabled" value="true"/></cluster_property_set>
</crm_config><nodes/><resources>
<primitive id="fencer" class="stonith" type="fence_tachy_lab"><instance_attributes id="fencer-ia"><nvpair id="fencer-dir" name="lab_dir" value="LABDIR"/></instance_attributes></primitive>
<clone id="st-clone"><meta_attributes id="st-clone-meta"><nvpair id="st-prom" name="promotable" value="true"/></meta_attributes>
<primitive id="st" class="ocf" provider="pacemaker" type="Stateful"><operations>
<op id="st-mon-p" name="monitor" interval="1s" role="Promoted" timeout="10s"/><op id="st-mon-u" name="monitor" interval="2s" role="Unpromoted" timeout="10s"/></operations></primitive></clone>
</resources><constraints/></configuration><status/></cib>`

// The failover the cluster issue asks for, everything made through the
// CLI: a fencing device, a promotable ocf:pacemaker:Stateful clone, an
// ocf:heartbeat:Dummy and a group of two placed on the node that holds the
// promoted instance; that node is killed: it is fenced, and all of them
// come back on the others, the promoted instance included, never active
// (or promoted) twice.
func TestClusterCLIFailover(t *testing.T) {
	needLab(t)
	for _, a := range []string{"/usr/lib/ocf/resource.d/pacemaker/Stateful", "/usr/lib/ocf/resource.d/heartbeat/Dummy"} {
		if _, err := os.Stat(a); err != nil {
			t.Skipf("%s is not installed", a)
		}
	}
	l, _ := startCluster(t, "xdp", 3)
	waitDC(t, l, l.Nodes(), 20*time.Second)
	mustCLI(t, l, "n1", "property", "set", "stonith-enabled=true")
	mustCLI(t, l, "n2", "stonith", "create", "fencer", "fence_tachy_lab", "lab_dir="+l.Dir())
	mustCLI(t, l, "n3", "resource", "create", "st", "ocf:pacemaker:Stateful",
		"op", "monitor", "interval=1s", "role=Promoted", "timeout=10s", "op", "monitor", "interval=2s", "role=Unpromoted", "timeout=10s", "--promotable")
	primary := ""
	waitRoles(t, l, func(r map[string]string) bool {
		for n, role := range r {
			if role == "Promoted" {
				primary = n
			}
		}
		return len(r) == 3 && primary != ""
	}, "the promotable clone made with the CLI is not running with one promoted instance")
	mustCLI(t, l, "n1", "resource", "create", "web", "ocf:heartbeat:Dummy")
	mustCLI(t, l, "n1", "resource", "create", "ip", "ocf:heartbeat:Dummy", "--group", "g")
	mustCLI(t, l, "n1", "resource", "create", "app", "ocf:heartbeat:Dummy", "--group", "g")
	mustCLI(t, l, "n2", "constraint", "location", "add", "web", primary, "100")
	mustCLI(t, l, "n2", "constraint", "location", "add", "g", primary, "100")
	on := func(n string) func(string) bool { return func(m string) bool { return m == n } }
	off := func(n string) func(string) bool { return func(m string) bool { return m != n } }
	for _, r := range []string{"web", "ip", "app"} {
		waitPlaced(t, l, r, on(primary), "not started on the promoted node "+primary)
	}
	if err := l.Kill(primary); err != nil {
		t.Fatal(err)
	}
	for _, r := range []string{"web", "ip", "app"} {
		waitPlaced(t, l, r, off(primary), "not back after "+primary+" was killed")
	}
	roles := waitRoles(t, l, func(r map[string]string) bool {
		_, left := r[primary]
		for _, role := range r {
			if role == "Promoted" && !left {
				return true
			}
		}
		return false
	}, "no instance promoted again")
	t.Logf("killed %s; now web on %v, group on %v, roles %v", primary, dummyNodes(l, "web"), dummyNodes(l, "ip"), roles)
}

// A clean stop (SIGTERM) of a node's daemon moves its resources away before
// it exits, and the node is recorded as having left: not fenced, though
// fencing is enabled. It comes back and takes its resources again.
func TestClusterCleanStop(t *testing.T) {
	needLab(t)
	if _, err := os.Stat("/usr/lib/ocf/resource.d/heartbeat/Dummy"); err != nil {
		t.Skip("resource-agents is not installed (ocf:heartbeat:Dummy)")
	}
	l, _ := startCluster(t, "xdp", 3)
	waitDC(t, l, l.Nodes(), 20*time.Second)
	cibFile := filepath.Join(t.TempDir(), "cib.xml")
	os.WriteFile(cibFile, []byte(strings.ReplaceAll(fencedCIB, "LABDIR", l.Dir())), 0o644)
	mustCLI(t, l, "n1", "config", "import", cibFile)
	mustCLI(t, l, "n1", "constraint", "location", "add", "g", "n2", "100")
	on := func(n string) func(string) bool { return func(m string) bool { return m == n } }
	waitPlaced(t, l, "ip", on("n2"), "not on n2")
	waitPlaced(t, l, "app", on("n2"), "not on n2")
	pid, err := l.DaemonPID("n2")
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// The daemon waits for its resources to leave, then exits.
	eventually(t, 30*time.Second, func() error {
		if syscall.Kill(pid, 0) == nil {
			return errors.New("n2's daemon did not exit within 30 s of SIGTERM")
		}
		return nil
	})
	elsewhere := func(m string) bool { return m != "n2" }
	moved := waitPlaced(t, l, "ip", elsewhere, "not moved off the stopped node")
	waitPlaced(t, l, "app", on(moved), "not with ip")
	eventually(t, 10*time.Second, func() error {
		out := mustCLI(t, l, "n1", "config", "export")
		if strings.Contains(out, `uname="n2" in_ccm="false" crmd="offline" join="down" expected="down"`) {
			return nil
		}
		return fmt.Errorf("n2 is not recorded as having left:\n%s", out)
	})
	for _, n := range []string{"n1", "n3"} {
		if b, _ := os.ReadFile(l.LogPath(n)); strings.Contains(string(b), "node fenced") {
			t.Fatalf("%s fenced a node that stopped cleanly", n)
		}
	}
	// Back: its request to leave is spent, the group returns to it.
	if err := l.Start("n2"); err != nil {
		t.Fatal(err)
	}
	waitPlaced(t, l, "ip", on("n2"), "not back on n2 after it returned")
}

// A daemon that starts erases its node's history, and the DC probes the
// node before planning there: a resource found running where it should
// not (here started behind the cluster's back while n3's daemon was down)
// is stopped, and it ends up active once, where it belongs.
func TestClusterProbesRestartedNode(t *testing.T) {
	needLab(t)
	if _, err := os.Stat("/usr/lib/ocf/resource.d/heartbeat/Dummy"); err != nil {
		t.Skip("resource-agents is not installed (ocf:heartbeat:Dummy)")
	}
	l, _ := startCluster(t, "xdp", 3)
	waitDC(t, l, l.Nodes(), 20*time.Second)
	cibFile := filepath.Join(t.TempDir(), "cib.xml")
	os.WriteFile(cibFile, []byte(resourceCIB), 0o644)
	mustCLI(t, l, "n1", "config", "import", cibFile)
	on := func(n string) func(string) bool { return func(m string) bool { return m == n } }
	waitPlaced(t, l, "web", on("n2"), "not on n2")
	if err := l.Kill("n3"); err != nil {
		t.Fatal(err)
	}
	rogue := filepath.Join(filepath.Dir(l.ConfigPath("n3")), "state", "rsctmp", "Dummy-web.state")
	os.MkdirAll(filepath.Dir(rogue), 0o755)
	if err := os.WriteFile(rogue, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := l.Start("n3"); err != nil {
		t.Fatal(err)
	}
	// The probe finds web on n3: active twice until the DC resolves it.
	eventually(t, 30*time.Second, func() error {
		if _, err := os.Stat(rogue); os.IsNotExist(err) {
			return nil
		}
		return fmt.Errorf("the copy of web on n3 was not found and stopped; the CIB:\n%s", mustCLI(t, l, "n1", "config", "export"))
	})
	web := waitPlaced(t, l, "web", func(string) bool { return true }, "not running once after the probe")
	out := mustCLI(t, l, "n1", "config", "export")
	if !strings.Contains(out, `operation_key="web_monitor_0"`) {
		t.Fatalf("no probe of web in the history:\n%s", out)
	}
	t.Logf("the probe found web on n3; it runs once now, on %s", web)
}

// slowCIB: "slow" takes 2 s per operation (ocf:pacemaker:Dummy's op_sleep),
// keeps its state in STATEFILE-NODE (sets with rules: agents get what rules
// give on their node; Dummy's op_sleep refuses two monitors on one state file) and "after" is ordered after it, so one transition starts slow and then,
// seconds later, after.
const slowCIB = `<cib epoch="1" num_updates="0" admin_epoch="0"><configuration><crm_config>
<cluster_property_set id="cib-bootstrap-options"><nvpair id="p1" name="stonith-enabled" value="false"/></cluster_property_set>
</crm_config><nodes/><resources>
<primitive id="slow" class="ocf" provider="pacemaker" type="Dummy"><instance_attributes id="slow-ia"><nvpair id="slow-sleep" name="op_sleep" value="2"/></instance_attributes>
<instance_attributes id="slow-n1"><rule id="slow-n1-r" score="0"><expression id="slow-n1-e" attribute="#uname" operation="eq" value="n1"/></rule><nvpair id="slow-n1-s" name="state" value="STATEFILE-n1"/></instance_attributes>
<instance_attributes id="slow-n2"><rule id="slow-n2-r" score="0"><expression id="slow-n2-e" attribute="#uname" operation="eq" value="n2"/></rule><nvpair id="slow-n2-s" name="state" value="STATEFILE-n2"/></instance_attributes>
<instance_attributes id="slow-n3"><rule id="slow-n3-r" score="0"><expression id="slow-n3-e" attribute="#uname" operation="eq" value="n3"/></rule><nvpair id="slow-n3-s" name="state" value="STATEFILE-n3"/></instance_attributes></primitive>
<primitive id="after" class="ocf" provider="heartbeat" type="Dummy"/>
</resources><constraints><rsc_order id="slow-then-after" first="slow" then="after" kind="Mandatory"/></constraints></configuration><status/></cib>`

// A change to the configuration while a transition runs aborts it, as
// Pacemaker's: the actions in flight finish, nothing more is launched from
// the old plan, and the DC plans again. Here "after" is disabled while the
// transition that would start it waits for "slow": it must never start.
func TestClusterAbortsTransitionOnChange(t *testing.T) {
	needLab(t)
	for _, a := range []string{"/usr/lib/ocf/resource.d/heartbeat/Dummy", "/usr/lib/ocf/resource.d/pacemaker/Dummy"} {
		if _, err := os.Stat(a); err != nil {
			t.Skip(a + " is not installed")
		}
	}
	l, _ := startCluster(t, "xdp", 3)
	dc := waitDC(t, l, l.Nodes(), 20*time.Second)
	cibFile := filepath.Join(t.TempDir(), "cib.xml")
	stateFile := filepath.Join(t.TempDir(), "slow.state")
	os.WriteFile(cibFile, []byte(strings.ReplaceAll(slowCIB, "STATEFILE", stateFile)), 0o644)
	mustCLI(t, l, "n1", "config", "import", cibFile)
	// Once the transition that starts both has begun (the DC logs it),
	// it probes them (2 s for slow) and starts slow (2 s more) before
	// after: the change lands well inside it.
	eventually(t, 20*time.Second, func() error {
		b, _ := os.ReadFile(l.LogPath(dc))
		if strings.Contains(string(b), `msg="transition started"`) && strings.Contains(string(b), "Start after") {
			return nil
		}
		return fmt.Errorf("the DC %s started no transition that starts after", dc)
	})
	mustCLI(t, l, "n2", "resource", "disable", "after")
	deadline := time.Now().Add(30 * time.Second)
	for {
		if on := dummyNodes(l, "after"); len(on) > 0 {
			t.Fatalf("after was started on %v although it was disabled before the transition reached it", on)
		}
		out := mustCLI(t, l, "n1", "resource", "list", "--json")
		var list []struct {
			ID       string   `json:"id"`
			ActiveOn []string `json:"active_on"`
		}
		if err := json.Unmarshal([]byte(out), &list); err != nil {
			t.Fatalf("resource list --json: %v\n%s", err, out)
		}
		if slices.ContainsFunc(list, func(r struct {
			ID       string   `json:"id"`
			ActiveOn []string `json:"active_on"`
		}) bool {
			return r.ID == "slow" && len(r.ActiveOn) == 1
		}) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("slow did not start: %s", out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if m, _ := filepath.Glob(stateFile + "-n*"); len(m) != 1 {
		t.Fatalf("slow runs but its state files are %v: it did not get the parameter of its node's set", m)
	}
	// Give a transition that was not aborted the time to start after.
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if on := dummyNodes(l, "after"); len(on) > 0 {
			t.Fatalf("after was started on %v although it was disabled", on)
		}
	}
	// A start of after that was quickly undone could slip between two
	// looks at its state file; the operation history keeps it.
	if hist := mustCLI(t, l, "n1", "config", "export"); strings.Contains(hist, `operation_key="after_start_0"`) || strings.Contains(hist, `operation_key="after_stop_0"`) {
		t.Fatalf("after was started (and stopped) although it was disabled:\n%s", hist)
	}
	var out bytes.Buffer
	url := fmt.Sprintf("http://%s/metrics", netip.AddrPortFrom(l.Address(dc, 0), lab.MetricsPort))
	if err := l.Exec(context.Background(), dc, []string{"curl", "-sf", url}, nil, &out, &out); err != nil {
		t.Fatalf("metrics of %s: %v\n%s", dc, err, out.String())
	}
	if !strings.Contains(out.String(), `tachy_transitions_total{outcome="aborted"}`) {
		t.Fatalf("the DC %s aborted no transition; its metrics:\n%s", dc, out.String())
	}
	t.Logf("after stayed stopped; the DC's transition counts: %s", grepLines(out.String(), "tachy_transitions_total{"))
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "; ")
}
