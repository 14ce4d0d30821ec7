package lab_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tachy-ha/tachy/controller"
	"github.com/tachy-ha/tachy/lab"
)

// tachyCLI runs the tachy command line against a lab node's daemon.
func tachyCLI(t *testing.T, l *lab.Lab, node string, args ...string) (string, error) {
	t.Helper()
	args = append(args, "--socket", l.Socket(node))
	out, err := exec.Command(tachyBinary(t), args...).CombinedOutput()
	return string(out), err
}

func mustCLI(t *testing.T, l *lab.Lab, node string, args ...string) string {
	t.Helper()
	out, err := tachyCLI(t, l, node, args...)
	if err != nil {
		t.Fatalf("tachy %s on %s: %v\n%s", strings.Join(args, " "), node, err, out)
	}
	return out
}

// waitDC waits until the given live nodes agree on one DC among them, and
// returns it (right after a DC dies its followers still name it until they
// notice and elect another).
func waitDC(t *testing.T, l *lab.Lab, nodes []string, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		dcs := map[string]bool{}
		for _, n := range nodes {
			if st, err := (controller.Client{Socket: l.Socket(n)}).Status(); err == nil && st.CIB != nil && st.CIB.DC != "" {
				dcs[st.CIB.DC] = true
			} else {
				dcs[""] = true
			}
		}
		if len(dcs) == 1 && !dcs[""] {
			for dc := range dcs {
				if slices.Contains(nodes, dc) {
					return dc
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("nodes %v do not agree on a DC after %s: %v", nodes, timeout, dcs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The replicated CIB in the namespace lab: changes made on any node are
// read on every other, a bad import changes nothing, the DC's death elects
// another, a node that was down catches up, and a restart of every node
// keeps the configuration.
func TestClusterCIB(t *testing.T) {
	needLab(t)
	l, _ := startCluster(t, "xdp", 3)
	nodes := l.Nodes()
	dc := waitDC(t, l, nodes, 20*time.Second)

	mustCLI(t, l, "n2", "property", "set", "stonith-enabled=false", "no-quorum-policy=stop")
	if out := mustCLI(t, l, "n3", "property", "list"); !strings.Contains(out, "no-quorum-policy: stop") {
		t.Fatalf("n3 does not read n2's change:\n%s", out)
	}
	cibFile := filepath.Join(t.TempDir(), "cib.xml")
	if err := os.WriteFile(cibFile, []byte(strings.ReplaceAll(labCIB, "\n", "")), 0o644); err != nil {
		t.Fatal(err)
	}
	mustCLI(t, l, "n1", "config", "import", cibFile)
	before := mustCLI(t, l, "n2", "config", "export")
	if !strings.Contains(before, `<primitive id="web"`) {
		t.Fatalf("export lacks the imported resource:\n%s", before)
	}
	// The DC records membership and quorum, and plans with pe.
	for _, n := range nodes {
		if !strings.Contains(before, `uname="`+n+`" in_ccm="true" crmd="online" join="member" expected="member"`) {
			t.Fatalf("the CIB does not record %s as a member:\n%s", n, before)
		}
	}
	if !strings.Contains(before, `have-quorum="1"`) {
		t.Fatalf("the CIB does not record quorum:\n%s", before)
	}
	// ... and runs what pe plans: web's start is in the history.
	eventually(t, 10*time.Second, func() error {
		out := mustCLI(t, l, "n3", "config", "export")
		if strings.Contains(out, `operation_key="web_start_0" operation="start"`) && strings.Contains(out, `rc-code="0"`) {
			return nil
		}
		return fmt.Errorf("the DC did not start web:\n%s", out)
	})
	// A malformed import is refused with the reason; nothing changes.
	bad := filepath.Join(t.TempDir(), "bad.xml")
	os.WriteFile(bad, []byte(`<cib><configuration><resources><primitive id="x" class="ocf" type="Dummy"/></resources></configuration></cib>`), 0o644)
	if out, err := tachyCLI(t, l, "n3", "config", "import", bad); err == nil || !strings.Contains(out, "needs a provider") || !strings.Contains(out, "nothing was changed") {
		t.Fatalf("bad import: %v\n%s", err, out)
	}
	if after := mustCLI(t, l, "n1", "config", "export"); configSection(after) != configSection(before) {
		t.Fatalf("a refused import changed the configuration:\n%s", after)
	}

	// The DC dies: the others elect a new one and take changes.
	if err := l.Kill(dc); err != nil {
		t.Fatal(err)
	}
	var rest []string
	for _, n := range nodes {
		if n != dc {
			rest = append(rest, n)
		}
	}
	start := time.Now()
	newDC := waitDC(t, l, rest, 20*time.Second)
	t.Logf("DC %s killed; %s is DC after %s", dc, newDC, time.Since(start).Round(time.Millisecond))
	mustCLI(t, l, rest[0], "property", "set", "changed-while-down=yes")
	// It comes back and catches up.
	if err := l.Start(dc); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, func() error {
		out, err := tachyCLI(t, l, dc, "property", "list")
		if err == nil && strings.Contains(out, "changed-while-down: yes") {
			return nil
		}
		return fmt.Errorf("%s did not catch up: %v\n%s", dc, err, out)
	})

	// Every node restarts: the configuration is still there (the status
	// moves on: the DC records the restarts).
	want := configSection(mustCLI(t, l, "n1", "config", "export"))
	for _, n := range nodes {
		if err := l.Kill(n); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range nodes {
		if err := l.Start(n); err != nil {
			t.Fatal(err)
		}
	}
	waitDC(t, l, nodes, 20*time.Second)
	for _, n := range nodes {
		if got := configSection(mustCLI(t, l, n, "config", "export")); got != want {
			t.Fatalf("%s after a full restart:\n%s\nwant:\n%s", n, got, want)
		}
	}

	// Without a DC (two of three nodes gone) status still answers, from
	// the local copy, and says so.
	for _, n := range nodes[1:] {
		if err := l.Kill(n); err != nil {
			t.Fatal(err)
		}
	}
	start = time.Now()
	out := mustCLI(t, l, nodes[0], "status")
	if !strings.Contains(out, "No DC: this is the local copy") || !strings.Contains(out, `<primitive id="web"`) && !strings.Contains(out, "web\t(ocf:heartbeat:Dummy)") {
		t.Fatalf("status without a DC:\n%s", out)
	}
	t.Logf("status without a DC answered in %s", time.Since(start).Round(time.Millisecond))
}

func configSection(xml string) string {
	i, j := strings.Index(xml, "<configuration>"), strings.Index(xml, "</configuration>")
	if i < 0 || j < i {
		return xml
	}
	return xml[i:j]
}

const labCIB = `<cib epoch="1" num_updates="0" admin_epoch="0"><configuration><crm_config>
<cluster_property_set id="cib-bootstrap-options"><nvpair id="p1" name="stonith-enabled" value="false"/></cluster_property_set>
</crm_config><nodes><node id="1" uname="n1"/><node id="2" uname="n2"/><node id="3" uname="n3"/></nodes>
<resources><primitive id="web" class="ocf" provider="heartbeat" type="Dummy"/></resources><constraints/></configuration><status/></cib>`

// A node that was not a founding member joins: it gets its certificate
// from a member with the join token (its own key never leaves it), starts
// without bootstrapping, and catches up with the CIB.
func TestClusterJoin(t *testing.T) {
	needLab(t)
	l, _ := startCluster(t, "xdp", 3)
	waitDC(t, l, l.Nodes(), 20*time.Second)
	mustCLI(t, l, "n1", "property", "set", "before-join=yes")
	// n3 becomes a machine that never was in the cluster: no certificate,
	// no CIB state, not a founder.
	if err := l.Kill("n3"); err != nil {
		t.Fatal(err)
	}
	pki := filepath.Join(l.Dir(), "pki")
	for _, f := range []string{"n3.crt", "n3.key"} {
		os.Remove(filepath.Join(pki, f))
	}
	os.WriteFile(filepath.Join(pki, "members"), []byte("n1\nn2\n"), 0o644)
	os.RemoveAll(filepath.Join(filepath.Dir(l.ConfigPath("n3")), "state", "cib"))
	token, err := os.ReadFile(filepath.Join(pki, "join.token"))
	if err != nil {
		t.Fatal(err)
	}
	bin := tachyBinary(t)
	join := func(tok string) (string, error) {
		var out strings.Builder
		err := l.Exec(context.Background(), "n3", []string{bin, "cluster", "join", "--config", l.ConfigPath("n3"),
			"--peer", "10.77.0.1:7947", "--token", tok}, nil, &out, &out)
		return out.String(), err
	}
	if out, err := join("0123"); err == nil || !strings.Contains(out, "join token does not match") {
		t.Fatalf("join with a wrong token: %v\n%s", err, out)
	}
	// The token does not buy the name of a running member: a request
	// for n2's certificate (from a configuration whose PKI directory
	// lacks it) is refused while n2 is up.
	conf, err := os.ReadFile(l.ConfigPath("n3"))
	if err != nil {
		t.Fatal(err)
	}
	impostor := filepath.Join(t.TempDir(), "impostor.conf")
	os.WriteFile(impostor, []byte(strings.Replace(string(conf), "pki_dir = ", "pki_dir = \""+t.TempDir()+"\"\n# was: ", 1)), 0o644)
	var imp strings.Builder
	err = l.Exec(context.Background(), "n3", []string{bin, "cluster", "join", "--config", impostor, "--node", "n2",
		"--peer", "10.77.0.1:7947", "--token", strings.TrimSpace(string(token))}, nil, &imp, &imp)
	if err == nil || !strings.Contains(imp.String(), "node n2 is up in this cluster") {
		t.Fatalf("a join as the running n2: %v\n%s", err, imp.String())
	}
	if out, err := join(strings.TrimSpace(string(token))); err != nil {
		t.Fatalf("join: %v\n%s", err, out)
	}
	if err := l.Start("n3"); err != nil {
		t.Fatal(err)
	}
	mustCLI(t, l, "n2", "property", "set", "after-join=yes")
	eventually(t, 20*time.Second, func() error {
		out, err := tachyCLI(t, l, "n3", "property", "list")
		if err == nil && strings.Contains(out, "before-join: yes") && strings.Contains(out, "after-join: yes") {
			return nil
		}
		return fmt.Errorf("n3 did not catch up after joining: %v\n%s", err, out)
	})
	if st := status(t, l, "n3"); st.CIB == nil || len(st.CIB.Members) != 3 {
		t.Fatalf("n3's view of the CIB's members: %+v", st.CIB)
	}
}
