package lab

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tachy-ha/tachy/config"
)

func TestParsePartition(t *testing.T) {
	nodes := []string{"n1", "n2", "n3", "n4"}
	for _, tc := range []struct {
		spec string
		want [][]string
		err  string // a part of the error message
	}{
		{spec: "n1,n2/n3", want: [][]string{{"n1", "n2"}, {"n3"}}},
		{spec: "n1/n2/n3/n4", want: [][]string{{"n1"}, {"n2"}, {"n3"}, {"n4"}}},
		{spec: " n3 , n1 / n2 ", want: [][]string{{"n3", "n1"}, {"n2"}}},
		{spec: "n4/n1,n2,n3", want: [][]string{{"n4"}, {"n1", "n2", "n3"}}},
		{spec: "", err: "empty partition; give groups of nodes separated by /, nodes by commas, e.g. n1,n2/n3"},
		{spec: "n1,n2", err: "has one group; a partition needs two or more"},
		{spec: "n1", err: "has one group"},
		{spec: "n1,n5/n2", err: `unknown node "n5"; the lab's nodes are n1 n2 n3 n4`},
		{spec: "n1/client", err: `unknown node "client"`},
		{spec: "N1/n2", err: `unknown node "N1"`},
		{spec: "n1,n1/n2", err: "node n1 appears twice in group 1"},
		{spec: "n1,n2/n3,n1", err: "node n1 is in groups 1 and 2"},
		{spec: "n1//n2", err: "group 2 is empty"},
		{spec: "n1/n2/", err: "group 3 is empty"},
		{spec: "/n1/n2", err: "group 1 is empty"},
		{spec: "n1,/n2", err: `empty node name in group 1 ("n1,")`},
		{spec: "n1,,n3/n2", err: "empty node name in group 1"},
	} {
		got, err := ParsePartition(tc.spec, nodes)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParsePartition(%q) = %v, %v; want an error containing %q", tc.spec, got, err, tc.err)
			}
			if err != nil && tc.spec != "" && !strings.Contains(err.Error(), `"`+tc.spec+`"`) {
				t.Errorf("ParsePartition(%q): error %q does not quote the spec", tc.spec, err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParsePartition(%q) = %v, %v; want %v", tc.spec, got, err, tc.want)
		}
	}
}

