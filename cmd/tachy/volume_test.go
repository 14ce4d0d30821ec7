package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tachy-ha/tachy/nbdrepl"
)

func TestVolumeCreate(t *testing.T) {
	dir := t.TempDir()
	backing := filepath.Join(dir, "vol.img")
	if err := (&volumeCreateCmd{Name: "vol", Backing: backing}).Run(); err == nil || !strings.Contains(err.Error(), "--size") {
		t.Fatalf("create without a backing file or --size: %v", err)
	}
	if err := (&volumeCreateCmd{Name: "vol", Backing: backing, Size: "4M", Granularity: 4096}).Run(); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(backing); err != nil || st.Size() != 4<<20 {
		t.Fatalf("backing file: %v %v", st, err)
	}
	m, err := nbdrepl.OpenMetaFile(backing+".meta", nbdrepl.MetaOptions{Size: 4 << 20})
	if err != nil {
		t.Fatalf("the metadata does not open: %v", err)
	}
	if h := m.Header(); h.Current != nbdrepl.GenJustCreated || h.Granularity != 4096 || h.Flags&nbdrepl.MetaConsistent == 0 {
		t.Fatalf("metadata header %+v", h)
	}
	m.Close()
	if err := (&volumeCreateCmd{Name: "vol", Backing: backing, Size: "4M", Granularity: 4096}).Run(); err == nil || !strings.Contains(err.Error(), "already holds metadata") {
		t.Fatalf("creating twice: %v", err)
	}
	for _, bad := range []string{"", "0", "x", "-1M"} {
		if _, err := nbdrepl.ParseSize(bad); err == nil {
			t.Errorf("nbdrepl.ParseSize(%q) accepted", bad)
		}
	}
	if n, err := nbdrepl.ParseSize("3G"); err != nil || n != 3<<30 {
		t.Errorf("nbdrepl.ParseSize(3G) = %d, %v", n, err)
	}
}
