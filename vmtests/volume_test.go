package vmtests

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The replicated volume scenarios: a volume (ocf:tachy:volume, protocol C,
// three replicas) whose primary attaches the kernel's NBD client
// (/dev/nbd0); on it, a group: ext4 mounted (ocf:tachy:filesystem), the
// lab writer (ocf:tachy:process running `tachy lab writer`: a record
// appended and fsynced every 50 ms, "writer: acked N" printed on the
// console after each fsync returned) and the VIP. The host formats the
// volume once, over NBD (mkfs.ext4 on an image, nbdcopy to the primary's
// export). After a failure the writer starts again on the new primary and
// prints how many valid records it found ("writer: resumed after N"): every
// record any node acknowledged must be among them.
//
// no-quorum-policy=freeze and on_no_quorum=suspend-io: a primary cut off
// from the majority keeps its mount but its I/O waits, so it acknowledges
// nothing more, until the majority fences it.
const volumeCIB = `<cib epoch="1" num_updates="0" admin_epoch="0"><configuration><crm_config>
<cluster_property_set id="cib-bootstrap-options"><nvpair id="p1" name="stonith-enabled" value="true"/><nvpair id="p2" name="no-quorum-policy" value="freeze"/></cluster_property_set>
</crm_config><nodes/><resources>
<primitive id="hypervisor" class="stonith" type="fence_tachy_qmp"><instance_attributes id="hv-ia">
<nvpair id="hv-qmp" name="qmp" value="tcp:10.77.0.254:%s"/>
<nvpair id="hv-map" name="pcmk_host_map" value="n1:4401;n2:4402;n3:4403"/></instance_attributes></primitive>
<clone id="vol-clone"><meta_attributes id="vol-clone-meta"><nvpair id="vol-prom" name="promotable" value="true"/><nvpair id="vol-notify" name="notify" value="true"/></meta_attributes>
<primitive id="vol" class="ocf" provider="tachy" type="volume"><instance_attributes id="vol-ia">
<nvpair id="vol-volume" name="volume" value="data"/><nvpair id="vol-backing" name="backing" value="data.img"/>
<nvpair id="vol-size" name="size" value="32M"/><nvpair id="vol-peers" name="peers" value="n1=10.77.0.1:7789,n2=10.77.0.2:7789,n3=10.77.0.3:7789"/>
<nvpair id="vol-nbd" name="nbd" value=":10809"/><nvpair id="vol-proto" name="protocol" value="C"/>
<nvpair id="vol-dev" name="device" value="/dev/nbd0"/>
<nvpair id="vol-secret" name="secret_file" value="/etc/tachy/vol.secret"/></instance_attributes>
<operations><op id="vol-mon-p" name="monitor" interval="1s" role="Promoted" timeout="10s"/><op id="vol-mon-u" name="monitor" interval="2s" role="Unpromoted" timeout="10s"/></operations></primitive></clone>
<group id="svc"><meta_attributes id="svc-meta"><nvpair id="svc-role" name="target-role" value="Stopped"/></meta_attributes>
<primitive id="fs" class="ocf" provider="tachy" type="filesystem"><instance_attributes id="fs-ia">
<nvpair id="fs-dev" name="device" value="/dev/nbd0"/><nvpair id="fs-dir" name="directory" value="/mnt/data"/>
<nvpair id="fs-type" name="fstype" value="ext4"/><nvpair id="fs-opts" name="options" value="noatime"/></instance_attributes>
<operations><op id="fs-mon" name="monitor" interval="5s" timeout="20s"/></operations></primitive>
<primitive id="writer" class="ocf" provider="tachy" type="process"><instance_attributes id="writer-ia">
<nvpair id="writer-cmd" name="command" value="/bin/tachy lab writer /mnt/data/writes.log --interval 50ms"/></instance_attributes>
<operations><op id="writer-mon" name="monitor" interval="2s" timeout="10s"/></operations></primitive>
<primitive id="vip" class="ocf" provider="tachy" type="vip"><instance_attributes id="vip-ia">
<nvpair id="vip-ip" name="ip" value="10.77.0.100"/><nvpair id="vip-nm" name="cidr_netmask" value="24"/><nvpair id="vip-nic" name="nic" value="eth0"/></instance_attributes>
<operations><op id="vip-mon" name="monitor" interval="1s" timeout="10s"/></operations></primitive>
</group>
</resources><constraints>
<rsc_colocation id="svc-with-primary" rsc="svc" with-rsc="vol-clone" with-rsc-role="Promoted" score="INFINITY"/>
<rsc_order id="primary-then-svc" first="vol-clone" first-action="promote" then="svc" then-action="start" kind="Mandatory"/>
</constraints>
<rsc_defaults><meta_attributes id="rd"><nvpair id="rd-stick" name="resource-stickiness" value="100"/></meta_attributes></rsc_defaults>
</configuration><status/></cib>`

const volumeSize = 32 << 20

// volLab is a lab running the volume scenario, with the writer's console
// lines recorded on every VM.
type volLab struct {
	*Lab
	acks, resumes map[string]func() []ConsoleLine
}

var (
	ackRe    = regexp.MustCompile(`writer: acked (\d+)`)
	resumeRe = regexp.MustCompile(`writer: resumed after (\d+)`)
)

// volumeLab boots 3 VMs, creates the volume, formats it from the host,
// starts the service group, and returns the lab and the primary once the
// writer runs there.
func volumeLab(t *testing.T, ctx context.Context) (*volLab, string) {
	t.Helper()
	if _, err := exec.LookPath("mkfs.ext4"); err != nil {
		t.Skip("mkfs.ext4 (e2fsprogs) is needed to format the volume")
	}
	if _, err := exec.LookPath("nbdcopy"); err != nil {
		t.Skip("nbdcopy (libnbd-bin) is needed to format the volume over NBD")
	}
	l := startLab(t, ctx, Options{Nodes: 3, Files: map[string]string{"cib.xml": volumeCIB, "vol.secret": "vmlab-volume-secret-0123456789abcdef\n"}})
	vl := &volLab{Lab: l, acks: map[string]func() []ConsoleLine{}, resumes: map[string]func() []ConsoleLine{}}
	for _, v := range l.VMs {
		vl.acks[v.Name] = v.Tap("writer: acked ")
		vl.resumes[v.Name] = v.Tap("writer: resumed after ")
	}
	exec.Command("sysctl", "-qw", "net.ipv4.neigh.tvm0.locktime=0").Run()
	dcOf(t, ctx, l, "n1")
	importCIB(t, ctx, l)
	primary := vl.waitPrimary(t, ctx, "n1", "")
	t.Logf("the volume's primary is %s", primary)

	// Format it from the host, over NBD, as any remote client would write.
	img := filepath.Join(t.TempDir(), "ext4.img")
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, volumeSize); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", "-L", "tachy-lab", img).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v: %s", err, out)
	}
	uri := fmt.Sprintf("nbd://10.77.0.%d:10809/data", l.VM(primary).Index)
	if err := Eventually(ctx, func() error {
		out, err := exec.CommandContext(ctx, "nbdcopy", img, uri).CombinedOutput()
		if err != nil {
			return fmt.Errorf("nbdcopy %s: %v: %s", uri, err, out)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// Failover is safe once every replica has the data (DRBD's UpToDate).
	for _, v := range l.VMs {
		if v.Name != primary {
			vl.waitUpToDate(t, ctx, v.Name)
		}
	}
	mustRun(t, ctx, l, "n1", "resource enable svc")
	if err := Eventually(ctx, func() error {
		if len(vl.resumes[primary]()) == 0 || vl.maxAcked(primary, time.Now()) < 10 {
			return fmt.Errorf("the writer has not acknowledged 10 records on %s yet", primary)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	t.Logf("the writer runs on %s: ext4 on /dev/nbd0, records acknowledged after fsync", primary)
	return vl, primary
}

// waitPrimary waits until node's status shows the volume promoted on one
// node other than not, and returns it.
func (vl *volLab) waitPrimary(t *testing.T, ctx context.Context, node, not string) string {
	t.Helper()
	var primary string
	if err := Eventually(ctx, func() error {
		st, err := vl.Status(ctx, node)
		if err != nil {
			return err
		}
		var on []string
		for _, r := range st.Resources {
			if (r.ID == "vol" || strings.HasPrefix(r.ID, "vol:")) && r.Role == "Promoted" {
				on = append(on, r.Nodes...)
			}
		}
		if len(on) != 1 || on[0] == not {
			return fmt.Errorf("volume promoted on %v", on)
		}
		primary = on[0]
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return primary
}

// waitUpToDate waits until node's replica is UpToDate (a secondary in
// sync with the primary).
func (vl *volLab) waitUpToDate(t *testing.T, ctx context.Context, node string) {
	t.Helper()
	if err := Eventually(ctx, func() error {
		out, err := vl.Run(ctx, node, "volume status data --json")
		if err != nil {
			return err
		}
		if !strings.Contains(out, `"disk": "UpToDate"`) && !strings.Contains(out, `"disk":"UpToDate"`) {
			return fmt.Errorf("%s's replica is not UpToDate yet: %s", node, out)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// maxAcked is the highest record node acknowledged before t.
func (vl *volLab) maxAcked(node string, t time.Time) uint64 {
	var m uint64
	for _, l := range vl.acks[node]() {
		if sm := ackRe.FindStringSubmatch(l.Text); sm != nil && l.At.Before(t) {
			if n, _ := strconv.ParseUint(sm[1], 10, 64); n > m {
				m = n
			}
		}
	}
	return m
}

// resumed waits until the writer starts on a node other than old after t0
// and checks that it found every record acknowledged anywhere before: none
// was lost, and none was acknowledged by old after the new writer started
// (it would be a write the new primary does not have). It returns the node,
// when the writer resumed, and the records acknowledged before t0.
func (vl *volLab) resumed(t *testing.T, ctx context.Context, old string, t0 time.Time) (string, time.Time, uint64) {
	t.Helper()
	var node string
	var at time.Time
	var after uint64
	if err := Eventually(ctx, func() error {
		for _, v := range vl.VMs {
			if v.Name == old {
				continue
			}
			for _, l := range vl.resumes[v.Name]() {
				if sm := resumeRe.FindStringSubmatch(l.Text); sm != nil && l.At.After(t0) {
					node, at = v.Name, l.At
					after, _ = strconv.ParseUint(sm[1], 10, 64)
					return nil
				}
			}
		}
		return fmt.Errorf("the writer has not started again on another node than %s", old)
	}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second) // console lines of the old primary still in flight
	before := vl.maxAcked(old, t0)
	var acked uint64
	for _, v := range vl.VMs {
		if v.Name != node {
			acked = max(acked, vl.maxAcked(v.Name, time.Now()))
		}
	}
	if acked > after {
		t.Fatalf("acknowledged writes lost: records up to %d were acknowledged (by %s, %d before the failure), the writer on %s found %d",
			acked, old, before, node, after)
	}
	if before == 0 {
		t.Fatalf("%s acknowledged nothing before the failure: the scenario proves nothing", old)
	}
	t.Logf("%d records acknowledged on %s before the failure (%d in all), every one on %s: it resumed after record %d, %v after the failure",
		before, old, acked, node, after, at.Sub(t0).Round(time.Millisecond))
	return node, at, before
}

// waitFenced waits until node's power switch was used.
func waitFenced(t *testing.T, ctx context.Context, l *Lab, node string) {
	t.Helper()
	select {
	case <-l.Power[l.VM(node).Index-1].Log:
	case <-ctx.Done():
		t.Fatalf("%s was not fenced", node)
	}
}

// othersThan names the lab's VMs other than node.
func othersThan(l *Lab, node string) []string {
	var rest []string
	for _, v := range l.VMs {
		if v.Name != node {
			rest = append(rest, v.Name)
		}
	}
	return rest
}

// The primary's power is cut: another replica is promoted, the file
// system is mounted there, the writer finds every acknowledged record,
// the VIP answers again; the dead node was fenced first.
func TestVolumePrimaryKilled(t *testing.T) {
	needVMs(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	vl, primary := volumeLab(t, ctx)
	p := startPinger(t)
	time.Sleep(time.Second)
	killed := time.Now()
	vl.VM(primary).Kill()
	out := p.outage(t, ctx, killed)
	waitFenced(t, ctx, vl.Lab, primary)
	next, _, _ := vl.resumed(t, ctx, primary, killed)
	t.Logf("killed %s: VIP back after %v on the new primary %s", primary, out.Round(time.Millisecond), next)
}

// The primary is cut off from the others on both rings (the host stays
// with the majority): its I/O is suspended without quorum, the majority
// fences it and promotes another replica, which has every acknowledged
// record.
func TestVolumePrimaryPartitioned(t *testing.T) {
	needVMs(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	vl, primary := volumeLab(t, ctx)
	rest := othersThan(vl.Lab, primary)
	time.Sleep(time.Second)
	cut := time.Now()
	vl.Switches[0].Partition([][]string{{primary}, append(append([]string{}, rest...), "host")})
	vl.Switches[1].Partition([][]string{{primary}, rest})
	waitFenced(t, ctx, vl.Lab, primary)
	next, at, _ := vl.resumed(t, ctx, primary, cut)
	last := vl.maxAcked(primary, time.Now())
	var lastAt time.Time
	for _, l := range vl.acks[primary]() {
		lastAt = l.At
	}
	t.Logf("partitioned %s: its last acknowledgement (record %d) came %v after the cut; %s resumed %v after the cut",
		primary, last, lastAt.Sub(cut).Round(time.Millisecond), next, at.Sub(cut).Round(time.Millisecond))
	vl.Switches[0].Partition(nil)
	vl.Switches[1].Partition(nil)
}

// The primary is paused longer than the failure timeout: it is fenced
// (reset, which ends the pause) and another replica takes over with every
// acknowledged record.
func TestVolumePrimaryPaused(t *testing.T) {
	needVMs(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	vl, primary := volumeLab(t, ctx)
	time.Sleep(time.Second)
	paused := time.Now()
	if err := vl.VM(primary).Pause(ctx); err != nil {
		t.Fatal(err)
	}
	waitFenced(t, ctx, vl.Lab, primary)
	vl.resumed(t, ctx, primary, paused)
}

// Two failures in a row: the primary dies; once it is back and in sync
// again, the new primary dies too. No acknowledged record is lost either
// time.
func TestVolumeTwoFailures(t *testing.T) {
	needVMs(t)
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	vl, first := volumeLab(t, ctx)
	v1 := vl.VM(first)
	back := v1.Expect("tachy: node " + first + " ready")
	t1 := time.Now()
	v1.Kill()
	second, _, _ := vl.resumed(t, ctx, first, t1)
	if _, err := back(ctx); err != nil {
		t.Fatal(err)
	}
	// The rebooted node starts with empty storage (the lab's VMs keep
	// their state in RAM): it must be a full replica again first.
	vl.waitUpToDate(t, ctx, first)
	t2 := time.Now()
	vl.VM(second).Kill()
	third, _, _ := vl.resumed(t, ctx, second, t2)
	t.Logf("volume primary %s -> %s -> %s", first, second, third)
}
