package lab_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tachy-ha/tachy/lab"
)

// volumeScore reads a node's promotion score for the volume clone, through
// the crm_attribute shim in the node's state directory (-1: none).
func volumeScore(t *testing.T, l *lab.Lab, node string) int {
	shim := filepath.Join(filepath.Dir(l.ConfigPath(node)), "state", "sbin", "crm_attribute")
	cmd := exec.Command(shim, "-N", node, "-n", "master-vol", "-G", "-q")
	cmd.Env = append(os.Environ(), "TACHY_SOCKET="+l.Socket(node))
	out, err := cmd.Output()
	if err != nil {
		return -1
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		return -1
	}
	return n
}

// waitVolume waits until, among the live nodes, exactly one is primary
// (score 10000) and the others are UpToDate secondaries (1000), and returns
// the primary.
func waitVolume(t *testing.T, l *lab.Lab, live []string, what string) string {
	t.Helper()
	var primary string
	eventually(t, 60*time.Second, func() error {
		primary = ""
		scores := map[string]int{}
		for _, n := range live {
			s := volumeScore(t, l, n)
			scores[n] = s
			if s == 10000 {
				if primary != "" {
					t.Fatalf("two primaries at once: %v", scores)
				}
				primary = n
			}
		}
		for _, n := range live {
			if n != primary && scores[n] != 1000 {
				return fmt.Errorf("%s: promotion scores %v", what, scores)
			}
		}
		if primary == "" {
			return fmt.Errorf("%s: no primary; scores %v", what, scores)
		}
		return nil
	})
	return primary
}

// The replicated volume as a promotable clone of the built-in
// ocf:tachy:volume agent on three nodes, protocol C: data is written
// through the primary's NBD export from the client namespace (nbdcopy,
// flushed), the primary's node is killed (its daemon, and with it the
// volume, dies at once), it is fenced, another node is promoted, and the
// data written before is read back from the new primary's export.
func TestClusterVolumeFailover(t *testing.T) {
	needLab(t)
	if _, err := exec.LookPath("nbdcopy"); err != nil {
		t.Skip("nbdcopy is not installed (libnbd-bin)")
	}
	l, _ := startCluster(t, "xdp", 3)
	waitDC(t, l, l.Nodes(), 20*time.Second)
	secret := filepath.Join(l.Dir(), "vol.secret")
	if err := os.WriteFile(secret, []byte("lab-volume-secret-0123456789abcdef"), 0o600); err != nil {
		t.Fatal(err)
	}
	var peers []string
	for _, n := range l.Nodes() {
		peers = append(peers, fmt.Sprintf("%s=%s:7789", n, l.Address(n, lab.Service)))
	}
	cibXML := strings.NewReplacer("LABDIR", l.Dir(), "SECRET", secret, "PEERS", strings.Join(peers, ",")).Replace(volumeCIB)
	cibFile := filepath.Join(t.TempDir(), "cib.xml")
	os.WriteFile(cibFile, []byte(cibXML), 0o644)
	mustCLI(t, l, "n1", "config", "import", cibFile)
	primary := waitVolume(t, l, l.Nodes(), "the volume is not running with one primary and two UpToDate secondaries")

	data := make([]byte, 8<<20)
	rand.Read(data)
	src := filepath.Join(t.TempDir(), "data")
	os.WriteFile(src, data, 0o644)
	url := func(n string) string { return fmt.Sprintf("nbd://%s:10809/vol", l.Address(n, lab.Service)) }
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out bytes.Buffer
	if err := l.Exec(ctx, "client", []string{"nbdcopy", "--flush", src, url(primary)}, nil, &out, &out); err != nil {
		t.Fatalf("nbdcopy into the primary %s: %v\n%s", primary, err, out.String())
	}
	if err := l.Kill(primary); err != nil {
		t.Fatal(err)
	}
	var live []string
	for _, n := range l.Nodes() {
		if n != primary {
			live = append(live, n)
		}
	}
	newPrimary := waitVolume(t, l, live, "no node promoted after the primary "+primary+" was killed")
	dst := filepath.Join(t.TempDir(), "back")
	out.Reset()
	if err := l.Exec(ctx, "client", []string{"nbdcopy", url(newPrimary), dst}, nil, &out, &out); err != nil {
		t.Fatalf("nbdcopy from the new primary %s: %v\n%s", newPrimary, err, out.String())
	}
	back, err := os.ReadFile(dst)
	if err != nil {
		t.Fatal(err)
	}
	if len(back) != 64<<20 || !bytes.Equal(back[:len(data)], data) {
		t.Fatalf("the new primary %s does not hold the data written through %s before it was killed (read %d bytes)", newPrimary, primary, len(back))
	}
	// The new primary replicates to the remaining node, which an online
	// verify finds identical; both through the volume CLI.
	third := live[0]
	if third == newPrimary {
		third = live[1]
	}
	eventually(t, 60*time.Second, func() error {
		out, err := tachyCLI(t, l, newPrimary, "volume", "status", "vol", "--json")
		if err != nil {
			return fmt.Errorf("volume status: %v: %s", err, out)
		}
		var vols []struct {
			Role  string `json:"role"`
			Peers []struct {
				Name  string `json:"name"`
				State string `json:"state"`
			} `json:"peers"`
		}
		if err := json.Unmarshal([]byte(out), &vols); err != nil || len(vols) != 1 {
			return fmt.Errorf("volume status --json: %v: %s", err, out)
		}
		for _, p := range vols[0].Peers {
			if p.Name == third && p.State == "UpToDate" && vols[0].Role == "Primary" {
				return nil
			}
		}
		return fmt.Errorf("%s is not an UpToDate peer of the new primary %s: %s", third, newPrimary, out)
	})
	verify := mustCLI(t, l, newPrimary, "volume", "verify", "vol", third)
	if !strings.Contains(verify, " 0 differ") {
		t.Fatalf("verify of %s against %s: %s", third, newPrimary, verify)
	}
	t.Logf("wrote 8 MiB through %s, killed it, read them back from %s; %s", primary, newPrimary, strings.TrimSpace(strings.Split(verify, "\n")[0]))
}

