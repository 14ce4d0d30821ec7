package cib

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// corpusDir is Pacemaker 2.1.5's scheduler regression inputs, shared next to
// the repository (never copied into it).
var corpusDir = filepath.Join("..", "..", "shared", "conformance", "pacemaker-2.1.5", "xml")

// roundTrip exports c and imports the result, failing unless the model
// comes back equal.
func roundTrip(t testing.TB, name string, c *CIB) {
	t.Helper()
	var out bytes.Buffer
	if err := Export(&out, c); err != nil {
		t.Fatalf("%s: export: %v", name, err)
	}
	c2, err := Import(bytes.NewReader(out.Bytes()))
	if err != nil {
		t.Fatalf("%s: re-import: %v\n%s", name, err, out.String())
	}
	if !reflect.DeepEqual(c, c2) {
		var out2 bytes.Buffer
		_ = Export(&out2, c2)
		t.Fatalf("%s: model changed in a round trip: %s", name, firstDiff(out.String(), out2.String()))
	}
}

// firstDiff shows the first differing line of two exports.
func firstDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := 0; i < len(al) && i < len(bl); i++ {
		if al[i] != bl[i] {
			return "line " + strconv.Itoa(i+1) + ":\n- " + al[i] + "\n+ " + bl[i]
		}
	}
	if len(al) != len(bl) {
		return "lengths differ"
	}
	return "exports are identical: the difference is in fields Export does not write"
}

func TestCorpus(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(corpusDir, "*.xml"))
	if len(files) == 0 {
		t.Skipf("no conformance corpus at %s", corpusDir)
	}
	imported := 0
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".xml")
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		c, err := Import(bytes.NewReader(data))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		roundTrip(t, name, c)
		imported++
	}
	t.Logf("imported and round-tripped %d of %d corpus CIBs", imported, len(files))
	if imported != len(files) {
		t.Errorf("only %d of %d corpus CIBs imported", imported, len(files))
	}
}
