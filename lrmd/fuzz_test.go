package lrmd

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParseMetadata feeds the meta-data parser arbitrary documents, seeded
// with the test agents' meta-data and, when installed, a few real agents'.
// Whatever parses must be consistent: unique, non-empty parameter names,
// Param finding each, and Validate never panicking.
func FuzzParseMetadata(f *testing.F) {
	f.Add([]byte(flagMeta))
	for _, p := range []string{"testdata/ocf/resource.d/test/Needy", "testdata/ocf/resource.d/test/Sleeper"} {
		if b, err := os.ReadFile(p); err == nil {
			s := string(b)
			if i, j := strings.Index(s, "<?xml"), strings.Index(s, "</resource-agent>"); i >= 0 && j > i {
				f.Add([]byte(s[i : j+len("</resource-agent>")]))
			}
		}
	}
	// Real agents print their meta-data from a here-document; the
	// shell-expanded parts stay as they are, which is fine for seeds.
	for _, a := range []string{"heartbeat/Dummy", "heartbeat/IPaddr2", "pacemaker/Stateful", "heartbeat/Filesystem"} {
		if b, err := os.ReadFile(filepath.Join(systemOCF, "resource.d", a)); err == nil {
			s := string(b)
			if i, j := strings.Index(s, "<?xml"), strings.Index(s, "</resource-agent>"); i >= 0 && j > i {
				f.Add([]byte(s[i : j+len("</resource-agent>")]))
			}
		}
	}
	f.Add([]byte(`<resource-agent name="x"><parameters><parameter name="a" required="1"><content type="integer" default="1"/></parameter></parameters><actions><action name="monitor" timeout="5min" interval="10"/></actions></resource-agent>`))
	f.Add([]byte("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><resource-agent name=\"\xe9\"/>"))
	f.Fuzz(func(t *testing.T, data []byte) {
		md, err := ParseMetadata(data)
		if err != nil {
			return
		}
		seen := map[string]bool{}
		params := map[string]string{}
		for _, p := range md.Parameters {
			if p.Name == "" || seen[p.Name] {
				t.Fatalf("parameter name %q empty or repeated", p.Name)
			}
			seen[p.Name] = true
			if md.Param(p.Name) == nil || md.Param(p.Name).Name != p.Name {
				t.Fatalf("Param(%q) does not find it", p.Name)
			}
			params[p.Name] = p.Default
		}
		for _, a := range md.Actions {
			if a.Name == "" || a.Timeout < 0 || a.Interval < 0 {
				t.Fatalf("action %+v", a)
			}
		}
		agent := Agent{Class: "ocf", Provider: "fuzz", Type: "x"}
		_, _ = md.Validate(agent, params)
		_, _ = md.Validate(agent, map[string]string{"zz": "1"})
	})
}
