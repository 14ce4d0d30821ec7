package lab_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tachy-ha/tachy/cib"
	"github.com/tachy-ha/tachy/lab"
)

const migrateCIB = `<cib epoch="1" num_updates="0" admin_epoch="0"><configuration><crm_config>
<cluster_property_set id="cib-bootstrap-options"><nvpair id="p1" name="stonith-enabled" value="false"/></cluster_property_set>
</crm_config><nodes/><resources>
<primitive id="mig" class="ocf" provider="heartbeat" type="Dummy"><operations><op id="mig-mon" name="monitor" interval="2s" timeout="10s"/></operations>
<meta_attributes id="mig-meta"><nvpair id="mig-am" name="allow-migrate" value="true"/></meta_attributes></primitive>
</resources><constraints><rsc_location id="mig-n1" rsc="mig" node="n1" score="100"/></constraints></configuration><status/></cib>`

// migHistory is mig's history on each node, from the CIB n1 exports
// (an export can fail while the DC changes: the caller retries).
func migHistory(t *testing.T, l *lab.Lab) (map[string][]*cib.LRMRscOp, error) {
	t.Helper()
	out, err := tachyCLI(t, l, "n1", "config", "export")
	if err != nil {
		return nil, fmt.Errorf("config export: %v: %s", err, out)
	}
	c, err := cib.Import(strings.NewReader(out))
	if err != nil {
		return nil, err
	}
	hist := map[string][]*cib.LRMRscOp{}
	for _, st := range c.Status.NodeStates {
		if st.LRM == nil {
			continue
		}
		for _, lr := range st.LRM.Resources {
			if lr.ID == "mig" {
				hist[st.Uname] = lr.Ops
			}
		}
	}
	return hist, nil
}

func opByID(ops []*cib.LRMRscOp, id string) *cib.LRMRscOp {
	i := slices.IndexFunc(ops, func(o *cib.LRMRscOp) bool { return o.ID == id })
	if i < 0 {
		return nil
	}
	return ops[i]
}

// A resource with allow-migrate=true moved with the CLI migrates live
// (migrate_to on its node, migrate_from on the new one, then the stop on
// the old one), is never active on two nodes, and is not restarted after
// it arrived.
func TestClusterLiveMigration(t *testing.T) {
	needLab(t)
	if _, err := os.Stat("/usr/lib/ocf/resource.d/heartbeat/Dummy"); err != nil {
		t.Skip("resource-agents is not installed (ocf:heartbeat:Dummy)")
	}
	l, _ := startCluster(t, "xdp", 3)
	dc := waitDC(t, l, l.Nodes(), 20*time.Second)
	cibFile := filepath.Join(t.TempDir(), "cib.xml")
	os.WriteFile(cibFile, []byte(migrateCIB), 0o644)
	mustCLI(t, l, "n1", "config", "import", cibFile)
	waitPlaced(t, l, "mig", func(n string) bool { return n == "n1" }, "not started on n1 (location 100)")

	before, err := os.ReadFile(l.LogPath(dc))
	if err != nil {
		t.Fatal(err)
	}
	mustCLI(t, l, "n2", "resource", "move", "mig", "n3")
	waitPlaced(t, l, "mig", func(n string) bool { return n == "n3" }, "not moved to n3")

	var from, stop *cib.LRMRscOp
	eventually(t, 20*time.Second, func() error {
		hist, err := migHistory(t, l)
		if err != nil {
			return err
		}
		from, stop = opByID(hist["n3"], "mig_last_0"), opByID(hist["n1"], "mig_last_0")
		if from == nil || from.OperationKey != "mig_migrate_from_0" || stop == nil || stop.OperationKey != "mig_stop_0" {
			return fmt.Errorf("history: n3 %+v, n1 %+v", from, stop)
		}
		return nil
	})
	if from.RCCode != 0 || from.MigrateSource != "n1" || from.MigrateTarget != "n3" || stop.RCCode != 0 {
		t.Fatalf("migrate_from recorded %+v, stop %+v", from, stop)
	}
	// The DC ran migrate_to on n1 and migrate_from on n3, and no start.
	all, err := os.ReadFile(l.LogPath(dc))
	if err != nil {
		t.Fatal(err)
	}
	log := all[len(before):] // since the move
	for _, want := range []string{"action=mig_migrate_to_0 node=n1", "action=mig_migrate_from_0 node=n3", "Migrate mig ( n1 -> n3 )"} {
		if !strings.Contains(string(log), want) {
			t.Errorf("the DC %s's log lacks %q:\n%s", dc, want, grepLines(string(log), "mig"))
		}
	}
	if strings.Contains(string(log), "action=mig_start_0") {
		t.Errorf("the DC %s started mig instead of migrating it:\n%s", dc, grepLines(string(log), "mig"))
	}
	// Settled where it arrived: monitored there, not restarted (the
	// migrate_from's digest stands for the start's), on one node only.
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if on := dummyNodes(l, "mig"); len(on) != 1 || on[0] != "n3" {
			t.Fatalf("mig active on %v after its migration to n3", on)
		}
	}
	var ops []*cib.LRMRscOp
	eventually(t, 20*time.Second, func() error {
		hist, err := migHistory(t, l)
		ops = hist["n3"]
		return err
	})
	if last := opByID(ops, "mig_last_0"); last == nil || last.OperationKey != "mig_migrate_from_0" {
		t.Fatalf("mig restarted on n3 after its migration: last %+v", last)
	}
	if mon := opByID(ops, "mig_monitor_2000"); mon == nil || mon.RCCode != 0 {
		t.Fatalf("no monitor of mig on n3: %+v", mon)
	}
	// No monitor saw it gone from n1 during the migration (the
	// migrate_to cancelled it there).
	if out := mustCLI(t, l, "n1", "config", "export"); strings.Contains(out, "fail-count-mig") {
		t.Fatalf("a failure of mig was recorded:\n%s", grepLines(out, "fail-count-mig"))
	}
	t.Logf("mig migrated n1 -> n3; DC %s", dc)
}
