package nbdrepl

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Interop tests against the real clients (libnbd-bin: nbdinfo, nbdcopy;
// qemu-utils: qemu-io). They take well under a second each, so they run
// with -short too; they skip when a tool is missing (scripts/deps.sh
// installs them).

func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not installed (apt-get install libnbd-bin qemu-utils, or make deps)", name)
	}
	return p
}

func runTool(t *testing.T, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// fileExport serves a sparse temporary file of size bytes.
func fileExport(t *testing.T, name string, size int64) (*FileBackend, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), name+".img")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, size); err != nil {
		t.Fatal(err)
	}
	fb, err := OpenFile(path, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fb.Close() })
	return fb, path
}

func TestInteropNbdinfo(t *testing.T) {
	nbdinfo := needTool(t, "nbdinfo")
	fb, _ := fileExport(t, "disk", 16<<20)
	addr := startServer(t, &Server{Exports: []Export{
		{Name: "disk", Description: "file disk", Backend: fb},
		{Name: "mem", Backend: NewMemBackend(1 << 20), ReadOnly: true},
	}})

	list := runTool(t, nbdinfo, "--list", "nbd://"+addr)
	for _, want := range []string{"export=\"disk\"", "export=\"mem\"", "description: file disk"} {
		if !strings.Contains(list, want) {
			t.Errorf("nbdinfo --list lacks %q:\n%s", want, list)
		}
	}

	out := runTool(t, nbdinfo, "--json", "nbd://"+addr+"/disk")
	t.Logf("nbdinfo --json:\n%s", out)
	var info struct {
		Exports []map[string]any `json:"exports"`
	}
	if err := json.Unmarshal([]byte(out), &info); err != nil || len(info.Exports) != 1 {
		t.Fatalf("nbdinfo json: %v\n%s", err, out)
	}
	e := info.Exports[0]
	for k, want := range map[string]any{
		"export-name": "disk", "export-size": float64(16 << 20), "is_read_only": false,
		"can_flush": true, "can_fua": true, "can_trim": true, "can_zero": true,
		"can_multi_conn": true, "block_size_maximum": float64(DefaultMaxPayload),
	} {
		if e[k] != want {
			t.Errorf("%s = %v, want %v", k, e[k], want)
		}
	}

	out = runTool(t, nbdinfo, "--json", "nbd://"+addr+"/mem")
	if err := json.Unmarshal([]byte(out), &info); err != nil || len(info.Exports) != 1 {
		t.Fatalf("nbdinfo json: %v\n%s", err, out)
	}
	if e := info.Exports[0]; e["is_read_only"] != true || e["can_trim"] != false {
		t.Errorf("read-only export: %v", e)
	}
}

// TestInteropNbdcopy copies a random 8 MiB file into the export (nbdcopy
// uses several connections, as CAN_MULTI_CONN allows, and many requests in
// flight) and back out.
func TestInteropNbdcopy(t *testing.T) {
	nbdcopy := needTool(t, "nbdcopy")
	const size = 8 << 20
	fb, path := fileExport(t, "disk", size)
	addr := startServer(t, &Server{Exports: []Export{{Name: "disk", Backend: fb}}, Workers: 4})
	nbdcopyRoundTrip(t, nbdcopy, "nbd://"+addr+"/disk", path, size)
}

// nbdcopyRoundTrip copies size random bytes (with a zero hole in the
// middle, which makes nbdcopy use WRITE_ZEROES too) into uri with nbdcopy,
// checks the export's backing file, copies them back out and compares; it
// returns the source file.
func nbdcopyRoundTrip(t *testing.T, nbdcopy, uri, backing string, size int) string {
	t.Helper()
	dir := t.TempDir()
	src, back := filepath.Join(dir, "src"), filepath.Join(dir, "back")
	data := make([]byte, size)
	rand.Read(data)
	clear(data[3<<20 : 4<<20])
	if err := os.WriteFile(src, data, 0o600); err != nil {
		t.Fatal(err)
	}
	runTool(t, nbdcopy, "--flush", src, uri)
	if got, _ := os.ReadFile(backing); !bytes.Equal(got, data) {
		t.Fatal("backing file differs from the source after nbdcopy in")
	}
	runTool(t, nbdcopy, uri, back)
	if got, _ := os.ReadFile(back); !bytes.Equal(got, data) {
		t.Fatal("nbdcopy out differs from the source")
	}
	return src
}

func TestInteropQemuIO(t *testing.T) {
	qemuIO := needTool(t, "qemu-io")
	fb, path := fileExport(t, "disk", 4<<20)
	cb := &countingBackend{Backend: fb}
	addr := startServer(t, &Server{Exports: []Export{{Name: "disk", Backend: cb}}})
	uri := "nbd://" + addr + "/disk"
	// Fill the discard range first so the discard has something to drop.
	out := runTool(t, qemuIO, "-f", "raw",
		"-c", "write -P 0x55 2M 1M",
		"-c", "write -P 0xab 0 1M",
		"-c", "flush",
		"-c", "write -z 1M 1M",
		"-c", "write -P 0x11 -f 3M 4k", // FUA
		"-c", "discard 2M 1M",
		uri)
	t.Logf("qemu-io writes:\n%s", out)
	out = runTool(t, qemuIO, "-f", "raw",
		"-c", "read -P 0xab 0 1M",
		"-c", "read -P 0 1M 2M",
		"-c", "read -P 0x11 3M 4k",
		uri)
	t.Logf("qemu-io reads:\n%s", out)
	if strings.Contains(out, "Pattern verification failed") || strings.Count(out, "read ") != 3 {
		t.Fatalf("qemu-io read back:\n%s", out)
	}
	got, _ := os.ReadFile(path)
	if !bytes.Equal(got[:1<<20], bytes.Repeat([]byte{0xab}, 1<<20)) || !bytes.Equal(got[1<<20:3<<20], make([]byte, 2<<20)) {
		t.Fatal("backing file contents wrong")
	}
	cb.mu.Lock()
	defer cb.mu.Unlock()
	t.Logf("backend calls: %v", cb.n)
	for _, op := range []string{"flush", "zero", "trim", "sync"} {
		if cb.n[op] == 0 {
			t.Errorf("qemu-io's commands never reached the backend's %s", op)
		}
	}
}

// countingBackend counts the calls that change or persist data.
type countingBackend struct {
	Backend
	mu sync.Mutex
	n  map[string]int
}

func (c *countingBackend) count(op string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[op]++
}

func (c *countingBackend) Flush() error { c.count("flush"); return c.Backend.Flush() }

func (c *countingBackend) Sync(off, n int64) error { c.count("sync"); return c.Backend.Sync(off, n) }

func (c *countingBackend) Trim(off, n int64) error { c.count("trim"); return c.Backend.Trim(off, n) }

func (c *countingBackend) WriteZeroes(off, n int64, mayTrim bool) error {
	c.count("zero")
	return c.Backend.WriteZeroes(off, n, mayTrim)
}
