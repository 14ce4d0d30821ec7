package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tachy-ha/tachy/cib"
	"github.com/tachy-ha/tachy/pe"
)

// PEOptions configures PE.
type PEOptions struct {
	Corpus   string // directory of CIB XML inputs (Pacemaker's scheduler corpus)
	Binary   string // the tachy binary timed as a whole process
	Repeats  int    // runs per input and tool; the fastest counts
	Profile  int    // crm_simulate -P repeats (-N), and in-process repeats of pe.Schedule
	Limit    int    // at most this many corpus inputs (0: all)
	Sizes    [][2]int
	Progress io.Writer
}

// PEResult compares tachy's scheduler with Pacemaker's crm_simulate on the
// same inputs, in one run.
type PEResult struct {
	Benchmark string    `json:"benchmark"`
	Started   time.Time `json:"started"`
	CRM       string    `json:"crm_simulate"`
	Inputs    int       `json:"inputs"`
	// Matching is how many inputs tachy's Transition Summary matches
	// Pacemaker's expected one for (from the corpus's summary directory);
	// the *_matching figures compare those inputs only, where both
	// schedulers did the same work.
	Matching int `json:"matching"`
	// Whole process: `tachy simulate -x F` against `crm_simulate -R -Q -x F`.
	Process         RatioResult `json:"process"`
	ProcessMatching RatioResult `json:"process_matching"`
	// Scheduling alone: pe.Schedule on an imported CIB, against the
	// per-input time crm_simulate -P DIR -N REPEATS prints.
	Schedule         RatioResult       `json:"schedule"`
	ScheduleMatching RatioResult       `json:"schedule_matching"`
	Generated        []GeneratedResult `json:"generated"`
}

// RatioResult is a per-input comparison: crm_simulate's time over tachy's.
type RatioResult struct {
	Compared      int     `json:"compared"`
	MedianRatio   float64 `json:"median_ratio"`
	MinRatio      float64 `json:"min_ratio"`
	TachyMedianMs float64 `json:"tachy_median_ms"`
	CRMMedianMs   float64 `json:"crm_median_ms"`
	Note          string  `json:"note,omitempty"`
}

// GeneratedResult is one generated cluster.
type GeneratedResult struct {
	Resources  int     `json:"resources"`
	Nodes      int     `json:"nodes"`
	ImportMs   float64 `json:"tachy_import_ms"`
	ScheduleMs float64 `json:"tachy_schedule_ms"`
	Actions    int     `json:"tachy_actions"`
	CRMProcMs  float64 `json:"crm_simulate_process_ms,omitempty"`
	CRMError   string  `json:"crm_simulate_error,omitempty"`
}

func (o PEOptions) logf(format string, args ...any) {
	if o.Progress != nil {
		fmt.Fprintf(o.Progress, "bench pe: "+format+"\n", args...)
	}
}

