package lrmd

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const systemOCF = "/usr/lib/ocf"

var (
	heartbeatDummy  = Agent{Class: "ocf", Provider: "heartbeat", Type: "Dummy"}
	pacemakerDummy  = Agent{Class: "ocf", Provider: "pacemaker", Type: "Dummy"}
	stateful        = Agent{Class: "ocf", Provider: "pacemaker", Type: "Stateful"}
	ipaddr2         = Agent{Class: "ocf", Provider: "heartbeat", Type: "IPaddr2"}
	sleeper         = Agent{Class: "ocf", Provider: "test", Type: "Sleeper"}
	needy           = Agent{Class: "ocf", Provider: "test", Type: "Needy"}
	fakesvc         = Agent{Class: "lsb", Type: "fakesvc"}
	testOCFRoot, _  = filepath.Abs("testdata/ocf")
	testInitDir, _  = filepath.Abs("testdata/init.d")
	errResultsGone  = errors.New("results channel closed")
	shortGrace      = 300 * time.Millisecond
	agentsAvailable = func(t *testing.T, agents ...Agent) {
		t.Helper()
		for _, a := range agents {
			p := filepath.Join(systemOCF, "resource.d", a.Provider, a.Type)
			if _, err := os.Stat(p); err != nil {
				t.Skipf("%s not installed (%s): apt-get install resource-agents pacemaker-resource-agents", a, p)
			}
		}
	}
)

// newTestExecutor builds an executor whose agents keep state in a temp dir.
func newTestExecutor(t *testing.T, cfg Config) *Executor {
	t.Helper()
	if cfg.RscTmp == "" {
		cfg.RscTmp = t.TempDir()
	}
	if cfg.KillGrace == 0 {
		cfg.KillGrace = shortGrace
	}
	e := New(cfg)
	t.Cleanup(e.Close)
	return e
}

func run(t *testing.T, e *Executor, op Op) Result {
	t.Helper()
	r, err := e.Exec(context.Background(), op)
	if err != nil {
		t.Fatalf("%s %s: %v", op.Resource, op.Action, err)
	}
	return r
}

func expectRC(t *testing.T, r Result, rc RC) {
	t.Helper()
	if r.Status != StatusDone || r.RC != rc {
		t.Fatalf("%s: got %s/%s (%q, stderr %q), want %s/done", r.Key, r.RC, r.Status, r.ExitReason, r.Stderr, rc)
	}
}

func TestHeartbeatDummyLifecycle(t *testing.T) {
	agentsAvailable(t, heartbeatDummy)
	e := newTestExecutor(t, Config{})
	state := filepath.Join(t.TempDir(), "dummy.state")
	op := func(action string) Op {
		return Op{Resource: "d1", Agent: heartbeatDummy, Action: action, Params: map[string]string{"state": state}}
	}
	expectRC(t, run(t, e, op("monitor")), NotRunning) // probe
	r := run(t, e, op("start"))
	expectRC(t, r, OK)
	if len(r.Warnings) != 0 {
		t.Errorf("start warnings: %v", r.Warnings)
	}
	if _, err := os.Stat(state); err != nil {
		t.Fatalf("start did not create the state file: %v", err)
	}
	expectRC(t, run(t, e, op("monitor")), OK)
	expectRC(t, run(t, e, op("stop")), OK)
	expectRC(t, run(t, e, op("monitor")), NotRunning)
	if r.Key != "d1_start_0" || r.CallID == 0 || r.ExecTime <= 0 || r.LastRun.IsZero() {
		t.Errorf("start record: key %q call %d exec %v run %v", r.Key, r.CallID, r.ExecTime, r.LastRun)
	}
	if want := OpDigest(map[string]string{"state": state}); r.Digest != want {
		t.Errorf("digest %s, want %s", r.Digest, want)
	}
	// Call ids increase.
	r2 := run(t, e, op("monitor"))
	if r2.CallID <= r.CallID {
		t.Errorf("call ids %d then %d", r.CallID, r2.CallID)
	}
}

func TestPacemakerDummyLifecycle(t *testing.T) {
	agentsAvailable(t, pacemakerDummy)
	e := newTestExecutor(t, Config{})
	state := filepath.Join(t.TempDir(), "pdummy.state")
	op := func(action string) Op {
		return Op{Resource: "pd", Agent: pacemakerDummy, Action: action, Params: map[string]string{"state": state}}
	}
	expectRC(t, run(t, e, op("start")), OK)
	expectRC(t, run(t, e, op("monitor")), OK)
	expectRC(t, run(t, e, op("stop")), OK)
	expectRC(t, run(t, e, op("monitor")), NotRunning)
}

