package pe

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tachy-ha/tachy/cib"
)

var (
	diffN      = flag.Int("diff.n", 0, "differential test: how many seeds (default 40 with -short, else 200)")
	diffStart  = flag.Uint64("diff.start", 1, "differential test: first seed")
	diffUpdate = flag.Bool("diff.update", false, "differential test: rewrite testdata/differential-known.txt with the seeds that mismatch in the range run")
)

// crmSimulate finds Pacemaker's crm_simulate (in /usr/sbin, often not on a
// user's PATH).
func crmSimulate() string {
	if p, err := exec.LookPath("crm_simulate"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/sbin/crm_simulate"); err == nil {
		return "/usr/sbin/crm_simulate"
	}
	return ""
}

// TestDifferential compares pe's Transition Summary with crm_simulate's on
// random valid CIBs (genCIB), one per seed. A difference fails the test,
// with the seed, both summaries and the path of the CIB kept for
// reproduction, unless the seed is listed in testdata/differential-known.txt
// (mismatches found when the test was written whose fixes are larger than
// a fix: see the file). Listed seeds that match now are reported; record
// them (and any new known gap) with -diff.update:
//
//	go test ./pe -run Differential -diff.n 2000 -v
//	PE_DIFF_SEED=17 go test ./pe -run Differential -v
//	go test ./pe -run Differential -diff.n 2000 -diff.update
func TestDifferential(t *testing.T) {
	crm := crmSimulate()
	if crm == "" {
		t.Skip("crm_simulate not installed (apt-get install pacemaker-cli-utils)")
	}
	start, n := *diffStart, *diffN
	if n == 0 {
		n = 200
		if testing.Short() {
			n = 40
		}
	}
	if s := os.Getenv("PE_DIFF_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("PE_DIFF_SEED=%q: %v", s, err)
		}
		start, n = v, 1
	}
	feat, useKnown := genDefault, true
	if s := os.Getenv("PE_DIFF_FEATURES"); s != "" {
		// e.g. "all,-clones": switch generator features on (name) or off
		// (-name) to find which one a mismatch needs. The known list is
		// for the default features only.
		useKnown = false
		for _, name := range strings.Split(s, ",") {
			on := !strings.HasPrefix(name, "-")
			name = strings.TrimPrefix(name, "-")
			if name == "all" {
				feat = genAll
				continue
			}
			p, ok := feat.flags()[name]
			if !ok {
				t.Fatalf("PE_DIFF_FEATURES: no feature %q", name)
			}
			*p = on
		}
	}
	known := map[uint64]string{}
	if useKnown {
		known = readKnown(t)
	}
	dir := t.TempDir()
	end := start + uint64(n)
	matched, failed := 0, 0
	var nowMatching []uint64
	found := map[uint64]string{}
	for seed := start; seed < end; seed++ {
		_, listed := known[seed]
		keep := !listed && !(*diffUpdate && useKnown) || os.Getenv("PE_DIFF_SEED") != ""
		ok, msg, brief := diffOne(t, crm, dir, seed, feat, keep)
		if ok {
			matched++
			if _, listed := known[seed]; listed {
				nowMatching = append(nowMatching, seed)
			}
			continue
		}
		if brief != "" {
			found[seed] = brief
			if _, listed := known[seed]; listed || *diffUpdate && useKnown {
				if testing.Verbose() {
					t.Logf("known: %s", msg)
				}
				continue
			}
		}
		failed++
		if failed <= 10 || testing.Verbose() {
			t.Error(msg)
		}
	}
	t.Logf("differential: %d of %d seeds (%d..%d) match crm_simulate; %d known mismatches, %d new",
		matched, n, start, end-1, n-matched-failed, failed)
	if failed > 10 && !testing.Verbose() {
		t.Errorf("%d mismatches in all (first 10 shown)", failed)
	}
	if len(nowMatching) > 0 {
		t.Logf("known mismatches that match now (record with -diff.update): %v", nowMatching)
	}
	if *diffUpdate && useKnown {
		for seed := range known {
			if seed >= start && seed < end {
				delete(known, seed)
			}
		}
		for seed, brief := range found {
			known[seed] = brief
		}
		writeKnown(t, known)
	}
}

const knownFile = "testdata/differential-known.txt"