// PE runs the scheduler benchmark.
func PE(ctx context.Context, o PEOptions) (*PEResult, error) {
	crm, err := exec.LookPath("crm_simulate")
	if err != nil {
		return nil, fmt.Errorf("crm_simulate not found: apt-get install pacemaker-cli-utils")
	}
	res := &PEResult{Benchmark: "pe", Started: time.Now().UTC()}
	if v, err := exec.Command(crm, "--version").Output(); err == nil {
		res.CRM = strings.TrimSpace(strings.SplitN(string(v), "\n", 2)[0])
	}
	files, err := filepath.Glob(filepath.Join(o.Corpus, "*.xml"))
	if err != nil || len(files) == 0 {
		return nil, fmt.Errorf("no *.xml inputs in %s (give --corpus the scheduler corpus's xml directory)", o.Corpus)
	}
	slices.Sort(files)
	if o.Limit > 0 && len(files) > o.Limit {
		files = files[:o.Limit]
	}

	// Inputs both can schedule.
	type input struct {
		path  string
		doc   *cib.CIB
		match bool // tachy's summary is the expected one
	}
	var inputs []input
	for _, f := range files {
		doc, err := importFile(f)
		if err != nil {
			continue
		}
		r, _, err := pe.Simulation(doc)
		if err != nil {
			continue
		}
		in := input{path: f, doc: doc}
		want, err := os.ReadFile(filepath.Join(o.Corpus, "..", "summary", strings.TrimSuffix(filepath.Base(f), ".xml")+".summary"))
		if err == nil && slices.Equal(summaryLines(string(want)), summaryLines(r.String())) {
			in.match = true
			res.Matching++
		}
		inputs = append(inputs, in)
	}
	res.Inputs = len(inputs)
	o.logf("%d of %d inputs scheduled by tachy", len(inputs), len(files))

	// Whole process.
	var tp, cp, ratios []float64
	var tpm, cpm, ratiosm []float64
	for i, in := range inputs {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		t, err := fastest(o.Repeats, o.Binary, "simulate", "-x", in.path)
		if err != nil {
			continue
		}
		c, err := fastest(o.Repeats, crm, "-R", "-Q", "-x", in.path)
		if err != nil {
			continue
		}
		tp, cp, ratios = append(tp, t), append(cp, c), append(ratios, c/t)
		if in.match {
			tpm, cpm, ratiosm = append(tpm, t), append(cpm, c), append(ratiosm, c/t)
		}
		if i%100 == 0 {
			o.logf("process times: %d/%d", i, len(inputs))
		}
	}
	res.Process = ratioResult(tp, cp, ratios)
	res.ProcessMatching = ratioResult(tpm, cpm, ratiosm)

	// Scheduling alone. crm_simulate -P prints each input's total over -N
	// repeats with 10 ms resolution; enough repeats make that fine.
	dir, err := os.MkdirTemp("", "tachy-bench-pe")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	for _, in := range inputs {
		if err := os.Symlink(in.path, filepath.Join(dir, filepath.Base(in.path))); err != nil {
			return nil, err
		}
	}
	o.logf("crm_simulate -P with -N %d", o.Profile)
	crmTimes, err := crmProfile(ctx, crm, dir, o.Profile)
	if err != nil {
		return nil, err
	}
	var ts, cs []float64
	ratios = nil
	tpm, cpm, ratiosm = nil, nil, nil
	for _, in := range inputs {
		c, ok := crmTimes[filepath.Base(in.path)]
		if !ok || c <= 0 {
			continue
		}
		now := time.Unix(in.doc.ExecutionDate, 0).UTC()
		t0 := time.Now()
		for range o.Profile {
			pe.Schedule(in.doc, now)
		}
		t := float64(time.Since(t0).Nanoseconds()) / 1e6 / float64(o.Profile)
		ts, cs, ratios = append(ts, t), append(cs, c), append(ratios, c/t)
		if in.match {
			tpm, cpm, ratiosm = append(tpm, t), append(cpm, c), append(ratiosm, c/t)
		}
	}
	res.Schedule = ratioResult(ts, cs, ratios)
	res.ScheduleMatching = ratioResult(tpm, cpm, ratiosm)
	res.Schedule.Note = fmt.Sprintf("crm_simulate -P reports 10 ms per input over -N %d repeats: %.2f ms resolution; inputs it reported as 0 are left out", o.Profile, 10.0/float64(o.Profile))

	for _, sz := range o.Sizes {
		o.logf("generated: %d resources on %d nodes", sz[0], sz[1])
		g, err := generated(ctx, crm, sz[0], sz[1])
		if err != nil {
			return nil, err
		}
		res.Generated = append(res.Generated, g)
	}
	return res, nil
}

func importFile(path string) (*cib.CIB, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return cib.Import(f)
}

// fastest runs a command n times and returns its fastest wall time in ms.
func fastest(n int, name string, args ...string) (float64, error) {
	best := -1.0
	for range max(n, 1) {
		cmd := exec.Command(name, args...)
		t0 := time.Now()
		if err := cmd.Run(); err != nil {
			// crm_simulate exits non-zero for some corpus inputs on purpose
			// (invalid configurations): what counts is that it ran.
			if _, ok := err.(*exec.ExitError); !ok {
				return 0, err
			}
		}
		if d := float64(time.Since(t0).Nanoseconds()) / 1e6; best < 0 || d < best {
			best = d
		}
	}
	return best, nil
}

var profileLine = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`Testing (\S+) \.\.\. ([0-9.]+) secs`) })

// crmProfile runs crm_simulate -P and returns ms per schedule by file name.
func crmProfile(ctx context.Context, crm, dir string, n int) (map[string]float64, error) {
	out, err := exec.CommandContext(ctx, crm, "-P", dir, "-N", strconv.Itoa(n)).CombinedOutput()
	if err != nil && len(out) == 0 {
		return nil, fmt.Errorf("crm_simulate -P: %w", err)
	}
	times := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if m := profileLine().FindStringSubmatch(sc.Text()); m != nil {
			s, _ := strconv.ParseFloat(m[2], 64)
			times[filepath.Base(m[1])] = s * 1000 / float64(n)
		}
	}
	return times, nil
}

