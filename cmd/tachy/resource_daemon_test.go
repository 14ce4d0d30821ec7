package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/tachy-ha/tachy/cib"
	"github.com/tachy-ha/tachy/cib/replica"
	"github.com/tachy-ha/tachy/controller"
)

// fakeDaemon answers the control socket's "cib" and "cib-change" requests
// from a CIB in memory. Before the first change it applies meddle, as if
// someone else changed the configuration between the CLI's read and write.
type fakeDaemon struct {
	mu      sync.Mutex
	c       *cib.CIB
	changes int
	meddle  *cib.Change
}

func startFakeDaemon(t *testing.T, c *cib.CIB, meddle *cib.Change) (*fakeDaemon, *globals) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "tachy.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	d := &fakeDaemon{c: c, meddle: meddle}
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go d.serve(conn)
		}
	}()
	return d, &globals{Socket: sock}
}

func (d *fakeDaemon) serve(conn net.Conn) {
	defer conn.Close()
	var req struct {
		Op     string      `json:"op"`
		Change *cib.Change `json:"change"`
	}
	line, err := bufio.NewReader(conn).ReadBytes('\n')
	if err != nil || json.Unmarshal(line, &req) != nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	resp := map[string]any{}
	switch req.Op {
	case "cib":
		var b bytes.Buffer
		cib.Export(&b, d.c)
		resp["cib"] = controller.CIBDocument{XML: b.String()}
	case "cib-change":
		d.changes++
		if d.meddle != nil {
			d.c, _ = d.c.Apply(d.meddle)
			d.meddle = nil
		}
		next, err := d.c.Apply(req.Change)
		if err != nil {
			resp["error"] = err.Error()
			break
		}
		d.c = next
		resp["version"] = replica.Version{Epoch: next.Epoch}
	}
	json.NewEncoder(conn).Encode(resp)
}

// A read-modify-write that meets a concurrent change starts over and
// keeps both; a refused edit sends nothing.
func TestEditConfigRetries(t *testing.T) {
	v := "stop"
	d, g := startFakeDaemon(t, loadTestCIB(t), &cib.Change{Op: cib.OpSetProperty, Name: "no-quorum-policy", Value: &v})
	err := editConfig(g, func(c *cib.CIB) (string, error) {
		_, err := addLocation(c, "web", "n1", "50", "")
		return "added", err
	})
	if err != nil {
		t.Fatal(err)
	}
	if d.changes != 2 {
		t.Errorf("%d changes sent, want 2 (one refused as stale, one applied)", d.changes)
	}
	var b bytes.Buffer
	cib.Export(&b, d.c)
	if !strings.Contains(b.String(), `id="location-web-n1-50"`) || !strings.Contains(b.String(), `name="no-quorum-policy" value="stop"`) {
		t.Errorf("lost a change:\n%s", b.String())
	}
	if d.c.Epoch != 9 {
		t.Errorf("epoch %d, want 9 (7 + the meddler's + ours)", d.c.Epoch)
	}

	d.changes = 0
	err = editConfig(g, func(c *cib.CIB) (string, error) {
		_, err := addLocation(c, "nope", "n1", "50", "")
		return "added", err
	})
	if err == nil || !strings.Contains(err.Error(), `resource "nope" does not exist`) || d.changes != 0 {
		t.Errorf("refused edit: %v, %d changes sent", err, d.changes)
	}
}