func TestStatefulPromoteDemoteAndEnvironment(t *testing.T) {
	agentsAvailable(t, stateful)
	rsctmp := t.TempDir()
	e := newTestExecutor(t, Config{RscTmp: rsctmp})
	dir := t.TempDir()
	state, envfile := filepath.Join(dir, "stateful.state"), filepath.Join(dir, "env")
	op := func(action string) Op {
		return Op{
			Resource: "ms:0", Agent: stateful, Action: action, Timeout: 15 * time.Second,
			Params: map[string]string{"state": state, "envfile": envfile},
			Meta: map[string]string{"clone": "0", "clone-max": "2", "clone-node-max": "1",
				"notify": "true", "globally-unique": "false", "promoted-max": "1"},
		}
	}
	expectRC(t, run(t, e, op("monitor")), NotRunning)
	expectRC(t, run(t, e, op("start")), OK)
	expectRC(t, run(t, e, op("monitor")), OK)
	expectRC(t, run(t, e, op("promote")), OK)
	r := run(t, e, op("monitor"))
	expectRC(t, r, RunningPromoted)
	if r.Failed() {
		t.Errorf("promoted probe classified as failure")
	}
	expectRC(t, run(t, e, op("demote")), OK)
	expectRC(t, run(t, e, op("monitor")), OK)

	// The environment the agent saw on its last call (a monitor).
	env, err := os.ReadFile(envfile)
	if err != nil {
		t.Fatal(err)
	}
	last := string(env)
	if i := strings.LastIndex(last, "### monitor"); i >= 0 {
		last = last[i:]
	}
	for _, want := range []string{
		"OCF_ROOT=" + systemOCF, "OCF_RA_VERSION_MAJOR=1", "OCF_RA_VERSION_MINOR=0",
		"OCF_RESOURCE_INSTANCE=ms:0", "OCF_RESOURCE_TYPE=Stateful", "OCF_RESOURCE_PROVIDER=pacemaker",
		"OCF_RESKEY_state=" + state, "OCF_RESKEY_CRM_meta_clone=0", "OCF_RESKEY_CRM_meta_clone_max=2",
		"OCF_RESKEY_CRM_meta_clone_node_max=1", "OCF_RESKEY_CRM_meta_notify=true",
		"OCF_RESKEY_CRM_meta_globally_unique=false", "OCF_RESKEY_CRM_meta_promoted_max=1",
		"OCF_RESKEY_CRM_meta_interval=0", "OCF_RESKEY_CRM_meta_timeout=15000",
		"OCF_RESKEY_CRM_meta_name=monitor", "HA_RSCTMP=" + rsctmp,
		"OCF_EXIT_REASON_PREFIX=ocf-exit-reason:",
	} {
		if !strings.Contains(last, "\n"+want+"\n") {
			t.Errorf("agent environment lacks %s:\n%s", want, last)
		}
	}

	// Stateful's test hook: a state.rc file makes monitor fail with an
	// exit reason.
	if err := os.WriteFile(state+".rc", []byte("1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r = run(t, e, op("monitor"))
	expectRC(t, r, ErrGeneric)
	if r.ExitReason != "1 GB redirected to /dev/null" {
		t.Errorf("exit reason %q", r.ExitReason)
	}
	os.Remove(state + ".rc")
	expectRC(t, run(t, e, op("stop")), OK)
	expectRC(t, run(t, e, op("monitor")), NotRunning)
}

func TestMissingRequiredParameterRejected(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "ran")
	e := newTestExecutor(t, Config{OCFRoot: testOCFRoot, Env: []string{"NEEDY_MARKER=" + marker}})
	r := run(t, e, Op{Resource: "n", Agent: needy, Action: "start", Params: map[string]string{"count": "x7", "flag": "maybe", "bogus": "1", "mode": "c"}})
	if r.RC != ErrConfigured || r.Status != StatusErrorFatal || r.Severity() != Fatal {
		t.Fatalf("got %s/%s, want OCF_ERR_CONFIGURED/fatal error", r.RC, r.Status)
	}
	for _, want := range []string{`required parameter "target" of ocf:test:Needy is missing`,
		`parameter "count" of ocf:test:Needy must be an integer`, `parameter "flag" of ocf:test:Needy must be a boolean`} {
		if !strings.Contains(r.ExitReason, want) {
			t.Errorf("exit reason %q lacks %q", r.ExitReason, want)
		}
	}
	if len(r.Warnings) != 2 || !strings.Contains(r.Warnings[0], `"bogus"`) || !strings.Contains(r.Warnings[1], `"c", not one of a, b`) {
		t.Errorf("warnings %q", r.Warnings)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("the agent ran despite the missing parameter")
	}
	// With the parameter it runs, and the last exit reason wins.
	r = run(t, e, Op{Resource: "n", Agent: needy, Action: "start", Params: map[string]string{"target": "t1", "count": "4", "flag": "yes"}})
	expectRC(t, r, OK)
	if r.ExitReason != "Needy says t1 is fine" {
		t.Errorf("exit reason %q", r.ExitReason)
	}
	if b, _ := os.ReadFile(marker); string(b) != "start\n" {
		t.Errorf("marker %q", b)
	}
	// Only start is validated.
	expectRC(t, run(t, e, Op{Resource: "n", Agent: needy, Action: "stop"}), OK)
}

func TestMissingRequiredParameterRealAgent(t *testing.T) {
	agentsAvailable(t, ipaddr2)
	e := newTestExecutor(t, Config{})
	r := run(t, e, Op{Resource: "vip", Agent: ipaddr2, Action: "start", Params: map[string]string{"cidr_netmask": "24"}})
	if r.RC != ErrConfigured || r.Status != StatusErrorFatal {
		t.Fatalf("got %s/%s", r.RC, r.Status)
	}
	if !strings.Contains(r.ExitReason, `required parameter "ip" of ocf:heartbeat:IPaddr2 is missing`) {
		t.Errorf("exit reason %q", r.ExitReason)
	}
	if r.Stdout != "" || r.Stderr != "" || r.ExecTime != 0 {
		t.Errorf("the agent ran: %q %q %v", r.Stdout, r.Stderr, r.ExecTime)
	}
}

func TestUnknownAgentNotInstalled(t *testing.T) {
	e := newTestExecutor(t, Config{OCFRoot: testOCFRoot, InitDir: testInitDir, Builtins: NewRegistry()})
	for _, a := range []Agent{
		{Class: "ocf", Provider: "heartbeat", Type: "NoSuchAgent"},
		{Class: "ocf", Provider: "nosuchprovider", Type: "Dummy"},
		{Class: "lsb", Type: "nosuchscript"},
		{Class: "tachy", Type: "nosuchbuiltin"},
		{Class: "ocf", Provider: "tachy", Type: "nosuchbuiltin"},
	} {
		for _, action := range []string{"start", "monitor"} {
			r := run(t, e, Op{Resource: "x", Agent: a, Action: action})
			if r.RC != ErrInstalled || r.Status != StatusNotInstalled || r.Severity() != Hard {
				t.Errorf("%s %s: %s/%s", a, action, r.RC, r.Status)
			}
			if !strings.Contains(r.ExitReason, a.String()+" is not installed") {
				t.Errorf("%s: exit reason %q", a, r.ExitReason)
			}
		}
	}
	if _, err := e.Metadata(context.Background(), Agent{Class: "ocf", Provider: "heartbeat", Type: "NoSuchAgent"}); err == nil {
		t.Error("meta-data of a missing agent")
	}
	r := run(t, e, Op{Resource: "x", Agent: Agent{Class: "systemd", Type: "foo"}, Action: "start"})
	if r.Status != StatusNotSupported {
		t.Errorf("systemd: %s/%s", r.RC, r.Status)
	}
	if _, err := e.Submit(Op{Resource: "x", Agent: Agent{Class: "ocf", Provider: "..", Type: "x"}, Action: "start"}); err == nil {
		t.Error("path traversal accepted")
	}
}

func TestTimeoutKillsProcessGroup(t *testing.T) {
	for _, ignoreTerm := range []bool{false, true} {
		t.Run("ignore_term="+strconv.FormatBool(ignoreTerm), func(t *testing.T) {
			e := newTestExecutor(t, Config{OCFRoot: testOCFRoot, KillGrace: shortGrace})
			pidfile := filepath.Join(t.TempDir(), "pid")
			params := map[string]string{"pidfile": pidfile}
			if ignoreTerm {
				params["ignore_term"] = "1"
			}
			timeout := 400 * time.Millisecond
			start := time.Now()
			r := run(t, e, Op{Resource: "s", Agent: sleeper, Action: "start", Timeout: timeout, Params: params})
			took := time.Since(start)
			if r.Status != StatusTimeout || r.RC != ErrGeneric || r.Severity() != Soft {
				t.Fatalf("got %s/%s", r.RC, r.Status)
			}
			if !strings.Contains(r.ExitReason, "did not complete within 400ms") {
				t.Errorf("exit reason %q", r.ExitReason)
			}
			limit := timeout + shortGrace + 700*time.Millisecond
			if took > limit || took < timeout {
				t.Errorf("took %v; want between %v and %v", took, timeout, limit)
			}
			if ignoreTerm && took < timeout+shortGrace {
				t.Errorf("took %v: SIGKILL before the grace period was over", took)
			}
			if !strings.Contains(r.Stderr, "sleeping in") {
				t.Errorf("stderr %q", r.Stderr)
			}
			b, err := os.ReadFile(pidfile)
			if err != nil {
				t.Fatal(err)
			}
			pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
			waitGone(t, pid)
		})
	}
}

// waitGone fails unless pid exits (or is a zombie waiting for init) soon.
func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			return
		}
		if st, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); err == nil {
			if f := strings.Fields(string(st)); len(f) > 2 && f[2] == "Z" {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d (the agent's child) is still running", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestCancelRunningOperation(t *testing.T) {
	e := newTestExecutor(t, Config{OCFRoot: testOCFRoot})
	pidfile := filepath.Join(t.TempDir(), "pid")
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		// The shell creates the file before it writes the pid: wait
		// for the pid itself.
		for i := 0; i < 200; i++ {
			if b, err := os.ReadFile(pidfile); err == nil && strings.HasSuffix(string(b), "\n") {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
	}()
	r, err := e.Exec(ctx, Op{Resource: "s", Agent: sleeper, Action: "start", Timeout: 10 * time.Second, Params: map[string]string{"pidfile": pidfile}})
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != StatusCancelled || r.Failed() {
		t.Fatalf("got %s/%s", r.RC, r.Status)
	}
	b, _ := os.ReadFile(pidfile)
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if pid <= 0 {
		t.Fatalf("the agent's child wrote no pid (%q)", b)
	}
	waitGone(t, pid)
}

// collector gathers OnResult's results.
type collector struct {
	mu sync.Mutex
	rs []Result
	ch chan Result
}

func newCollector() *collector { return &collector{ch: make(chan Result, 1000)} }

func (c *collector) add(r Result) {
	c.mu.Lock()
	c.rs = append(c.rs, r)
	c.mu.Unlock()
	c.ch <- r
}

// next waits for the next result matching key.
func (c *collector) next(t *testing.T, key string, within time.Duration) Result {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case r := <-c.ch:
			if r.Key == key {
				return r
			}
		case <-deadline:
			t.Fatalf("no result for %s within %v", key, within)
		}
	}
}

func TestRecurringMonitorNoticesFailure(t *testing.T) {
	agentsAvailable(t, heartbeatDummy)
	for _, mode := range []ReportMode{ReportAll, ReportChanges} {
		t.Run(map[ReportMode]string{ReportAll: "all", ReportChanges: "changes"}[mode], func(t *testing.T) {
			c := newCollector()
			e := newTestExecutor(t, Config{OnResult: c.add, Report: mode})
			state := filepath.Join(t.TempDir(), "dummy.state")
			params := map[string]string{"state": state}
			expectRC(t, run(t, e, Op{Resource: "d", Agent: heartbeatDummy, Action: "start", Params: params}), OK)
			interval := 100 * time.Millisecond
			mon := Op{Resource: "d", Agent: heartbeatDummy, Action: "monitor", Interval: interval, Timeout: 10 * time.Second, Params: params}
			callID, err := e.Submit(mon)
			if err != nil {
				t.Fatal(err)
			}
			key := "d_monitor_100"
			first := c.next(t, key, 10*time.Second)
			expectRC(t, first, OK)
			if first.CallID != callID {
				t.Errorf("call id %d, want %d", first.CallID, callID)
			}
			// Let it run a few more times while healthy.
			time.Sleep(8 * interval)
			if err := os.Remove(state); err != nil {
				t.Fatal(err)
			}
			var fail Result
			for {
				r := c.next(t, key, 10*time.Second)
				if r.RC == NotRunning {
					fail = r
					break
				}
				expectRC(t, r, OK)
			}
			if fail.Status != StatusDone || fail.Severity() != Soft || fail.ExitReason != "No process state file found" {
				t.Errorf("failure: %s/%s %q severity %s", fail.RC, fail.Status, fail.ExitReason, fail.Severity())
			}
			if fail.CallID != callID || !fail.LastRCChange.After(first.LastRCChange) || fail.Interval != interval {
				t.Errorf("failure record: call %d, rc change %v after %v, interval %v", fail.CallID, fail.LastRCChange, first.LastRCChange, fail.Interval)
			}
			if want := OpDigest(map[string]string{"state": state, "CRM_meta_interval": "100", "CRM_meta_timeout": "10000"}); fail.Digest != want {
				t.Errorf("digest %s, want %s", fail.Digest, want)
			}
			// A second failure is reported too (every failure counts).
			again := c.next(t, key, 10*time.Second)
			expectRC(t, again, NotRunning)
			if again.LastRCChange != fail.LastRCChange {
				t.Errorf("last-rc-change moved without a change: %v, %v", fail.LastRCChange, again.LastRCChange)
			}
			if !e.Cancel("d", "monitor", interval) {
				t.Fatal("cancel found no monitor")
			}
			for {
				r := c.next(t, key, 5*time.Second)
				if r.Status == StatusCancelled {
					break
				}
				expectRC(t, r, NotRunning)
			}
			c.mu.Lock()
			all := append([]Result(nil), c.rs...)
			c.mu.Unlock()
			if e.Cancel("d", "monitor", interval) {
				t.Error("cancelled twice")
			}
			if len(e.Active()) != 0 {
				t.Errorf("still active: %v", e.Active())
			}
			oks := 0
			for _, r := range all {
				if r.Key == key && r.RC == OK && r.Status == StatusDone {
					oks++
				}
			}
			if mode == ReportChanges && oks != 1 {
				t.Errorf("ReportChanges reported %d successes, want 1", oks)
			}
			if mode == ReportAll && oks < 3 {
				t.Errorf("ReportAll reported %d successes, want several", oks)
			}
		})
	}
}

func TestConcurrencyLimit(t *testing.T) {
	c := newCollector()
	e := newTestExecutor(t, Config{OCFRoot: testOCFRoot, MaxConcurrent: 2, OnResult: c.add})
	const n = 6
	for i := 0; i < n; i++ {
		if _, err := e.Submit(Op{Resource: "r" + strconv.Itoa(i), Agent: sleeper, Action: "start", Params: map[string]string{"seconds": "0.3"}}); err != nil {
			t.Fatal(err)
		}
	}
	// And three on one resource, which run one after the other.
	for i := 0; i < 3; i++ {
		if _, err := e.Submit(Op{Resource: "same", Agent: sleeper, Action: "start", Params: map[string]string{"seconds": "0.1"}}); err != nil {
			t.Fatal(err)
		}
	}
	var rs []Result
	for len(rs) < n+3 {
		select {
		case r := <-c.ch:
			rs = append(rs, r)
		case <-time.After(20 * time.Second):
			t.Fatalf("only %d results", len(rs))
		}
	}
	type iv struct{ a, b time.Time }
	var ivs []iv
	queued := 0
	for _, r := range rs {
		expectRC(t, r, OK)
		ivs = append(ivs, iv{r.LastRun, r.LastRun.Add(r.ExecTime)})
		if r.QueueTime > 200*time.Millisecond {
			queued++
		}
	}
	peak := 0
	for _, x := range ivs {
		k := 0
		for _, y := range ivs {
			if !y.a.After(x.a) && y.b.After(x.a) {
				k++
			}
		}
		peak = max(peak, k)
	}
	if peak != 2 {
		t.Errorf("peak concurrency %d, want 2 (the limit, reached)", peak)
	}
	if queued == 0 {
		t.Error("no operation waited in the queue")
	}
}

func TestSameResourceSerialised(t *testing.T) {
	c := newCollector()
	e := newTestExecutor(t, Config{OCFRoot: testOCFRoot, MaxConcurrent: 4, OnResult: c.add})
	actions := []string{"start", "monitor", "stop"}
	for _, a := range actions {
		if _, err := e.Submit(Op{Resource: "one", Agent: sleeper, Action: a, Params: map[string]string{"seconds": "0.2"}}); err != nil {
			t.Fatal(err)
		}
	}
	var rs []Result
	for len(rs) < 3 {
		select {
		case r := <-c.ch:
			expectRC(t, r, OK)
			rs = append(rs, r)
		case <-time.After(20 * time.Second):
			t.Fatal("timed out")
		}
	}
	for i, r := range rs {
		if r.Action != actions[i] {
			t.Errorf("result %d is %s, want %s (submission order)", i, r.Action, actions[i])
		}
		if i > 0 && r.LastRun.Before(rs[i-1].LastRun.Add(rs[i-1].ExecTime)) {
			t.Errorf("%s started before %s ended", r.Action, rs[i-1].Action)
		}
	}
}

func TestCancelPending(t *testing.T) {
	c := newCollector()
	e := newTestExecutor(t, Config{OCFRoot: testOCFRoot, MaxConcurrent: 1, OnResult: c.add})
	marker := filepath.Join(t.TempDir(), "pid")
	running := filepath.Join(t.TempDir(), "a-pid")
	if _, err := e.Submit(Op{Resource: "a", Agent: sleeper, Action: "start", Params: map[string]string{"seconds": "0.5", "pidfile": running}}); err != nil {
		t.Fatal(err)
	}
	// b must wait behind a for the only slot: a is running before b
	// is submitted (the executor may start either of two queued ops).
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if _, err := os.Stat(running); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a did not start")
		}
	}
	if _, err := e.Submit(Op{Resource: "b", Agent: sleeper, Action: "start", Params: map[string]string{"pidfile": marker}}); err != nil {
		t.Fatal(err)
	}
	if !e.Cancel("b", "start", 0) {
		t.Fatal("pending op not found")
	}
	r := c.next(t, "b_start_0", 5*time.Second)
	if r.Status != StatusCancelled || r.ExecTime != 0 {
		t.Errorf("got %s/%s exec %v", r.RC, r.Status, r.ExecTime)
	}
	expectRC(t, c.next(t, "a_start_0", 5*time.Second), OK)
	if _, err := os.Stat(marker); err == nil {
		t.Error("cancelled pending operation ran")
	}
}

