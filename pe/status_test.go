package pe

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tachy-ha/tachy/cib"
)

// statusFloor is how many corpus tests must render a "Current cluster
// status:" section identical (whitespace-normalised) to crm_simulate
// 2.1.5's. It guards against regressions: when the count printed by
// TestClusterStatusCorpus goes up, raise statusFloor to the new count.
const statusFloor = 510

// revisedFloor is the same for the "Revised Cluster Status:" section
// (RevisedStatus); raise it likewise when the printed count goes up.
const revisedFloor = 477

// statusSection extracts the "Current cluster status:" section,
// whitespace-normalised, blank lines dropped.
func statusSection(text string) []string { return sectionLines(text, "Current cluster status:") }

// sectionLines extracts the section under header, whitespace-normalised,
// blank lines dropped.
func sectionLines(text, header string) []string {
	var out []string
	in := false
	for _, line := range strings.Split(text, "\n") {
		switch {
		case strings.HasPrefix(line, header):
			in = true
			continue
		case in && line != "" && line[0] != ' ' && line[0] != '\t':
			return out
		}
		if in {
			if f := strings.Join(strings.Fields(line), " "); f != "" {
				out = append(out, f)
			}
		}
	}
	return out
}

func TestClusterStatusCorpus(t *testing.T) {
	dir := filepath.Join("..", "..", "shared", "conformance", "pacemaker-2.1.5")
	xmls, _ := filepath.Glob(filepath.Join(dir, "xml", "*.xml"))
	if len(xmls) == 0 {
		t.Skipf("no conformance corpus at %s", dir)
	}
	verbose := os.Getenv("STATUS_DIFF") != ""
	match, revised, total := 0, 0, 0
	for _, x := range xmls {
		name := strings.TrimSuffix(filepath.Base(x), ".xml")
		want, err := os.ReadFile(filepath.Join(dir, "summary", name+".summary"))
		if err != nil {
			continue
		}
		total++
		got, rev := func() (s, rev string) {
			defer func() {
				if recover() != nil {
					s, rev = "", ""
				}
			}()
			f, err := os.Open(x)
			if err != nil {
				return "", ""
			}
			defer f.Close()
			doc, err := cib.Import(f)
			if err != nil {
				return "", ""
			}
			res, _, err := Simulation(doc)
			if err != nil {
				return "", ""
			}
			return res.ClusterStatus(doc), res.RevisedStatus(doc)
		}()
		if strings.Join(sectionLines(rev, "Revised Cluster Status:"), "\n") == strings.Join(sectionLines(string(want), "Revised Cluster Status:"), "\n") {
			revised++
		} else if os.Getenv("REVISED_DIFF") != "" {
			t.Logf("%s:\n--- got\n%s\n--- want\n%s", name, strings.Join(sectionLines(rev, "Revised Cluster Status:"), "\n"), strings.Join(sectionLines(string(want), "Revised Cluster Status:"), "\n"))
		}
		g, w := statusSection(got), statusSection(string(want))
		if strings.Join(g, "\n") == strings.Join(w, "\n") {
			match++
		} else if verbose {
			t.Logf("%s:\n--- got\n%s\n--- want\n%s", name, strings.Join(g, "\n"), strings.Join(w, "\n"))
		}
	}
	t.Logf("cluster status matches crm_simulate for %d of %d corpus tests", match, total)
	t.Logf("revised cluster status matches crm_simulate for %d of %d corpus tests", revised, total)
	if match < statusFloor {
		t.Errorf("cluster status matches %d of %d corpus tests, below the floor of %d", match, total, statusFloor)
	}
	if revised < revisedFloor {
		t.Errorf("revised cluster status matches %d of %d corpus tests, below the floor of %d", revised, total, revisedFloor)
	}
}