func ratioResult(tachy, crm, ratios []float64) RatioResult {
	r := RatioResult{Compared: len(ratios)}
	if len(ratios) == 0 {
		return r
	}
	r.MedianRatio = round3(median(ratios))
	r.MinRatio = round3(slices.Min(ratios))
	r.TachyMedianMs = round3(median(tachy))
	r.CRMMedianMs = round3(median(crm))
	return r
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0 // a test not run (bench volume --tests)
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// GenerateCIB writes a cluster of nodes online nodes and resources
// primitives, each with a location preference for a random node, one in
// ten colocated with the previous one, a quarter already running (with
// their probe and start in the history) so that there are moves, stops and
// starts to plan. The seed makes it repeatable.
func GenerateCIB(w io.Writer, resources, nodes int, seed uint64) error {
	rng := rand.New(rand.NewPCG(seed, seed))
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, `<cib epoch="1" num_updates="0" admin_epoch="0" validate-with="pacemaker-3.7" have-quorum="1" dc-uuid="1" execution-date="1700000000">
  <configuration>
    <crm_config><cluster_property_set id="opts"><nvpair id="opts-stonith" name="stonith-enabled" value="false"/></cluster_property_set></crm_config>
    <nodes>
`)
	for n := 1; n <= nodes; n++ {
		fmt.Fprintf(bw, "      <node id=\"%d\" uname=\"node%d\"/>\n", n, n)
	}
	fmt.Fprintf(bw, "    </nodes>\n    <resources>\n")
	for r := 1; r <= resources; r++ {
		fmt.Fprintf(bw, `      <primitive id="r%d" class="ocf" provider="heartbeat" type="Dummy"><operations><op id="r%d-mon" name="monitor" interval="10s"/></operations></primitive>`+"\n", r, r)
	}
	fmt.Fprintf(bw, "    </resources>\n    <constraints>\n")
	for r := 1; r <= resources; r++ {
		fmt.Fprintf(bw, "      <rsc_location id=\"l%d\" rsc=\"r%d\" node=\"node%d\" score=\"%d\"/>\n", r, r, rng.IntN(nodes)+1, rng.IntN(100)+1)
		if r > 1 && r%10 == 0 {
			fmt.Fprintf(bw, "      <rsc_colocation id=\"c%d\" rsc=\"r%d\" with-rsc=\"r%d\" score=\"INFINITY\"/>\n", r, r, r-1)
		}
	}
	fmt.Fprintf(bw, "    </constraints>\n  </configuration>\n  <status>\n")
	running := map[int][]int{}
	for r := 1; r <= resources; r++ {
		if rng.IntN(4) == 0 {
			n := rng.IntN(nodes) + 1
			running[n] = append(running[n], r)
		}
	}
	for n := 1; n <= nodes; n++ {
		fmt.Fprintf(bw, "    <node_state id=\"%d\" uname=\"node%d\" in_ccm=\"true\" crmd=\"online\" join=\"member\" expected=\"member\">\n      <lrm id=\"%d\"><lrm_resources>\n", n, n, n)
		for _, r := range running[n] {
			fmt.Fprintf(bw, `        <lrm_resource id="r%d" class="ocf" provider="heartbeat" type="Dummy">
          <lrm_rsc_op id="r%d_last_0" operation_key="r%d_start_0" operation="start" crm-debug-origin="bench" crm_feature_set="3.16.2" transition-key="1:1:0:bench" transition-magic="0:0;1:1:0:bench" call-id="%d" rc-code="0" op-status="0" interval="0" last-rc-change="1699999000" exec-time="10" queue-time="0" op-digest="x"/>
        </lrm_resource>
`, r, r, r, r)
		}
		fmt.Fprintf(bw, "      </lrm_resources></lrm>\n    </node_state>\n")
	}
	fmt.Fprintf(bw, "  </status>\n</cib>\n")
	return bw.Flush()
}

func generated(ctx context.Context, crm string, resources, nodes int) (GeneratedResult, error) {
	g := GeneratedResult{Resources: resources, Nodes: nodes}
	f, err := os.CreateTemp("", "tachy-bench-pe-*.xml")
	if err != nil {
		return g, err
	}
	defer os.Remove(f.Name())
	if err := GenerateCIB(f, resources, nodes, 1); err != nil {
		f.Close()
		return g, err
	}
	f.Close()
	t0 := time.Now()
	doc, err := importFile(f.Name())
	if err != nil {
		return g, fmt.Errorf("generated CIB: %w", err)
	}
	g.ImportMs = round3(float64(time.Since(t0).Nanoseconds()) / 1e6)
	t0 = time.Now()
	r, _, err := pe.Simulation(doc)
	if err != nil {
		return g, fmt.Errorf("generated CIB: %w", err)
	}
	g.ScheduleMs = round3(float64(time.Since(t0).Nanoseconds()) / 1e6)
	g.Actions = len(r.Actions)
	cctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	t0 = time.Now()
	if out, err := exec.CommandContext(cctx, crm, "-R", "-Q", "-x", f.Name()).CombinedOutput(); err != nil && cctx.Err() != nil {
		g.CRMError = "did not finish in 10 minutes"
	} else if err != nil {
		if _, ok := err.(*exec.ExitError); !ok {
			g.CRMError = strings.TrimSpace(string(out))
		}
	}
	if g.CRMError == "" {
		g.CRMProcMs = round3(float64(time.Since(t0).Nanoseconds()) / 1e6)
	}
	return g, nil
}

// summaryLines is the "Transition Summary:" section of crm_simulate's (or
// tachy simulate's) output, whitespace-normalised.
func summaryLines(text string) []string {
	_, after, ok := strings.Cut(text, "Transition Summary:\n")
	if !ok {
		return nil
	}
	var out []string
	for _, line := range strings.Split(after, "\n") {
		if line != "" && line[0] != ' ' && line[0] != '\t' {
			break // the next section
		}
		if f := strings.Fields(line); len(f) > 0 {
			out = append(out, strings.Join(f, " "))
		}
	}
	return out
}
