package pe

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tachy-ha/tachy/cib"
)

var update = flag.Bool("update", false, "rewrite testdata/conformance-passing.txt with the tests that pass now")

// conformanceDir is Pacemaker 2.1.5's scheduler regression corpus, shared
// next to the repository and never copied into it.
var conformanceDir = filepath.Join("..", "..", "shared", "conformance", "pacemaker-2.1.5")

// lastCoreGroup ends the core groups (see TestConformance).
const lastCoreGroup = 29

const passingFile = "testdata/conformance-passing.txt"

type corpusTest struct {
	group, name, features, description string
}

func readIndex(t *testing.T) []corpusTest {
	f, err := os.Open(filepath.Join(conformanceDir, "index.tsv"))
	if err != nil {
		t.Skipf("no conformance corpus at %s: %v", conformanceDir, err)
	}
	defer f.Close()
	var out []corpusTest
	sc := bufio.NewScanner(f)
	for first := true; sc.Scan(); first = false {
		cols := strings.Split(sc.Text(), "\t")
		if first && len(cols) > 0 && cols[0] == "group" {
			continue
		}
		for len(cols) < 4 {
			cols = append(cols, "")
		}
		out = append(out, corpusTest{cols[0], cols[1], cols[2], cols[3]})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// transitionSummary extracts the lines of the "Transition Summary:"
// section, whitespace-normalised, blank lines dropped.
func transitionSummary(text string) []string { return section(text, "Transition Summary:") }

func readPassing(t *testing.T) map[string]bool {
	m := map[string]bool{}
	data, err := os.ReadFile(passingFile)
	if err != nil {
		if os.IsNotExist(err) {
			return m
		}
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			m[l] = true
		}
	}
	return m
}

// runCorpusTest schedules one corpus input and compares its summary.
func runCorpusTest(name string) (pass bool, got, want []string, err error) {
	data, err := os.ReadFile(filepath.Join(conformanceDir, "xml", name+".xml"))
	if err != nil {
		return false, nil, nil, err
	}
	expected, err := os.ReadFile(filepath.Join(conformanceDir, "summary", name+".summary"))
	if err != nil {
		return false, nil, nil, err
	}
	c, err := cib.Import(bytes.NewReader(data))
	if err != nil {
		return false, nil, nil, fmt.Errorf("import: %w", err)
	}
	res, err := ScheduleWith(c, corpusNow(c), Options{Sanitized: true})
	if err != nil {
		return false, nil, nil, err
	}
	got = transitionSummary(res.String())
	want = transitionSummary(string(expected))
	return strings.Join(got, "\n") == strings.Join(want, "\n"), got, want, nil
}

// corpusNow is the time crm_simulate schedules a corpus CIB at.
func corpusNow(c *cib.CIB) time.Time { return SimulationTime(c) }

func TestConformance(t *testing.T) {
	tests := readIndex(t)
	passing := readPassing(t)
	type tally struct{ pass, total int }
	groups := map[string]*tally{}
	var total tally
	var nowPassing, newlyPassing, regressed []string
	for _, ct := range tests {
		ok, got, want, err := runCorpusTest(ct.name)
		g := groups[ct.group]
		if g == nil {
			g = &tally{}
			groups[ct.group] = g
		}
		g.total++
		total.total++
		if ok {
			g.pass++
			total.pass++
			nowPassing = append(nowPassing, ct.name)
			if !passing[ct.name] {
				newlyPassing = append(newlyPassing, ct.name)
			}
			continue
		}
		if passing[ct.name] {
			regressed = append(regressed, ct.name)
			if err != nil {
				t.Errorf("%s used to pass: %v", ct.name, err)
			} else {
				t.Errorf("%s used to pass; summary now:\n  %s\nwant:\n  %s", ct.name,
					strings.Join(got, "\n  "), strings.Join(want, "\n  "))
			}
		} else if testing.Verbose() && os.Getenv("PE_SHOW_FAILURES") != "" {
			t.Logf("%s: got:\n  %s\nwant:\n  %s (err %v)", ct.name, strings.Join(got, "\n  "), strings.Join(want, "\n  "), err)
		}
	}
	names := make([]string, 0, len(groups))
	for g := range groups {
		names = append(names, g)
	}
	sort.Slice(names, func(i, j int) bool {
		if len(names[i]) != len(names[j]) {
			return len(names[i]) < len(names[j])
		}
		return names[i] < names[j]
	})
	var b strings.Builder
	// The index marks no core groups. Pacemaker's cts-scheduler lists the
	// basic scheduling tests first (placement, ordering, colocation,
	// failures, fencing, migration, clones, promotable clones, 0 to 29)
	// and the later features after them (utilization from 30, tickets,
	// templates, containers, guest and remote nodes, bundles), so tachy
	// calls groups 0-29 the core.
	var core tally
	fmt.Fprintf(&b, "conformance per group (pass/total):")
	for _, g := range names {
		fmt.Fprintf(&b, " %s:%d/%d", g, groups[g].pass, groups[g].total)
		if n, err := strconv.Atoi(g); err == nil && n <= lastCoreGroup {
			core.pass += groups[g].pass
			core.total += groups[g].total
		}
	}
	fmt.Fprintf(&b, "\nconformance core (groups 0-%d): %d/%d passing", lastCoreGroup, core.pass, core.total)
	fmt.Fprintf(&b, "\nconformance total: %d/%d passing", total.pass, total.total)
	t.Log(b.String())
	fmt.Println(b.String())
	if len(newlyPassing) > 0 && !*update {
		t.Logf("newly passing (run with -update to record): %s", strings.Join(newlyPassing, " "))
	}
	if *update {
		sort.Strings(nowPassing)
		content := "# Pacemaker 2.1.5 scheduler regression tests whose Transition Summary pe reproduces.\n" +
			"# Regenerate with: go test ./pe -run Conformance -update\n" +
			strings.Join(nowPassing, "\n") + "\n"
		if err := os.WriteFile(passingFile, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %d passing tests to %s", len(nowPassing), passingFile)
	}
	if len(regressed) > 0 {
		t.Errorf("%d listed tests no longer pass: %s", len(regressed), strings.Join(regressed, " "))
	}
	known := map[string]bool{}
	for _, ct := range tests {
		known[ct.name] = true
	}
	for name := range passing {
		if !known[name] {
			t.Errorf("%s is listed in %s but not in the corpus index", name, passingFile)
		}
	}
}
