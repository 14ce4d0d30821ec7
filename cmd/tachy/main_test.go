package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The command line as an operator meets it: bad input is refused with a
// message that says what to do, and exits non-zero.
func TestCLI(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "tachy")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	dir := t.TempDir()
	example, err := exec.Command(bin, "config", "example").Output()
	if err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "good.conf")
	os.WriteFile(good, example, 0o600)
	bad := filepath.Join(dir, "bad.conf")
	os.WriteFile(bad, []byte(strings.Replace(string(example), "miss_count = 4", "miss_count = 1", 1)), 0o600)

	for _, tc := range []struct {
		args   []string
		ok     bool
		output string
	}{
		{[]string{"version"}, true, "tachy "},
		{[]string{"config", "check", good}, true, "ok (3 nodes, 2 links)"},
		{[]string{"config", "check", bad}, false, "heartbeat.miss_count: 1 is below the minimum; use an integer from 2 to 1000"},
		{[]string{"config", "check", filepath.Join(dir, "missing.conf")}, false, "missing.conf"},
		{[]string{"nosuch"}, false, "unexpected argument nosuch"},
		// Only the named command is built, but a typo still sees them all.
		{[]string{"simulat"}, false, `did you mean "simulate"`},
		{[]string{"--help"}, true, "bench pe"},
		{[]string{"simulate", "--help"}, true, "--xml=STRING"},
		{[]string{"--log-level", "warn", "version"}, true, "tachy "},
		{[]string{"status", "--socket", filepath.Join(dir, "none.sock")}, false, "start it with `tachy daemon --config FILE`"},
		{[]string{"lab", "up", "--nodes", "99", "--lab-dir", filepath.Join(dir, "lab")}, false, "the lab has 1 to 16 nodes"},
		{[]string{"lab", "up", "--receiver", "dpdk", "--lab-dir", filepath.Join(dir, "lab")}, false, "--receiver"},
		{[]string{"--log-level", "loud", "version"}, false, "--log-level"},
		// Expected output as crm_simulate 2.1.5 prints it for this CIB.
		{[]string{"simulate", "-x", "testdata/two-nodes-prefer-node2.xml"}, true, "Current cluster status:\n  * Node List:\n    * Online: [ node1 node2 ]\n\n  * Full List of Resources:\n    * rsc1\t(ocf:heartbeat:Dummy):\t Stopped\n\nTransition Summary:\n  * Start      rsc1    ( node2 )\n"},
		{[]string{"simulate", "-x", "testdata/two-nodes-prefer-node2.xml"}, true, "Revised Cluster Status:\n  * Node List:\n    * Online: [ node1 node2 ]\n\n  * Full List of Resources:\n    * rsc1\t(ocf:heartbeat:Dummy):\t Started node2\n"},
		// Probes first, then the start (crm_simulate lists node2's probe
		// before node1's; the order within a pass is not guarded).
		{[]string{"simulate", "-x", "testdata/two-nodes-prefer-node2.xml"}, true, "Transition Summary:\n  * Start      rsc1    ( node2 )\n\nExecuting Cluster Transition:\n  * Resource action: rsc1            monitor on node1\n  * Resource action: rsc1            monitor on node2\n  * Resource action: rsc1            start on node2\n"},
		{[]string{"simulate", "-x", "testdata/two-nodes-prefer-node2.xml", "--json"}, true, `"key": "rsc1_start_0"`},
		// Live migration: A (allow-migrate) moves from node1 to node2.
		{[]string{"simulate", "-x", "testdata/migrate-a-to-node2.xml"}, true, "  * Resource action: A               migrate_from on node2\n  * Resource action: A               stop on node1\n  * Pseudo action:   A_start_0\n"},
		{[]string{"simulate", "-x", "testdata/migrate-a-to-node2.xml", "--json"}, true, `"key": "A_migrate_to_0",
      "resource": "A",
      "task": "migrate_to",
      "node": "node1",
      "runnable": true,
      "meta": {
        "migrate_source": "node1",
        "migrate_target": "node2",
        "record-pending": "true"
      }`},
		{[]string{"simulate", "-x", "testdata/two-nodes-prefer-node2.xml", "--node-fail", "node2"}, true, "Performing Requested Modifications:\n  * Failing node node2\n\nTransition Summary:\n  * Start      rsc1    ( node1 )\n"},
		{[]string{"simulate", "-x", "testdata/two-nodes-prefer-node2.xml", "-F", "node9"}, false, "its cluster nodes are: node1 node2"},
		{[]string{"simulate", "-x", good}, false, "malformed XML"},
		{[]string{"simulate", "-x", "testdata/two-nodes-prefer-node2.xml", "--now", "yesterday"}, false, "use RFC 3339"},
		// The resource commands check what they can before asking the
		// daemon: the arguments, the agent and its parameters.
		{[]string{"resource", "create", "web", "ocf:heartbeat:Nope", "--socket", filepath.Join(dir, "none.sock")}, false, "agent ocf:heartbeat:Nope is not installed on this node"},
		{[]string{"resource", "create", "web", "heartbeat:Dummy:x:y", "--socket", filepath.Join(dir, "none.sock")}, false, "want class:provider:type or class:type"},
		{[]string{"resource", "create", "web", "ocf:heartbeat:Dummy", "op", "--socket", filepath.Join(dir, "none.sock")}, false, "`op` needs an operation name"},
		{[]string{"resource", "create", "web", "--socket", filepath.Join(dir, "none.sock")}, false, "write `tachy resource create NAME AGENT"},
		{[]string{"resource", "list", "--socket", filepath.Join(dir, "none.sock")}, false, "start it with `tachy daemon --config FILE`"},
		{[]string{"constraint", "colocation", "add", "web", "--socket", filepath.Join(dir, "none.sock")}, false, "write `tachy constraint colocation add RSC with WITH [SCORE]`"},
		{[]string{"constraint", "order", "add", "a", "b", "c", "--socket", filepath.Join(dir, "none.sock")}, false, "write `tachy constraint order add FIRST then THEN`"},
		{[]string{"node", "--help"}, true, "maintenance"},
	} {
		out, err := exec.Command(bin, tc.args...).CombinedOutput()
		if (err == nil) != tc.ok || !strings.Contains(string(out), tc.output) {
			t.Errorf("tachy %s: err %v, output %q; want ok=%v and %q", strings.Join(tc.args, " "), err, out, tc.ok, tc.output)
		}
	}
	// The Pacemaker tools agents call are this binary under their names.
	shims := t.TempDir()
	for _, tool := range []string{"crm_node", "crm_attribute"} {
		if err := os.Symlink(bin, filepath.Join(shims, tool)); err != nil {
			t.Fatal(err)
		}
	}
	node := exec.Command(filepath.Join(shims, "crm_node"), "-n")
	node.Env = append(os.Environ(), "TACHY_NODE=n7")
	if out, err := node.CombinedOutput(); err != nil || string(out) != "n7\n" {
		t.Errorf("crm_node -n: %v %q", err, out)
	}
	if out, err := exec.Command(filepath.Join(shims, "crm_attribute"), "--frobnicate").CombinedOutput(); err == nil || !strings.Contains(string(out), "--frobnicate is not supported") {
		t.Errorf("crm_attribute with a bad option: %v %q", err, out)
	}
	attr := exec.Command(filepath.Join(shims, "crm_attribute"), "--promotion", "-v", "10")
	attr.Env = append(os.Environ(), "TACHY_NODE=n1", "OCF_RESOURCE_INSTANCE=st:0", "TACHY_SOCKET="+filepath.Join(dir, "none.sock"))
	if out, err := attr.CombinedOutput(); err == nil || !strings.Contains(string(out), "no tachy daemon answers") {
		t.Errorf("crm_attribute without a daemon: %v %q", err, out)
	}
	// keygen refuses to overwrite a key.
	key := filepath.Join(dir, "cluster.key")
	if out, err := exec.Command(bin, "keygen", key).CombinedOutput(); err != nil {
		t.Fatalf("keygen: %v %s", err, out)
	}
	if fi, err := os.Stat(key); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file %v, %v; want mode 0600", fi, err)
	}
	if out, err := exec.Command(bin, "keygen", key).CombinedOutput(); err == nil {
		t.Fatalf("keygen over an existing key succeeded: %s", out)
	}
}
