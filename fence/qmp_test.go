package fence

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A real QEMU (no guest: -machine none, TCG) is fenced over QMP: reboot
// resets the VM (a second QMP client sees the RESET event), off makes
// QEMU quit, and the device confirms it is gone.
func TestQMPAgainstQEMU(t *testing.T) {
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		t.Skip("qemu-system-x86_64 is not installed")
	}
	dir := t.TempDir()
	sock, watch := filepath.Join(dir, "n1.qmp"), filepath.Join(dir, "watch.qmp")
	cmd := exec.Command(qemu, "-machine", "none", "-nodefaults", "-display", "none", "-S",
		"-qmp", "unix:"+sock+",server=on,wait=off", "-qmp", "unix:"+watch+",server=on,wait=off")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer cmd.Process.Kill()
	var obs net.Conn
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if obs, err = net.Dial("unix", watch); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("QEMU's QMP socket did not appear: %v", err)
		}
	}
	defer obs.Close()
	events := make(chan string, 16)
	go func() {
		r := bufio.NewReader(obs)
		obs.Write([]byte(`{"execute":"qmp_capabilities"}` + "\n"))
		for {
			line, err := r.ReadBytes('\n')
			if err != nil {
				close(events)
				return
			}
			var m struct{ Event string }
			if json.Unmarshal(line, &m) == nil && m.Event != "" {
				events <- m.Event
			}
		}
	}()
	dev, err := New(QMPType, map[string]string{"qmp": "unix:" + dir + "/%s.qmp", "pcmk_host_map": "node-one:n1"}, "")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := dev.Fence(ctx, "node-one", "reboot"); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-events:
		if e != "RESET" {
			t.Fatalf("event %q after reboot, want RESET", e)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no RESET event after reboot")
	}
	if err := dev.Fence(ctx, "node-two", "reboot"); err == nil || !strings.Contains(err.Error(), "node-two.qmp") {
		t.Fatalf("fencing a VM without a QMP socket: %v", err)
	}
	if err := dev.Fence(ctx, "node-one", "off"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
	case <-time.After(20 * time.Second):
		t.Fatal("QEMU still runs after off")
	}
}

// QMP answers that are not success are errors that say what happened.
func TestQMPErrors(t *testing.T) {
	dir := t.TempDir()
	serve := func(name string, answer func(cmd string) string, greeting string) {
		ln, err := net.Listen("unix", filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() {
					defer c.Close()
					c.Write([]byte(greeting + "\n"))
					r := bufio.NewReader(c)
					for {
						line, err := r.ReadBytes('\n')
						if err != nil {
							return
						}
						var m struct{ Execute string }
						json.Unmarshal(line, &m)
						c.Write([]byte(`{"event":"NOISE"}` + "\n" + answer(m.Execute) + "\n"))
					}
				}()
			}
		}()
	}
	ok := `{"QMP":{"version":{},"capabilities":[]}}`
	serve("refuses.qmp", func(cmd string) string {
		if cmd == "qmp_capabilities" {
			return `{"return":{}}`
		}
		return `{"error":{"class":"GenericError","desc":"not now"}}`
	}, ok)
	serve("notqmp.qmp", func(string) string { return `{}` }, `{"hello":1}`)
	serve("good.qmp", func(string) string { return `{"return":{}}` }, ok)
	ctx := context.Background()
	for _, tc := range []struct {
		params               map[string]string
		target, action, want string
	}{
		{map[string]string{"qmp": "unix:" + dir + "/%s.qmp"}, "refuses", "reboot", "system_reset: GenericError: not now"},
		{map[string]string{"qmp": "unix:" + dir + "/%s.qmp"}, "notqmp", "reboot", "not a QMP server"},
		{map[string]string{"qmp": "unix:" + dir + "/%s.qmp"}, "good", "reboot", ""},
		{map[string]string{"qmp": "unix:" + dir + "/%s.qmp"}, "good", "cycle", "unknown action"},
		// quit acknowledged, yet QEMU still answers: not fenced.
		{map[string]string{"qmp": "unix:" + dir + "/%s.qmp"}, "good", "off", "still answers after quit"},
	} {
		dev, err := New(QMPType, tc.params, "")
		if err != nil {
			t.Fatal(err)
		}
		dev.(*QMP).QuitWait = 300 * time.Millisecond
		err = dev.Fence(ctx, tc.target, tc.action)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s %s: %v, want %q", tc.action, tc.target, err, tc.want)
		}
	}
	for _, p := range []map[string]string{{}, {"qmp": "/path"}} {
		if _, err := New(QMPType, p, ""); err == nil || !strings.Contains(err.Error(), "qmp") {
			t.Errorf("params %v: %v", p, err)
		}
	}
	if err := (&QMP{Address: "unix:" + dir + "/good.qmp"}).Monitor(ctx); err != nil {
		t.Errorf("monitor: %v", err)
	}
	if err := (&QMP{Address: "unix:" + dir + "/none.qmp"}).Monitor(ctx); err == nil {
		t.Error("monitor of a missing QEMU succeeded")
	}
}
