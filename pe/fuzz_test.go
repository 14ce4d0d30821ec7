package pe

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tachy-ha/tachy/cib"
)

// FuzzSchedule: whatever CIB the importer accepts, the scheduler returns a
// result (or an error) without panicking, and its graph is well formed.
func FuzzSchedule(f *testing.F) {
	f.Add([]byte(strings.ReplaceAll(threeNodes, "%STONITH%", "true")))
	for _, name := range []string{"simple1", "group1", "clone1", "promoted-0", "coloc-intra-set", "tags-coloc-order-1", "stonith-1", "migrate-1", "utilization", "ticket-primitive-1"} {
		if data, err := os.ReadFile(filepath.Join(conformanceDir, "xml", name+".xml")); err == nil {
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := cib.Import(bytes.NewReader(data))
		if err != nil {
			return
		}
		res, err := Schedule(c, time.Unix(1700000000, 0))
		if err != nil {
			return
		}
		ids := map[int]bool{}
		for _, a := range res.Actions {
			ids[a.ID] = true
		}
		for _, e := range res.Edges {
			if !ids[e.First] || !ids[e.Then] {
				t.Fatalf("edge %d -> %d names a missing action", e.First, e.Then)
			}
		}
		ex := res.Execute()
		_ = ex.String()
		_ = res.String()
		_ = res.ClusterStatus(c)
		_ = res.RevisedStatus(c)
	})
}