func TestFullPartition(t *testing.T) {
	got := fullPartition([][]string{{"n3"}, {"n1"}}, []string{"n1", "n2", "n3", "n4"})
	want := [][]string{{"n3"}, {"n1"}, {"n2"}, {"n4"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("fullPartition = %v, want %v", got, want)
	}
}

func TestPartitionRuleset(t *testing.T) {
	got := partitionRuleset([][]string{{"n1", "n2"}, {"n3"}})
	for _, want := range []string{
		"table bridge tachy_lab {}\ndelete table bridge tachy_lab\ntable bridge tachy_lab {\n",
		"type filter hook forward priority filter; policy accept;",
		`iifname { "tn1r0", "tn1r1", "tn1sv", "tn2r0", "tn2r1", "tn2sv" } oifname { "tn3r0", "tn3r1", "tn3sv" } counter drop comment "n1,n2 -x- n3"`,
		`iifname { "tn3r0", "tn3r1", "tn3sv" } oifname { "tn1r0", "tn1r1", "tn1sv", "tn2r0", "tn2r1", "tn2sv" } counter drop comment "n3 -x- n1,n2"`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("ruleset lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "tclsv") {
		t.Errorf("the client's port is in the ruleset:\n%s", got)
	}
	if n := strings.Count(got, " drop "); n != 2 {
		t.Errorf("%d drop rules for two groups, want 2:\n%s", n, got)
	}
}

func TestNaming(t *testing.T) {
	l := &Lab{dir: "/run/tachy-lab", st: state{Nodes: 12}}
	for _, tc := range []struct{ got, want string }{
		{l.Namespace("n12"), "tachy-n12"},
		{l.Namespace("client"), "tachy-client"},
		{l.Namespace("n13"), ""},
		{l.Namespace("n0"), ""},
		{l.Namespace("n01"), ""},
		{l.Namespace("n+1"), ""},
		{l.Socket("n3"), "/run/tachy-lab/n3/tachy.sock"},
		{l.Socket("client"), ""},
		{l.ConfigPath("n3"), "/run/tachy-lab/n3/tachy.conf"},
		{l.LogPath("n3"), "/run/tachy-lab/n3/daemon.log"},
		{l.KeyPath(), "/run/tachy-lab/cluster.key"},
		{l.HostInterface("n10", Ring0), "tn10r0"},
		{l.HostInterface("n10", Ring1), "tn10r1"},
		{l.HostInterface("n10", Service), "tn10sv"},
		{l.HostInterface("client", Service), "tclsv"},
		{l.HostInterface("client", Ring0), ""},
		{l.HostInterface("n1", 3), ""},
		{l.Address("n10", Ring0).String(), "10.77.0.10"},
		{l.Address("n10", Ring1).String(), "10.77.1.10"},
		{l.Address("n10", Service).String(), "10.77.2.10"},
		{l.Address("client", Service).String(), "10.77.2.254"},
		{l.Address6("n10").String(), "fd77:0:0:2::a"},
		{l.Address6("client").String(), "fd77:0:0:2::fe"},
		{mac(10, Ring1, false), "02:77:01:00:00:0a"},
		{mac(10, Ring1, true), "02:77:01:80:00:0a"},
		{mac(0, Service, false), "02:77:02:00:00:fe"},
		{bridgeMAC(Service), "02:77:02:ff:00:00"},
		{NodeInterface(Service), "svc"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
	if a := l.Address("client", Ring0); a.IsValid() {
		t.Errorf("the client has a ring 0 address %s", a)
	}
	if !reflect.DeepEqual(l.Nodes()[9:], []string{"n10", "n11", "n12"}) {
		t.Errorf("Nodes() = %v", l.Nodes())
	}
	for name, want := range map[string]bool{"tachy-n1": true, "tachy-n16": true, "tachy-client": true, "tachy-nx": false, "tachy-r0": false, "other": false} {
		if isLabNamespace(name) != want {
			t.Errorf("isLabNamespace(%q) = %v", name, !want)
		}
	}
	for name, want := range map[string]bool{"tachy-r0": true, "tachy-r1": true, "tachy-svc": true, "tn1r0": true, "tn16sv": true, "tclsv": true, "tnxr0": false, "tn1r2": false, "eth0": false, "tachy-r2": false} {
		if isLabLink(name) != want {
			t.Errorf("isLabLink(%q) = %v", name, !want)
		}
	}
}

// The file Up writes for each node is one the config package accepts, and
// says what the lab means.
func TestConfigParses(t *testing.T) {
	dir := "/run/tachy-lab"
	b, err := renderConfig(dir, 2, 3, 2*time.Millisecond, 7, "xdp", 4*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	c, err := config.Parse("tachy.conf", b)
	if err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	if c.Cluster.Name != "lab" || c.Cluster.ID != 7707 || c.Cluster.KeyFile != "/run/tachy-lab/cluster.key" {
		t.Errorf("cluster: %+v", c.Cluster)
	}
	if c.Local.Node != "n2" || c.Local.Socket != "/run/tachy-lab/n2/tachy.sock" || c.Local.StateDir != "/run/tachy-lab/n2/state" {
		t.Errorf("local: %+v", c.Local)
	}
	if c.Heartbeat.Interval != 2*time.Millisecond || c.Heartbeat.MissCount != 7 || c.Heartbeat.Receiver != "xdp" || c.Heartbeat.GrantWindow != 4*time.Millisecond {
		t.Errorf("heartbeat: %+v", c.Heartbeat)
	}
	if len(c.Nodes) != 3 {
		t.Fatalf("%d nodes", len(c.Nodes))
	}
	for i, n := range c.Nodes {
		want := []netip.Addr{netip.AddrFrom4([4]byte{10, 77, 0, byte(i + 1)}), netip.AddrFrom4([4]byte{10, 77, 1, byte(i + 1)})}
		if n.Name != nodeName(i+1) || n.ID != uint32(i+1) || !reflect.DeepEqual(n.Addresses, want) {
			t.Errorf("node %d: %+v", i, n)
		}
	}
	// Paths with characters TOML must escape survive.
	b, err = renderConfig(`/tmp/a "b" \c`, 1, 1, time.Millisecond, 5, "auto", 0)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := config.Parse("tachy.conf", b); err != nil || c.Local.Socket != `/tmp/a "b" \c/n1/tachy.sock` {
		t.Fatalf("%v %+v\n%s", err, c, b)
	}
}
