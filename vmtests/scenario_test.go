package vmtests

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// The scenarios boot appliance VMs under QEMU (TCG): they run only with
// TACHY_VMTEST=1, as root, in a private network namespace; make vmtest
// does that (scripts/isolated.sh).
func needVMs(t *testing.T) {
	t.Helper()
	if os.Getenv("TACHY_VMTEST") != "1" {
		t.Skip("boots QEMU VMs: run make vmtest (TACHY_VMTEST=1 in a private network namespace)")
	}
	if err := haveQEMU(); err != nil {
		t.Skip(err)
	}
}

// fencingCIB: fencing through the lab's power switches (the hypervisor),
// stonith:fence_tachy_qmp on the host's address.
const fencingCIB = `<cib epoch="1" num_updates="0" admin_epoch="0"><configuration><crm_config>
<cluster_property_set id="cib-bootstrap-options"><nvpair id="p1" name="stonith-enabled" value="true"/></cluster_property_set>
</crm_config><nodes/><resources>
<primitive id="hypervisor" class="stonith" type="fence_tachy_qmp"><instance_attributes id="hv-ia">
<nvpair id="hv-qmp" name="qmp" value="tcp:10.77.0.254:%s"/>
<nvpair id="hv-map" name="pcmk_host_map" value="n1:4401;n2:4402;n3:4403"/></instance_attributes></primitive>
</resources><constraints/></configuration><status/></cib>`

func startLab(t *testing.T, ctx context.Context, o Options) *Lab {
	t.Helper()
	o.Log = t.Logf
	l, err := Start(ctx, t.TempDir(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() || testing.Verbose() {
			for _, v := range l.VMs {
				t.Logf("%s console:\n%s", v.Name, v.Console())
			}
		}
		l.Close()
	})
	return l
}

func mustRun(t *testing.T, ctx context.Context, l *Lab, node, cmd string) string {
	t.Helper()
	out, err := l.Run(ctx, node, cmd)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// importCIB imports the image's CIB on n1. A failed command prints
// "tachy: ..." (the CLI's error, then the console's exit status); other
// lines may be a late reply to an earlier command that timed out (a status
// JSON whose "send_errors" once failed a looser check).
func importCIB(t *testing.T, ctx context.Context, l *Lab) {
	t.Helper()
	out := mustRun(t, ctx, l, "n1", "config import /etc/tachy/cib.xml")
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "tachy:") {
			t.Fatalf("config import: %s", out)
		}
	}
}

// dcOf waits until node reports a DC, and returns it.
func dcOf(t *testing.T, ctx context.Context, l *Lab, node string) string {
	t.Helper()
	var dc string
	if err := Eventually(ctx, func() error {
		st, err := l.Status(ctx, node)
		if err != nil {
			return err
		}
		if st.CIB == nil || st.CIB.DC == "" {
			return fmt.Errorf("%s knows no DC yet", node)
		}
		dc = st.CIB.DC
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return dc
}

// TestSmoke is the CI scenario: three VMs; a node that dies whole (its
// power cut) is fenced by the others through the hypervisor's power
// switch, which powers it on again; it boots and rejoins; the fencing is in
// the cluster's history.
func TestSmoke(t *testing.T) {
	needVMs(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	l := startLab(t, ctx, Options{Nodes: 3, Files: map[string]string{"cib.xml": fencingCIB}})
	dc := dcOf(t, ctx, l, "n1")
	t.Logf("DC: %s", dc)
	importCIB(t, ctx, l)
	if err := Eventually(ctx, func() error {
		st, err := l.Status(ctx, "n1")
		if err != nil {
			return err
		}
		if len(st.Where("hypervisor")) == 0 {
			return fmt.Errorf("the fencing device has not started: %+v", st.Resources)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	victim := "n3"
	if dc == victim {
		victim = "n2"
	}
	v := l.VM(victim)
	backUp := v.Expect("tachy: node " + victim + " ready")
	killed := time.Now()
	v.Kill()
	idx := v.Index - 1
	select {
	case what := <-l.Power[idx].Log:
		t.Logf("%s fenced (%s) through the power switch %.1f s after its power was cut", victim, what, time.Since(killed).Seconds())
	case <-ctx.Done():
		t.Fatalf("%s was never fenced", victim)
	}
	if _, err := backUp(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s booted again and ready %.1f s after the power cut", victim, time.Since(killed).Seconds())
	survivor := "n1"
	if survivor == victim {
		survivor = "n2"
	}
	if err := Eventually(ctx, func() error {
		st, err := l.Status(ctx, survivor)
		if err != nil {
			return err
		}
		for _, f := range st.Fencing {
			if f.Target == victim && f.OK && f.Device == "hypervisor" {
				return nil
			}
		}
		return fmt.Errorf("no fencing of %s in the history: %+v", victim, st.Fencing)
	}); err != nil {
		t.Fatal(err)
	}
}

// TestInitNotice: the console filter drops the appliance init's membership
// notices, and only them: a command's own "tachy:" line is its error.
func TestInitNotice(t *testing.T) {
	for _, line := range []string{"tachy: peer n3 down", "tachy: peer n2 up", "tachy: quorum: 2 of 3 votes present, quorum is 2: quorate", "tachy: all 2 peers up", "tachy: event stream: EOF"} {
		if !initNotice.MatchString(line) {
			t.Errorf("%q: not taken for an init notice", line)
		}
	}
	for _, line := range []string{"tachy: config import: element primitive id=x: unknown agent", "tachy: peer n3 down: no such node", "tachy> tachy: peer n3 down", "configuration imported: CIB version 0.4.0"} {
		if initNotice.MatchString(line) {
			t.Errorf("%q: taken for an init notice", line)
		}
	}
}
