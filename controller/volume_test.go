package controller

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tachy-ha/tachy/config"
	"github.com/tachy-ha/tachy/lrmd"
)

// The control socket's volume requests against a volume the agent runs.
func TestVolumeRequest(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	os.WriteFile(secret, []byte("0123456789abcdef0123456789abcdef"), 0o600)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	d := &Daemon{local: &config.Node{Name: "n1"}}
	d.volumes = lrmd.NewVolumeAgent(lrmd.VolumeAgentOptions{Node: "n1", StateDir: dir})
	if _, err := d.volumeRequest(VolumeRequest{Action: "status", Name: "vol"}); err == nil || !strings.Contains(err.Error(), "running here: none") {
		t.Fatalf("status of a volume not running: %v", err)
	}
	params := map[string]string{"volume": "vol", "backing": "vol.img", "size": "1M", "secret_file": secret,
		"peers": fmt.Sprintf("n1=%s,n2=127.0.0.1:1", addr), "nbd": "127.0.0.1:0"}
	if r := d.volumes.Run(context.Background(), lrmd.BuiltinRequest{Resource: "vol:0", Action: "start", Params: params}); r.RC != lrmd.OK {
		t.Fatalf("start: %+v", r)
	}
	defer d.volumes.Run(context.Background(), lrmd.BuiltinRequest{Resource: "vol:0", Action: "stop", Params: params})
	if _, err := os.Stat(filepath.Join(dir, "vol.img.meta")); err != nil {
		t.Fatalf("a relative backing path is not under the state directory: %v", err)
	}
	all, err := d.volumeRequest(VolumeRequest{Action: "status"})
	if err != nil || len(all.Volumes) != 1 || all.Volumes[0].Role != "Secondary" {
		t.Fatalf("status: %+v %v", all, err)
	}
	if _, err := d.volumeRequest(VolumeRequest{Action: "verify", Name: "vol"}); err == nil || !strings.Contains(err.Error(), "needs a peer") {
		t.Fatalf("verify without a peer: %v", err)
	}
	if _, err := d.volumeRequest(VolumeRequest{Action: "verify", Name: "vol", Peer: "n2"}); err == nil || !strings.Contains(err.Error(), "run this on the primary") {
		t.Fatalf("verify on a secondary: %v", err)
	}
	res, err := d.volumeRequest(VolumeRequest{Action: "promote", Name: "vol"})
	if err != nil || res.Volumes[0].Role != "Primary" || res.Volumes[0].NBD == "" {
		t.Fatalf("promote: %+v %v", res, err)
	}
	var out bytes.Buffer
	WriteStatus(&out, Status{Volumes: d.volumeStatuses()})
	if !strings.Contains(out.String(), "Volume vol: Primary, disk UpToDate, protocol C, quorum untracked; n2 Disconnected") {
		t.Errorf("tachy status:\n%s", out.String())
	}
	var m bytes.Buffer
	d.writeVolumeGauges(&m)
	for _, want := range []string{`tachy_volume_primary{volume="vol"} 1`, `tachy_volume_up_to_date{volume="vol"} 1`,
		`tachy_volume_peer_connected{volume="vol",peer="n2"} 0`, `tachy_volume_out_of_sync_bytes{volume="vol",peer="n2"} 0`,
		"# TYPE tachy_volume_replication_latency_seconds gauge"} {
		if !strings.Contains(m.String(), want) {
			t.Errorf("metrics lack %s:\n%s", want, m.String())
		}
	}
	if _, err := d.volumeRequest(VolumeRequest{Action: "verify", Name: "vol", Peer: "n2"}); err == nil || !strings.Contains(err.Error(), "not connected") {
		t.Fatalf("verify against a peer that is down: %v", err)
	}
	if _, err := d.volumeRequest(VolumeRequest{Action: "disconnect", Name: "vol", Peer: "n7"}); err == nil || !strings.Contains(err.Error(), "no peer") {
		t.Fatalf("disconnect of an unknown peer: %v", err)
	}
	if _, err := d.volumeRequest(VolumeRequest{Action: "explode", Name: "vol"}); err == nil {
		t.Fatal("an unknown action was accepted")
	}
	res, err = d.volumeRequest(VolumeRequest{Action: "demote", Name: "vol"})
	if err != nil || res.Volumes[0].Role != "Secondary" {
		t.Fatalf("demote: %+v %v", res, err)
	}
}