func TestLSBInitScript(t *testing.T) {
	state := filepath.Join(t.TempDir(), "fakesvc")
	e := newTestExecutor(t, Config{InitDir: testInitDir, Env: []string{"FAKESVC_STATE=" + state}})
	op := func(action string) Op { return Op{Resource: "svc", Agent: fakesvc, Action: action} }
	expectRC(t, run(t, e, op("monitor")), NotRunning) // status 3
	expectRC(t, run(t, e, op("start")), OK)
	expectRC(t, run(t, e, op("monitor")), OK)
	expectRC(t, run(t, e, op("status")), OK)
	if err := os.WriteFile(state, []byte("dead\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	expectRC(t, run(t, e, op("monitor")), NotRunning) // status 1: dead, pid file left
	expectRC(t, run(t, e, op("stop")), OK)
	expectRC(t, run(t, e, op("reload")), ErrUnimplemented) // exit 3 outside status
	md, err := e.Metadata(context.Background(), fakesvc)
	if err != nil {
		t.Fatal(err)
	}
	if md.ShortDesc != "A fake service for tests" || md.Action("status") == nil || len(md.Parameters) != 0 {
		t.Errorf("LSB meta-data: %+v", md)
	}
	if !strings.Contains(md.LongDesc, `"running", "dead" or absent.`) {
		t.Errorf("long description %q", md.LongDesc)
	}
}

func TestLSBToOCF(t *testing.T) {
	cases := []struct {
		action string
		status int
		want   RC
	}{
		{"status", 0, OK}, {"status", 1, NotRunning}, {"status", 2, NotRunning}, {"status", 3, NotRunning},
		{"status", 4, ErrGeneric}, {"status", 150, ErrInstalled}, {"status", 151, ErrPerm},
		{"monitor", 3, NotRunning}, {"start", 3, ErrUnimplemented}, {"start", 5, ErrInstalled},
		{"stop", 7, NotRunning}, {"start", 8, ErrGeneric}, {"start", -1, ErrGeneric},
	}
	for _, c := range cases {
		if got := LSBToOCF(c.action, c.status); got != c.want {
			t.Errorf("LSBToOCF(%s, %d) = %s, want %s", c.action, c.status, got, c.want)
		}
	}
}

func TestMetadataOfRealAgents(t *testing.T) {
	agentsAvailable(t, heartbeatDummy, stateful, ipaddr2)
	e := newTestExecutor(t, Config{})
	md, err := e.Metadata(context.Background(), heartbeatDummy)
	if err != nil {
		t.Fatal(err)
	}
	st := md.Param("state")
	if md.Name != "Dummy" || st == nil || !st.Unique || st.Type != "string" || !st.HasDefault || md.Param("fake").Default != "dummy" {
		t.Errorf("Dummy meta-data: %+v", md)
	}
	if a := md.Action("monitor"); a == nil || a.Timeout != 20*time.Second || a.Interval != 10*time.Second {
		t.Errorf("Dummy monitor action: %+v", a)
	}
	md2, _ := e.Metadata(context.Background(), heartbeatDummy)
	if md2 != md {
		t.Error("meta-data not cached")
	}
	md, err = e.Metadata(context.Background(), ipaddr2)
	if err != nil {
		t.Fatal(err)
	}
	if p := md.Param("ip"); p == nil || !p.Required {
		t.Errorf("IPaddr2 ip: %+v", p)
	}
	md, err = e.Metadata(context.Background(), stateful)
	if err != nil {
		t.Fatal(err)
	}
	if p := md.Param("envfile"); p == nil || !p.Reloadable || md.Action("promote") == nil {
		t.Errorf("Stateful: %+v", md)
	}
}

// TestAllInstalledAgentsMetadata parses the meta-data of every OCF agent
// installed (the real-world corpus for the parser).
func TestAllInstalledAgentsMetadata(t *testing.T) {
	if testing.Short() {
		t.Skip("runs every installed agent's meta-data")
	}
	dirs, _ := filepath.Glob(filepath.Join(systemOCF, "resource.d", "*", "*"))
	if len(dirs) == 0 {
		t.Skip("no OCF agents installed")
	}
	e := newTestExecutor(t, Config{MaxConcurrent: 2, MetadataTimeout: 10 * time.Second})
	parsed, failed := 0, 0
	for _, p := range dirs {
		st, err := os.Stat(p)
		if err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
			continue
		}
		a := Agent{Class: "ocf", Provider: filepath.Base(filepath.Dir(p)), Type: filepath.Base(p)}
		if a.check() != nil {
			continue
		}
		if _, err := e.Metadata(context.Background(), a); err != nil {
			failed++
			t.Logf("%s: %v", a, err)
			continue
		}
		parsed++
	}
	t.Logf("meta-data of %d installed agents parsed, %d failed", parsed, failed)
	if parsed == 0 || failed*20 > parsed {
		t.Errorf("%d parsed, %d failed", parsed, failed)
	}
}

func TestOutputBounded(t *testing.T) {
	b := newBoundedBuffer(10)
	for i := 0; i < 100; i++ {
		b.Write([]byte{byte('a' + i%26)})
	}
	s := b.String()
	if !strings.HasPrefix(s, "abcde\n[... 90 bytes dropped ...]\n") || !strings.HasSuffix(s, "rstuv") {
		t.Errorf("bounded buffer: %q", s)
	}
	b = newBoundedBuffer(10)
	b.Write([]byte("0123456789"))
	if b.String() != "0123456789" {
		t.Errorf("exact fill: %q", b.String())
	}
}

func TestExitReasonParsing(t *testing.T) {
	cases := map[string]string{
		"":                  "",
		"ocf-exit-reason:x": "x",
		"a\nocf-exit-reason:one\nb\nocf-exit-reason:two\nc": "two",
		"ocf-exit-reason:\n":                          "",
		"ocf-exit-reason:" + strings.Repeat("z", 200): strings.Repeat("z", 128),
	}
	for in, want := range cases {
		if got := exitReason(in); got != want {
			t.Errorf("exitReason(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestClassify(t *testing.T) {
	cases := []struct {
		action   string
		interval time.Duration
		rc       RC
		status   OpStatus
		expected RC
		want     Severity
	}{
		{"start", 0, OK, StatusDone, OK, Expected},
		{"monitor", 0, NotRunning, StatusDone, NotRunning, Expected},
		{"monitor", 0, RunningPromoted, StatusDone, NotRunning, Expected}, // probe
		{"monitor", 10 * time.Second, NotRunning, StatusDone, OK, Soft},
		{"monitor", 10 * time.Second, RunningPromoted, StatusDone, RunningPromoted, Expected},
		{"monitor", 10 * time.Second, Degraded, StatusDone, OK, Expected},
		{"monitor", 10 * time.Second, DegradedPromoted, StatusDone, RunningPromoted, Expected},
		{"monitor", 10 * time.Second, FailedPromoted, StatusDone, RunningPromoted, Soft},
		{"start", 0, ErrGeneric, StatusDone, OK, Soft},
		{"start", 0, ErrArgs, StatusDone, OK, Hard},
		{"start", 0, ErrUnimplemented, StatusDone, OK, Hard},
		{"start", 0, ErrPerm, StatusDone, OK, Hard},
		{"start", 0, ErrInstalled, StatusDone, OK, Hard},
		{"start", 0, ErrConfigured, StatusDone, OK, Fatal},
		{"stop", 0, ErrGeneric, StatusTimeout, OK, Soft},
		{"start", 0, ErrInstalled, StatusNotInstalled, OK, Hard},
		{"monitor", time.Second, OK, StatusCancelled, OK, Expected},
		{"start", 0, ErrConfigured, StatusErrorFatal, OK, Fatal},
		{"start", 0, RC(42), StatusDone, OK, Soft},
	}
	for _, c := range cases {
		if got := Classify(c.action, c.interval, c.rc, c.status, c.expected); got != c.want {
			t.Errorf("Classify(%s, %v, %s, %s, expected %s) = %s, want %s", c.action, c.interval, c.rc, c.status, c.expected, got, c.want)
		}
	}
	if ocfRC(200) != ErrGeneric || ocfRC(190) != Degraded || ocfRC(9) != FailedPromoted || ocfRC(-1) != ErrGeneric {
		t.Error("ocfRC mapping")
	}
}

func TestParseAgent(t *testing.T) {
	good := map[string]Agent{
		"ocf:heartbeat:Dummy": heartbeatDummy,
		"lsb:fakesvc":         fakesvc,
		"tachy:vip":           {Class: "tachy", Type: "vip"},
	}
	for s, want := range good {
		a, err := ParseAgent(s)
		if err != nil || a != want || a.String() != s {
			t.Errorf("ParseAgent(%q) = %v, %v", s, a, err)
		}
	}
	for _, s := range []string{"ocf:Dummy", "Dummy", "ocf:heartbeat:../../bin/sh", "lsb:x:y", "a:b:c:d", "ocf::Dummy", "lsb:.."} {
		if _, err := ParseAgent(s); err == nil {
			t.Errorf("ParseAgent(%q) accepted", s)
		}
	}
}

func TestExecRejectsRecurring(t *testing.T) {
	e := newTestExecutor(t, Config{OCFRoot: testOCFRoot})
	if _, err := e.Exec(context.Background(), Op{Resource: "s", Agent: sleeper, Action: "monitor", Interval: time.Second}); err == nil {
		t.Error("Exec accepted a recurring operation")
	}
	e.Close()
	if _, err := e.Submit(Op{Resource: "s", Agent: sleeper, Action: "start"}); !errors.Is(err, ErrClosed) {
		t.Errorf("submit after close: %v", err)
	}
}

func TestDaemonHoldingOutputDoesNotBlock(t *testing.T) {
	e := newTestExecutor(t, Config{OCFRoot: testOCFRoot, PipeGrace: 100 * time.Millisecond})
	pidfile := filepath.Join(t.TempDir(), "pid")
	start := time.Now()
	r := run(t, e, Op{Resource: "dm", Agent: Agent{Class: "ocf", Provider: "test", Type: "Daemon"}, Action: "start", Params: map[string]string{"pidfile": pidfile}})
	expectRC(t, r, OK)
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("start took %v: waited for the daemon's pipes", took)
	}
	if !strings.Contains(r.Stdout, "started") {
		t.Errorf("stdout %q", r.Stdout)
	}
	b, err := os.ReadFile(pidfile)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	// A successful start leaves what it started running.
	if err := syscall.Kill(pid, 0); err != nil {
		t.Errorf("the daemon did not survive its agent: %v", err)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
}
