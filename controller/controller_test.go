package controller

import (
	"bufio"
	"context"
	"encoding/json"
	"log/slog"
	"maps"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tachy-ha/tachy/cib"
	"github.com/tachy-ha/tachy/config"
)

func TestIncarnationGrowsAndPersists(t *testing.T) {
	dir := t.TempDir()
	a, err := nextIncarnation(dir)
	if err != nil {
		t.Fatal(err)
	}
	// A clock stepped back must not make the next incarnation smaller:
	// peers would take the restarted node's frames for replays.
	if err := os.WriteFile(filepath.Join(dir, "incarnation"), []byte("18446744073709551000\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := nextIncarnation(dir)
	if err != nil {
		t.Fatal(err)
	}
	if a == 0 || b != 18446744073709551001 {
		t.Fatalf("incarnations %d then %d; want the second one past the recorded 18446744073709551000", a, b)
	}
	c, _ := nextIncarnation(dir)
	if c <= b {
		t.Fatalf("incarnation went from %d to %d", b, c)
	}
}

func TestIncarnationUnwritableStateDir(t *testing.T) {
	f := filepath.Join(t.TempDir(), "file")
	os.WriteFile(f, nil, 0o600)
	_, err := nextIncarnation(filepath.Join(f, "sub"))
	if err == nil || !strings.Contains(err.Error(), "local.state_dir") {
		t.Fatalf("error %v; want one that names local.state_dir", err)
	}
}

func TestQuorumConfigMapsTieBreakerNames(t *testing.T) {
	cfg, err := config.Parse("t.conf", []byte(`
[cluster]
name = "t"
id = 1
key_file = "k"
[local]
node = "a"
[quorum]
auto_tie_breaker = true
auto_tie_breaker_node = ["c", "a"]
[[node]]
name = "a"
id = 10
addresses = ["10.0.0.1", "10.1.0.1"]
[[node]]
name = "b"
id = 20
addresses = ["10.0.0.2", "10.1.0.2"]
[[node]]
name = "c"
id = 30
addresses = ["10.0.0.3", "10.1.0.3"]
[[node]]
name = "d"
id = 40
addresses = ["10.0.0.4", "10.1.0.4"]
`))
	if err != nil {
		t.Fatal(err)
	}
	q := quorumConfig(cfg, nil)
	if !q.AutoTieBreaker || q.AutoTieBreakerNode != "30 10" {
		t.Fatalf("auto_tie_breaker %v node %q; want true and \"30 10\"", q.AutoTieBreaker, q.AutoTieBreakerNode)
	}
}

// Requests the daemon cannot serve get an error line, not a hang-up.
func TestControlRejectsBadRequests(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "tachy.sock")
	srv, err := listenControl(sock, nil, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go srv.serve(ctx)
	for req, want := range map[string]string{
		"not json\n":             "malformed request",
		`{"op":"reboot"}` + "\n": `unknown op "reboot"`,
	} {
		c, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		c.Write([]byte(req))
		line, err := bufio.NewReader(c).ReadBytes('\n')
		c.Close()
		var r response
		if err != nil || json.Unmarshal(line, &r) != nil || !strings.Contains(r.Error, want) {
			t.Errorf("request %q: got %q (%v); want an error containing %q", req, line, err, want)
		}
	}
	// A second daemon on the same socket is refused while the first lives.
	if _, err := listenControl(sock, nil, slog.Default()); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("second listener: %v; want 'in use'", err)
	}
}

func TestClientSaysHowToStartTheDaemon(t *testing.T) {
	_, err := Client{Socket: filepath.Join(t.TempDir(), "none.sock")}.Status()
	if err == nil || !strings.Contains(err.Error(), "tachy daemon --config") {
		t.Fatalf("error %v; want advice to start the daemon", err)
	}
}

// The parameters an agent gets are the ones the scheduler digests: the
// primitive's own first, its group's and clone's for what it leaves
// unset, the start operation's over them, "#default" unsetting.
func TestAgentParams(t *testing.T) {
	c, err := cib.Import(strings.NewReader(`<cib epoch="1" num_updates="0" admin_epoch="0"><configuration><crm_config/><nodes/>
<resources><clone id="cl"><instance_attributes id="cl-ia"><nvpair id="cl-a" name="a" value="clone"/><nvpair id="cl-d" name="d" value="clone"/></instance_attributes>
<group id="g"><instance_attributes id="g-ia"><nvpair id="g-a" name="a" value="group"/><nvpair id="g-b" name="b" value="group"/></instance_attributes>
<primitive id="p" class="ocf" provider="heartbeat" type="Dummy">
<instance_attributes id="p-ia2" score="1"><nvpair id="p-c1" name="c" value="high"/></instance_attributes>
<instance_attributes id="p-ia"><nvpair id="p-a" name="a" value="own"/><nvpair id="p-c" name="c" value="low"/><nvpair id="p-e" name="e" value="x"/></instance_attributes>
<operations><op id="p-start" name="start" interval="0"><instance_attributes id="p-start-ia"><nvpair id="p-s-e" name="e" value="#default"/><nvpair id="p-s-f" name="f" value="op"/></instance_attributes></op></operations>
</primitive></group></clone></resources><constraints/></configuration><status/></cib>`))
	if err != nil {
		t.Fatal(err)
	}
	got := agentParams(c, c.FindPrimitive("p"))
	want := map[string]string{"a": "own", "b": "group", "c": "high", "d": "clone", "f": "op"}
	if !maps.Equal(got, want) {
		t.Fatalf("params %v, want %v", got, want)
	}
}