// readKnown reads the seeds whose mismatch is a known gap: "SEED # what
// differs" per line.
func readKnown(t *testing.T) map[uint64]string {
	m := map[uint64]string{}
	data, err := os.ReadFile(knownFile)
	if os.IsNotExist(err) {
		return m
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if l = strings.TrimSpace(l); l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		f, why, _ := strings.Cut(l, "#")
		seed, err := strconv.ParseUint(strings.TrimSpace(f), 10, 64)
		if err != nil {
			t.Fatalf("%s: %q: %v", knownFile, l, err)
		}
		m[seed] = strings.TrimSpace(why)
	}
	return m
}

func writeKnown(t *testing.T, m map[uint64]string) {
	seeds := make([]uint64, 0, len(m))
	for s := range m {
		seeds = append(seeds, s)
	}
	slices.Sort(seeds)
	var b strings.Builder
	b.WriteString("# Seeds of TestDifferential whose Transition Summary pe does not reproduce yet,\n" +
		"# with the first line that differs. Regenerate: go test ./pe -run Differential -diff.n 2000 -diff.update\n")
	for _, s := range seeds {
		fmt.Fprintf(&b, "%d # %s\n", s, m[s])
	}
	if err := os.WriteFile(knownFile, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %d known mismatches to %s", len(seeds), knownFile)
}

// diffOne generates seed's CIB, schedules it with both, and compares;
// keepCIB saves the CIB outside the test's temporary directory on a
// mismatch.
// It returns whether they match, a message for a failure, and for a
// mismatch of summaries (not an error) the first line that differs.
func diffOne(t *testing.T, crm, dir string, seed uint64, feat genFeatures, keepCIB bool) (bool, string, string) {
	t.Helper()
	var buf bytes.Buffer
	if err := cib.Export(&buf, genCIBWith(seed, feat)); err != nil {
		t.Fatalf("seed %d: export: %v", seed, err)
	}
	xml := buf.Bytes()
	path := filepath.Join(dir, fmt.Sprintf("pe-diff-%d.xml", seed))
	if err := os.WriteFile(path, xml, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(crm, "-x", path, "-S")
	// Its working copy goes here rather than to /var/lib/pacemaker/cib.
	cmd.Env = append(os.Environ(), "CIB_shadow_dir="+dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	// keep saves the CIB where it outlives the test, for a failure.
	keep := func() string {
		if !keepCIB {
			return path + " (removed after the test)"
		}
		p := filepath.Join(os.TempDir(), fmt.Sprintf("pe-diff-%d.xml", seed))
		if err := os.WriteFile(p, xml, 0o644); err != nil {
			return path + " (removed after the test)"
		}
		return p
	}
	// It exits non-zero when its simulated execution of the transition
	// fails (an ordering loop, say), which the summary does not depend
	// on; an error message, or no summary, means it rejected the CIB.
	if strings.Contains(stderr.String(), "error:") || !strings.Contains(string(out), "Transition Summary:") {
		return false, fmt.Sprintf("seed %d: crm_simulate rejects the generated CIB (a generator bug): %v\n%s\nCIB: %s", seed, err, stderr.String(), keep()), ""
	}
	want := transitionSummary(string(out))
	c, err := cib.Import(bytes.NewReader(xml))
	if err != nil {
		return false, fmt.Sprintf("seed %d: import: %v\nCIB: %s", seed, err, keep()), ""
	}
	res, err := Schedule(c, time.Unix(c.ExecutionDate, 0).UTC())
	if err != nil {
		return false, fmt.Sprintf("seed %d: schedule: %v\nCIB: %s", seed, err, keep()), ""
	}
	got := transitionSummary(res.String())
	if strings.Join(got, "\n") == strings.Join(want, "\n") {
		return true, "", ""
	}
	env := ""
	if f := os.Getenv("PE_DIFF_FEATURES"); f != "" {
		env = "PE_DIFF_FEATURES=" + f + " "
	}
	return false, fmt.Sprintf("seed %d: summaries differ (reproduce: %sPE_DIFF_SEED=%d go test ./pe -run Differential -v; CIB: %s)\npe:\n  %s\ncrm_simulate:\n  %s",
		seed, env, seed, keep(), strings.Join(got, "\n  "), strings.Join(want, "\n  ")), firstDifference(got, want)
}

// firstDifference names the first summary line that differs.
func firstDifference(got, want []string) string {
	for i := 0; i < len(got) || i < len(want); i++ {
		var g, w string
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if g != w {
			return fmt.Sprintf("pe %q, crm_simulate %q", g, w)
		}
	}
	return "same lines" // not reached
}
