package pe

import (
	"strings"
	"testing"
	"time"
)

const remoteConn = `<primitive id="remote1" class="ocf" provider="pacemaker" type="remote"/>`

// A resource preferring a remote node starts there once the connection
// is up, after the connection's start; the connection itself stays on
// cluster nodes.
func TestRemoteNodeStartsBehindConnection(t *testing.T) {
	c := cibXML(t, "", remoteConn+prim("rsc1", ""),
		`<rsc_location id="l1" rsc="rsc1" node="remote1" score="100"/>`, "", "")
	res, err := Schedule(c, time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"  * Start      remote1     ( node1 )",
		"  * Start      rsc1        ( remote1 )",
	}
	if got := res.Summary(); words(got) != words(want) {
		t.Fatalf("summary:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	var connStart, rscStart *Action
	for _, a := range res.Actions {
		switch {
		case a.Resource == "remote1" && a.Task == "start":
			connStart = a
		case a.Resource == "rsc1" && a.Task == "start":
			rscStart = a
		}
	}
	ordered := false
	for _, e := range res.Edges {
		if e.First == connStart.ID && e.Then == rscStart.ID {
			ordered = true
		}
	}
	if !ordered {
		t.Fatal("rsc1's start is not ordered after the connection's")
	}
	if s := res.ClusterStatus(c); !strings.Contains(s, "RemoteOFFLINE: [ remote1 ]") {
		t.Fatalf("current status:\n%s", s)
	}
	if s := res.RevisedStatus(c); !strings.Contains(s, "RemoteOnline: [ remote1 ]") {
		t.Fatalf("revised status:\n%s", s)
	}
}

// Checked against crm_simulate 2.1.5 (PE_DUMP_DIR).
// A guest node exists through its container's remote-node meta-attribute:
// the container starts, then the implicit connection beside it, then
// what runs on the guest.
func TestGuestNodeFollowsContainer(t *testing.T) {
	vm := `<primitive id="vm1" class="ocf" provider="heartbeat" type="VirtualDomain"><meta_attributes id="vm1-m"><nvpair id="vm1-rn" name="remote-node" value="guest1"/></meta_attributes></primitive>`
	c := cibXML(t, "", vm+prim("rsc1", ""),
		`<rsc_location id="l1" rsc="rsc1" node="guest1" score="100"/><rsc_location id="l2" rsc="vm1" node="node2" score="50"/>`, "", "")
	res, err := Schedule(c, time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"  * Start      vm1        (  node2 )",
		"  * Start      rsc1       ( guest1 )",
		"  * Start      guest1     (  node2 )",
	}
	if got := res.Summary(); words(got) != words(want) {
		t.Fatalf("summary:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if s := res.ClusterStatus(c); strings.Contains(s, "guest1\t(") {
		t.Fatalf("the implicit connection is listed:\n%s", s)
	}
	if s := res.RevisedStatus(c); !strings.Contains(s, "GuestOnline: [ guest1 ]") {
		t.Fatalf("revised status:\n%s", s)
	}
}

// words compares summaries as the conformance test does: white space
// normalised.
func words(lines []string) string {
	return strings.Join(strings.Fields(strings.Join(lines, "\n")), " ")
}