// no-quorum-policy=freeze: a node that loses quorum keeps its replica
// (the volume suspends its own I/O, on-no-quorum=suspend-io) instead of
// stopping it; a replica stopped and started again is only Consistent and
// would need an operator's forced promotion, as DRBD's would.
const volumeCIB = `<cib epoch="1" num_updates="0" admin_epoch="0"><configuration><crm_config>
<cluster_property_set id="cib-bootstrap-options"><nvpair id="p1" name="stonith-enabled" value="true"/><nvpair id="p2" name="no-quorum-policy" value="freeze"/></cluster_property_set>
</crm_config><nodes/><resources>
<primitive id="fencer" class="stonith" type="fence_tachy_lab"><instance_attributes id="fencer-ia"><nvpair id="fencer-dir" name="lab_dir" value="LABDIR"/></instance_attributes></primitive>
<clone id="vol-clone"><meta_attributes id="vol-clone-meta"><nvpair id="vol-prom" name="promotable" value="true"/><nvpair id="vol-notify" name="notify" value="true"/></meta_attributes>
<primitive id="vol" class="ocf" provider="tachy" type="volume">
<instance_attributes id="vol-ia">
<nvpair id="vol-volume" name="volume" value="vol"/><nvpair id="vol-backing" name="backing" value="vol.img"/>
<nvpair id="vol-size" name="size" value="64M"/><nvpair id="vol-peers" name="peers" value="PEERS"/>
<nvpair id="vol-nbd" name="nbd" value=":10809"/><nvpair id="vol-proto" name="protocol" value="C"/>
<nvpair id="vol-secret" name="secret_file" value="SECRET"/>
</instance_attributes><operations>
<op id="vol-mon-p" name="monitor" interval="1s" role="Promoted" timeout="10s"/><op id="vol-mon-u" name="monitor" interval="2s" role="Unpromoted" timeout="10s"/></operations></primitive></clone>
</resources><constraints/></configuration><status/></cib>`
