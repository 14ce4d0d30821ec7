package lrmd

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tachy-ha/tachy/internal/testpki"
	"github.com/tachy-ha/tachy/nbdrepl"
)

// TestVolumeAgentTLS: the tls, tls_cert, tls_key and tls_ca parameters are
// checked with errors that name them, and a primary started with
// tls=require serves NBD over TLS only, to clients with a certificate.
func TestVolumeAgentTLS(t *testing.T) {
	p := testpki.New(t)
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	os.WriteFile(secret, []byte("0123456789abcdef0123456789abcdef\n"), 0o600)
	garbage := filepath.Join(dir, "garbage.pem")
	os.WriteFile(garbage, []byte("-----BEGIN NOTHING-----\n"), 0o600)
	// Relative TLS paths are taken from the state directory, as the
	// other files' are.
	a := NewVolumeAgent(VolumeAgentOptions{Node: "n1", StateDir: p.Dir})
	params := func(kv ...string) map[string]string {
		m := map[string]string{"volume": "data", "backing": filepath.Join(dir, "data.img"), "size": "1M",
			"peers": "n1=" + freeAddr(t), "nbd": "127.0.0.1:0", "secret_file": secret,
			"tls": "require", "tls_cert": "server-cert.pem", "tls_key": "server-key.pem", "tls_ca": "ca-cert.pem"}
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == "" {
				delete(m, kv[i])
			} else {
				m[kv[i]] = kv[i+1]
			}
		}
		return m
	}
	run := func(action string, p map[string]string) BuiltinResult {
		return a.Run(context.Background(), BuiltinRequest{Resource: "vol:0", Action: action, Params: p})
	}
	for _, c := range []struct {
		params []string
		rc     RC
		want   string
	}{
		{[]string{"tls", "on"}, ErrConfigured, `tls "on": use off, allow or require`},
		{[]string{"tls_cert", ""}, ErrConfigured, "tls=require needs tls_cert and tls_key"},
		{[]string{"tls", "allow", "tls_key", ""}, ErrConfigured, "tls=allow needs tls_cert and tls_key"},
		{[]string{"tls", "", "tls_ca", ""}, ErrConfigured, "tls_cert, tls_key or tls_ca is set but tls is off"},
		{[]string{"tls_cert", "nope.pem"}, ErrInstalled, "tls_cert " + filepath.Join(p.Dir, "nope.pem") + " does not exist on this node"},
		{[]string{"tls_key", garbage}, ErrConfigured, "tls_key " + garbage + ": tls: failed to find any PEM data in key input"},
		{[]string{"tls_key", "client-key.pem"}, ErrConfigured, "private key does not match"},
		{[]string{"tls_cert", "server-key.pem"}, ErrConfigured, "tls_cert " + filepath.Join(p.Dir, "server-key.pem") + ": no PEM certificate"},
		{[]string{"tls_ca", garbage}, ErrConfigured, "tls_ca " + garbage + ": no PEM certificate"},
	} {
		for _, action := range []string{"validate-all", "start"} {
			r := run(action, params(c.params...))
			if r.RC != c.rc || !strings.Contains(r.ExitReason, c.want) {
				t.Errorf("%s with %q: rc %d %q, want rc %d with %q", action, c.params, r.RC, r.ExitReason, c.rc, c.want)
			}
		}
	}
	if a.Volume("vol:0") != nil {
		t.Fatal("a refused start left a volume running")
	}

	good := params()
	if r := run("validate-all", good); r.RC != OK {
		t.Fatalf("validate-all: %+v", r)
	}
	if r := run("start", good); r.RC != OK {
		t.Fatalf("start: %+v", r)
	}
	defer run("stop", good)
	if r := run("promote", good); r.RC != OK {
		t.Fatalf("promote: %+v", r)
	}
	addr := a.Volume("vol:0").NBDAddr().String()
	dial := func() net.Conn {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(20 * time.Second))
		return c
	}
	if _, err := nbdrepl.Negotiate(dial(), "data"); err == nil || !strings.Contains(err.Error(), "requires TLS") {
		t.Fatalf("plain client: %v", err)
	}
	cfg := &tls.Config{RootCAs: p.Pool, ServerName: "localhost"}
	if _, _, err := nbdrepl.NegotiateTLS(dial(), "data", cfg); err == nil {
		t.Fatal("a client without a certificate was served (tls_ca is set)")
	}
	cfg.Certificates = []tls.Certificate{p.Client}
	tc, info, err := nbdrepl.NegotiateTLS(dial(), "data", cfg)
	if err != nil {
		t.Fatal(err)
	}
	if info.Size != 1<<20 {
		t.Fatalf("export size %d", info.Size)
	}
	payload := []byte("over TLS")
	req := nbdrepl.AppendRequest(nil, nbdrepl.Request{Type: nbdrepl.CmdWrite, Handle: 7, Offset: 512, Length: uint32(len(payload))})
	if _, err := tc.Write(append(req, payload...)); err != nil {
		t.Fatal(err)
	}
	var rep [16]byte
	if _, err := io.ReadFull(tc, rep[:]); err != nil || binary.BigEndian.Uint32(rep[4:]) != 0 || binary.BigEndian.Uint64(rep[8:]) != 7 {
		t.Fatalf("write over TLS: %v, reply %x", err, rep)
	}
	got := make([]byte, len(payload))
	if _, err := a.Volume("vol:0").Replicated().ReadAt(got, 512); err != nil || string(got) != string(payload) {
		t.Fatalf("the volume holds %q (%v)", got, err)
	}
}
