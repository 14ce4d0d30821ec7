package nbdrepl

import (
	"bytes"
	"encoding/json"
	"net"
	"os/exec"
	"strings"
	"testing"

	"github.com/tachy-ha/tachy/internal/testpki"
)

// runToolFail runs a tool that must fail and returns its output.
func runToolFail(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err == nil {
		t.Fatalf("%s %s succeeded, want a failure:\n%s", name, strings.Join(args, " "), out)
	}
	return string(out)
}

// TestInteropTLSNbdinfo: nbdinfo over TLS (nbds://) with the CA in its
// certificate directory; a plain client is refused under TLSRequire, and a
// client without a certificate when the server verifies clients.
func TestInteropTLSNbdinfo(t *testing.T) {
	nbdinfo := needTool(t, "nbdinfo")
	for _, mutual := range []bool{false, true} {
		addr, p, _, log := tlsServer(t, TLSRequire, mutual)
		dir := p.AnonDir
		if mutual {
			dir = p.Dir
		}
		out := runTool(t, nbdinfo, "--json", "nbds://"+addr+"/disk?tls-certificates="+dir)
		t.Logf("nbdinfo --json (mutual %v):\n%s", mutual, out)
		var info struct {
			TLS     bool             `json:"TLS"`
			Exports []map[string]any `json:"exports"`
		}
		if err := json.Unmarshal([]byte(out), &info); err != nil || info.TLS != true || len(info.Exports) != 1 || info.Exports[0]["export-size"] != float64(testSize) {
			t.Fatalf("nbdinfo json: %v\n%s", err, out)
		}
		out = runToolFail(t, nbdinfo, "--json", "nbd://"+addr+"/disk")
		t.Logf("plain nbdinfo: %s", out)
		log.waitFor(t, "TLS is required")
		if mutual {
			out = runToolFail(t, nbdinfo, "--json", "nbds://"+addr+"/disk?tls-certificates="+p.AnonDir)
			t.Logf("nbdinfo without a client certificate: %s", out)
			log.waitFor(t, "TLS handshake failed", "didn't provide a certificate")
		}
	}
}

// TestInteropTLSQemuIO: qemu-io writes, flushes and reads back over TLS
// with x509 credentials, a client certificate included (the server
// verifies clients); without a client certificate it is refused.
func TestInteropTLSQemuIO(t *testing.T) {
	qemuIO := needTool(t, "qemu-io")
	addr, p, m, log := tlsServer(t, TLSRequire, true)
	host, port, _ := net.SplitHostPort(addr)
	image := func(dir string) []string {
		return []string{"--object", "tls-creds-x509,id=tls0,dir=" + dir + ",endpoint=client",
			"--image-opts", "driver=nbd,host=" + host + ",port=" + port + ",export=disk,tls-creds=tls0"}
	}
	out := runTool(t, qemuIO, append(image(p.Dir),
		"-c", "write -P 0x5a 0 64k", "-c", "flush", "-c", "read -P 0x5a 0 64k")...)
	t.Logf("qemu-io over TLS:\n%s", out)
	if strings.Contains(out, "Pattern verification failed") || !strings.Contains(out, "read 65536/65536") {
		t.Fatalf("qemu-io read back:\n%s", out)
	}
	if !bytes.Equal(m.Bytes()[:64<<10], bytes.Repeat([]byte{0x5a}, 64<<10)) {
		t.Fatal("backend not written")
	}
	if f, _ := m.Counts(); f == 0 {
		t.Fatal("qemu-io's flush did not reach the backend")
	}
	out = runToolFail(t, qemuIO, append(image(p.AnonDir), "-c", "read 0 4k")...)
	t.Logf("qemu-io without a client certificate: %s", out)
	log.waitFor(t, "TLS handshake failed", "didn't provide a certificate")
	out = runToolFail(t, qemuIO, "-f", "raw", "-c", "read 0 4k", "nbd://"+addr+"/disk")
	t.Logf("plain qemu-io: %s", out)
}

// TestInteropTLSNbdcopy copies a random 8 MiB file into an nbds:// URI
// (several connections, each with its TLS session) and back out.
func TestInteropTLSNbdcopy(t *testing.T) {
	nbdcopy := needTool(t, "nbdcopy")
	const size = 8 << 20
	fb, path := fileExport(t, "disk", size)
	p := testpki.New(t)
	cfg, err := LoadTLSConfig(p.ServerCert, p.ServerKey, p.CA)
	if err != nil {
		t.Fatal(err)
	}
	addr := startServer(t, &Server{Exports: []Export{{Name: "disk", Backend: fb}}, Workers: 4, TLS: TLSRequire, TLSConfig: cfg})
	src := nbdcopyRoundTrip(t, nbdcopy, "nbds://"+addr+"/disk?tls-certificates="+p.Dir, path, size)
	runToolFail(t, nbdcopy, src, "nbd://"+addr+"/disk")
}
