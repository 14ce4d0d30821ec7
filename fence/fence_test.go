package fence

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A fence agent gets the fence-agents stdin protocol: its parameters
// (without Pacemaker's own), the action and the target.
func TestAgentProtocol(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "stdin")
	script := "#!/bin/sh\ncat > " + log + "\ngrep -q '^action=monitor' " + log + " && exit 0\ngrep -q '^plug=bad' " + log + " && { echo 'Failed: unable to reach'; exit 1; }\nexit 0\n"
	if err := os.WriteFile(filepath.Join(dir, "fence_fake"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	d, err := New("fence_fake", map[string]string{"ip": "10.0.0.9", "username": "root", "pcmk_host_list": "n1 n2"}, dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Fence(context.Background(), "n2", "reboot"); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(log)
	want := "ip=10.0.0.9\nusername=root\naction=reboot\nplug=n2\nport=n2\nnodename=n2\n"
	if string(got) != want {
		t.Errorf("stdin:\n%s\nwant:\n%s", got, want)
	}
	if err := d.Fence(context.Background(), "bad", "off"); err == nil || !strings.Contains(err.Error(), "unable to reach") {
		t.Errorf("failing agent: %v", err)
	}
	// pcmk_host_map gives the port; pcmk_host_argument its name.
	d, _ = New("fence_fake", map[string]string{"ip": "10.0.0.9", "pcmk_host_map": "n1:vm-one;n2:vm-two", "pcmk_host_argument": "uuid"}, dir)
	if err := d.Fence(context.Background(), "n2", "off"); err != nil {
		t.Fatal(err)
	}
	got, _ = os.ReadFile(log)
	if want := "ip=10.0.0.9\naction=off\nuuid=vm-two\nnodename=n2\n"; string(got) != want {
		t.Errorf("stdin with a host map:\n%s\nwant:\n%s", got, want)
	}
	if err := d.Monitor(context.Background()); err != nil {
		t.Errorf("monitor: %v", err)
	}
	if _, err := New("fence_missing", nil, dir); err == nil || !strings.Contains(err.Error(), "not installed") {
		t.Errorf("missing agent: %v", err)
	}
	if _, err := New("../../bin/sh", nil, dir); err == nil {
		t.Error("a path was accepted as an agent")
	}
}

// The lab device kills everything in the node's namespace.
func TestLabDevice(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces)")
	}
	ns := "tachy-fencetest"
	exec.Command("ip", "netns", "del", ns).Run()
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Skipf("ip netns add: %v %s", err, out)
	}
	defer exec.Command("ip", "netns", "del", ns).Run()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "lab.json"), []byte("{}"), 0o644)
	os.MkdirAll(filepath.Join(dir, "fencetest", "state", "rsctmp"), 0o755)
	os.MkdirAll(filepath.Join(dir, "fencetest", "state", "run"), 0o755)
	var cmds []*exec.Cmd
	for i := 0; i < 3; i++ {
		c := exec.Command("ip", "netns", "exec", ns, "sleep", "600")
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, c)
	}
	time.Sleep(200 * time.Millisecond)
	d := &Lab{Dir: dir}
	if err := d.Monitor(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := d.Fence(context.Background(), "fencetest", "reboot"); err != nil {
		t.Fatal(err)
	}
	for _, c := range cmds {
		if err := c.Wait(); err == nil || !strings.Contains(err.Error(), "killed") {
			t.Errorf("a process survived fencing: %v", err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "fencetest", "state", "run")); !os.IsNotExist(err) {
		t.Error("the node's volatile state survived fencing")
	}
	if err := (&Lab{Dir: filepath.Join(dir, "none")}).Monitor(context.Background()); err == nil {
		t.Error("monitor of a missing lab succeeded")
	}
}
