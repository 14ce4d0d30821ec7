package cib

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// samePlain fails unless parsePlain, when it reads data, gives the tree
// parseTreeXML gives.
func samePlain(t *testing.T, data []byte) (plain bool) {
	t.Helper()
	got, ok := parsePlain(data)
	if !ok {
		return false
	}
	want, err := parseTreeXML(data)
	if err != nil {
		t.Fatalf("parsePlain read what encoding/xml rejects (%v):\n%q", err, data)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("parsePlain and encoding/xml read different trees:\n%q", data)
	}
	return true
}

// Every corpus input takes the fast path and reads as with encoding/xml.
func TestParsePlainCorpus(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(corpusDir, "*.xml"))
	if len(files) == 0 {
		t.Skip("corpus not found at " + corpusDir)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !samePlain(t, data) {
			t.Errorf("%s: not read by parsePlain", filepath.Base(f))
		}
	}
}

var plainSeeds = []string{
	`<cib a="1" b='2'><x y="&lt;&gt;&amp;&apos;&quot;&#34;&#x9;&#xA;&#13;"/></cib>`,
	"<?xml version=\"1.0\"?>\n<!-- c --><cib>\n  text &amp; more\n  <a\n   id=\"x\"\n/>\n</cib>\n",
	`<a b="1"c="2"></a >`,
	`<a><!----></a>`,
	`<a><!-- a--b --></a>`,
	`<a b="é"/>`, "<a>é\u00a0</a>",
	`<a b="&#0;"/>`, `<a b="&#xD800;"/>`, `<a b="&#X41;"/>`, `<a b="&foo;"/>`, `<a b="&lt"/>`,
	`<a>]]></a>`, `<a><![CDATA[x]]></a>`, `<!DOCTYPE a><a/>`,
	`<a b="1" b="2"/>`, `<a xmlns="x"/>`, `<x:a/>`, `<a x:b="1"/>`, `<a/><b/>`, `x<a/>`, `<a>`, `<a></b>`,
	`<1a/>`, `<a 1b="x"/>`, `<a b=1/>`, `<a b="<"/>`, "<a b=\"\r\n\"/>", "<a>\x01</a>", "<a b=\"\xff\"/>",
	`<?xml version="1.1"?><a/>`, `<?foo bar?><a/>`, `<a/><?xml version="1.0"?>`,
}

func TestParsePlainSeeds(t *testing.T) {
	for _, s := range plainSeeds {
		samePlain(t, []byte(s))
	}
	// Values with entities are decoded, lines are counted.
	n, ok := parsePlain([]byte("<a>\n<b v=\"x&amp;y&#x41;\"\n/>\n</a>"))
	if !ok || n.children[0].attrs[0].Value != "x&yA" || n.children[0].line != 3 {
		t.Fatalf("got %+v %v", n, ok)
	}
}

func FuzzParsePlain(f *testing.F) {
	for _, s := range plainSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		samePlain(t, data)
	})
}
