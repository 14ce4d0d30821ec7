package pe

import (
	"strings"
	"testing"
	"time"

	"github.com/tachy-ha/tachy/cib"
)

const testBundle = `<bundle id="web">
<docker image="img:1" replicas="2"/>
<network ip-range-start="10.0.0.5" control-port="3121"><port-mapping id="web-port" port="80"/></network>
<primitive id="httpd" class="ocf" provider="heartbeat" type="apache"/>
</bundle>`

// Each replica of a new bundle starts its IP, its container, its
// connection and then its inner instance on the replica's guest node;
// the two containers go to different nodes.
func TestBundleStartsReplicas(t *testing.T) {
	c := cibXML(t, "", testBundle, "", "", "")
	res, err := Schedule(c, time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"* Start web-ip-10.0.0.5 ( node1 )",
		"* Start web-docker-0 ( node1 )",
		"* Start web-0 ( node1 )",
		"* Start httpd:0 ( web-0 )",
		"* Start web-ip-10.0.0.6 ( node2 )",
		"* Start web-docker-1 ( node2 )",
		"* Start web-1 ( node2 )",
		"* Start httpd:1 ( web-1 )",
	}
	if got := res.Summary(); words(got) != words(want) {
		t.Fatalf("summary:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// IP before container before connection before the inner instance.
	chain := []string{"web-ip-10.0.0.5", "web-docker-0", "web-0", "httpd:0"}
	for i := 1; i < len(chain); i++ {
		if !orderedStarts(res, chain[i-1], chain[i]) {
			t.Errorf("no ordering %s start -> %s start", chain[i-1], chain[i])
		}
	}
	status := res.ClusterStatus(c)
	for _, line := range []string{
		"* Container bundle set: web [img:1]:",
		"* web-0 (10.0.0.5)\t(ocf:heartbeat:apache):\t Stopped",
	} {
		if !strings.Contains(status, line) {
			t.Errorf("status lacks %q:\n%s", line, status)
		}
	}
}

func orderedStarts(res *Result, first, then string) bool {
	ids := map[string]int{}
	for _, a := range res.Actions {
		if a.Task == "start" && a.Interval == 0 {
			ids[a.Resource] = a.ID
		}
	}
	for _, e := range res.Edges {
		if e.First == ids[first] && e.Then == ids[then] {
			return true
		}
	}
	return false
}

// The container's parameters are create_container's: run options built
// from the network, ports and the implicit authkey and log mounts.
func TestBundleContainerParams(t *testing.T) {
	c := cibXML(t, "", testBundle, "", "", "")
	b := c.Configuration.Resources[0].(*cib.Bundle)
	set := containerParams(b, &replica{ipaddr: "10.0.0.6"}, 1, 2, true)
	got := map[string]string{}
	for _, p := range set.Pairs {
		got[p.Name] = p.Value
	}
	wantOpts := " --restart=no -h web-1 -e PCMK_stderr=1 -e PCMK_remote_port=3121" +
		" -v /etc/pacemaker/authkey:/etc/pacemaker/authkey -v /var/log/pacemaker/bundles/web-1:/var/log" +
		" -p 10.0.0.6:80:80 -p 10.0.0.6:3121:3121  --add-host=web-0:10.0.0.5 --add-host=web-1:10.0.0.6"
	if got["run_opts"] != wantOpts {
		t.Errorf("run_opts %q\nwant     %q", got["run_opts"], wantOpts)
	}
	if got["mount_points"] != "/var/log/pacemaker/bundles/web-1" || got["run_cmd"] != "/usr/sbin/pacemaker-remoted" || got["image"] != "img:1" {
		t.Errorf("params %v", got)
	}
}
