package bench

// `tachy bench volume`: a replicated volume's write throughput and latency
// against nbdkit's file plugin, measured by the same client (fio's nbd
// engine, libnbd) in the same run.
//
// Two network namespaces on a bridge, as in the lab: the primary's (where
// the NBD servers and fio run; fio reaches them over loopback) and the
// secondary's. Targets, each on its own backing file of the same size on the
// same file system: nbdkit's file plugin; tachy's NBD server on the file with
// no replication; a tachy primary replicating with protocol A, B and C to a
// secondary process in the other namespace. The tests rotate over the
// targets round by round, so slow drift in the machine's load touches all
// alike, and the median of the rounds is kept.
//
// Two references bound what any replicating server could reach on the
// machine, measured with nbdkit's own code in the same rounds: a relay
// (nbdkit's nbd plugin in the primary's namespace forwarding every request
// to nbdkit's file plugin in the secondary's: the network hop and the
// remote write, without the local one), and a pair of concurrent streams
// (fio writing to nbdkit's file plugin here and, at the same time, to the
// one in the secondary's namespace: every byte written twice, the second
// time across the bridge, with no replication protocol at all).

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tachy-ha/tachy/nbdrepl"
)

// VolumeOptions configure `tachy bench volume`.
type VolumeOptions struct {
	Binary  string        // the tachy binary run as primary and secondary
	Dir     string        // backing files go here (a directory on the file system to measure)
	Size    int64         // bytes per backing file
	Runtime time.Duration // per test, target and round
	Rounds  int
	// Protocols to measure ("A", "B", "C"); nbdkit and the unreplicated
	// tachy server are always measured.
	Protocols []string
	// Profile, if set, is a directory: each tachy process writes a CPU
	// profile there (role-protocol.pprof).
	Profile string
	// Tests to run (seq, rand4k, qd1); empty: all. Figures of tests not
	// run are zero, and so are the must-show checks that need them.
	Tests    []string
	Progress io.Writer

	echo string // the first secondary's echo address (set by Volume)
}

// VolumeResult is the JSON output of `tachy bench volume`.
type VolumeResult struct {
	Benchmark string    `json:"benchmark"`
	Started   time.Time `json:"started"`
	Kernel    string    `json:"kernel"`
	CPUs      int       `json:"cpus"`
	Client    string    `json:"client"`
	Server    string    `json:"baseline"`
	Network   string    `json:"network"`
	SizeBytes int64     `json:"backing_file_bytes"`
	FileSys   string    `json:"backing_file_system"`
	RuntimeS  float64   `json:"runtime_per_test_s"`
	Rounds    int       `json:"rounds"`
	Tests     []string  `json:"tests"`
	// RTT between the two namespaces: ICMP echo (the network) and a TCP
	// ping-pong of 64 bytes between two Go processes (what a replication
	// acknowledgement costs beyond the network).
	RTT     RTTResult      `json:"rtt"`
	Targets []VolumeTarget `json:"targets"`
	// Ceiling: the two concurrent nbdkit streams (see the package
	// documentation), what replication would cost on this machine if the
	// replicating code cost nothing.
	Ceiling *VolumeCeiling `json:"ceiling,omitempty"`
	// Ratios compare each tachy target with nbdkit: throughput tachy /
	// nbdkit, latency tachy - nbdkit.
	Ratios   []VolumeRatio `json:"ratios"`
	MustShow MustShow      `json:"must_show"`
}

// RTTResult is the round trip between the primary's and the secondary's
// namespaces, in microseconds.
type RTTResult struct {
	ICMPP50Us  float64 `json:"icmp_p50_us"`
	ICMPMeanUs float64 `json:"icmp_mean_us"`
	TCPP50Us   float64 `json:"tcp_pingpong_p50_us"`
	TCPP99Us   float64 `json:"tcp_pingpong_p99_us"`
	// ProcP50Us: the same ping-pong between this process and an echo
	// server in the secondary's process (another namespace): each way
	// wakes a process, as a replicated write's frame and acknowledgement
	// do.
	ProcP50Us float64 `json:"tcp_process_pingpong_p50_us,omitempty"`
	ProcP99Us float64 `json:"tcp_process_pingpong_p99_us,omitempty"`
}

// VolumeTarget is one server's figures (medians over the rounds).
type VolumeTarget struct {
	Name     string `json:"name"`
	Protocol string `json:"protocol,omitempty"`
	// SeqWriteMBps: 1 MiB sequential writes, 8 in flight (MB = 10^6 B).
	SeqWriteMBps float64 `json:"seq_write_MBps"`
	// Rand4kIOPS: 4 KiB random writes, 32 in flight.
	Rand4kIOPS float64 `json:"rand4k_write_iops"`
	Rand4kMBps float64 `json:"rand4k_write_MBps"`
	QD1P50Us   float64 `json:"qd1_4k_write_p50_us"`
	QD1P99Us   float64 `json:"qd1_4k_write_p99_us"`
	QD1MeanUs  float64 `json:"qd1_4k_write_mean_us"`
	// CPU: the target's server processes (nbdkit; tachy's primary and
	// secondary together) and the whole machine, in cores busy during
	// the test (1.0 = one core), and the servers' CPU per unit of work.
	SeqServerCores    float64 `json:"seq_server_cpu_cores"`
	SeqMachineCores   float64 `json:"seq_machine_busy_cores"`
	SeqServerCPUPerGB float64 `json:"seq_server_cpu_s_per_GB"`
	RandServerCores   float64 `json:"rand4k_server_cpu_cores"`
	RandMachineCores  float64 `json:"rand4k_machine_busy_cores"`
	RandServerUsPerOp float64 `json:"rand4k_server_cpu_us_per_write"`
	// The same split by process (replicated targets): the primary's
	// share is what a secondary on another machine would leave here.
	SeqPrimaryCPUPerGB   float64   `json:"seq_primary_cpu_s_per_GB,omitempty"`
	SeqSecondaryCPUPerGB float64   `json:"seq_secondary_cpu_s_per_GB,omitempty"`
	RandPrimaryUsPerOp   float64   `json:"rand4k_primary_cpu_us_per_write,omitempty"`
	RandSecondaryUsPerOp float64   `json:"rand4k_secondary_cpu_us_per_write,omitempty"`
	RoundsSeq            []float64 `json:"rounds_seq_write_MBps"`
	RoundsRand           []float64 `json:"rounds_rand4k_write_iops"`
	RoundsQD1            []float64 `json:"rounds_qd1_p50_us"`
	InSyncAfter          *bool     `json:"secondary_identical_after,omitempty"`
}

// VolumeCeiling is a pair of fio jobs run at once, each as the seq or rand4k
// test: one to nbdkit's file plugin in the primary's namespace (local), one
// to nbdkit's file plugin in the secondary's namespace across the bridge
// (peer). A replicated write does at least both jobs' work for every byte,
// so a replicating server's throughput is at most about their mean (when
// the pair keeps the machine busy): SeqRatio and RandRatio are that mean
// over nbdkit-file's figure in the same rounds.
type VolumeCeiling struct {
	SeqLocalMBps      float64   `json:"seq_local_MBps"`
	SeqPeerMBps       float64   `json:"seq_peer_MBps"`
	SeqRatio          float64   `json:"seq_mean_ratio_to_nbdkit"`
	SeqMachineCores   float64   `json:"seq_machine_busy_cores"`
	RandLocalIOPS     float64   `json:"rand4k_local_iops"`
	RandPeerIOPS      float64   `json:"rand4k_peer_iops"`
	RandRatio         float64   `json:"rand4k_mean_ratio_to_nbdkit"`
	RandMachineCores  float64   `json:"rand4k_machine_busy_cores"`
	RoundsSeqLocal    []float64 `json:"rounds_seq_local_MBps"`
	RoundsSeqPeer     []float64 `json:"rounds_seq_peer_MBps"`
	RoundsRandLocal   []float64 `json:"rounds_rand4k_local_iops"`
	RoundsRandPeer    []float64 `json:"rounds_rand4k_peer_iops"`
	roundsSeqMachine  []float64
	roundsRandMachine []float64
}

// VolumeRatio compares one tachy target with nbdkit.
type VolumeRatio struct {
	Target       string  `json:"target"`
	SeqWrite     float64 `json:"seq_write_ratio"`
	Rand4kWrite  float64 `json:"rand4k_write_ratio"`
	QD1P50Delta  float64 `json:"qd1_p50_minus_nbdkit_us"`
	QD1P99Delta  float64 `json:"qd1_p99_minus_nbdkit_us"`
	QD1MeanDelta float64 `json:"qd1_mean_minus_nbdkit_us"`
}

// MustShow checks the targets: throughput (sequential and random,
// each) >= 0.9x nbdkit for A and >= 0.8x for C; C's QD1 p50 latency <=
// nbdkit's + one round trip (ICMP p50) + 100 us.
type MustShow struct {
	AThroughputOK bool    `json:"a_throughput_ge_0_9"`
	CThroughputOK bool    `json:"c_throughput_ge_0_8"`
	CQD1BudgetUs  float64 `json:"c_qd1_p50_budget_us"`
	CQD1Us        float64 `json:"c_qd1_p50_us"`
	CQD1OK        bool    `json:"c_qd1_within_budget"`
	// The same with the process-to-process round trip (what a
	// replicated write's frame and acknowledgement cost on the wire and
	// in wake-ups) instead of ICMP's.
	CQD1BudgetProcUs float64 `json:"c_qd1_p50_budget_process_rtt_us,omitempty"`
	CQD1OKProc       bool    `json:"c_qd1_within_budget_process_rtt"`
	// The references of the same run: nbdkit's relay's QD1 p50 (the hop
	// and the remote write done by nbdkit) and the two-stream ceiling's
	// throughput ratios. A throughput target above the ceiling cannot be
	// met on this machine by any replicating server built from the same
	// system calls.
	RelayQD1Us         float64 `json:"nbdkit_relay_qd1_p50_us,omitempty"`
	CeilingSeqRatio    float64 `json:"ceiling_seq_ratio,omitempty"`
	CeilingRand4kRatio float64 `json:"ceiling_rand4k_ratio,omitempty"`
}

const (
	bvNSPrimary   = "tbv-p"
	bvNSSecondary = "tbv-s"
	bvBridge      = "tbv-br"
	bvAddrP       = "10.78.0.1"
	bvAddrS       = "10.78.0.2"
	bvVolume      = "bench"
	// bvRelayPort: nbdkit's file plugin behind the relay, in the
	// secondary's namespace.
	bvRelayPort = 10950
)

func (o VolumeOptions) logf(format string, args ...any) {
	if o.Progress != nil {
		fmt.Fprintf(o.Progress, "bench volume: "+format+"\n", args...)
	}
}

type bvTarget struct {
	name, protocol string
	port           int
	file, secFile  string
	procs          []*exec.Cmd
	res            VolumeTarget
}

// Volume runs the benchmark.
func Volume(ctx context.Context, o VolumeOptions) (res *VolumeResult, err error) {
	for _, tool := range []string{"fio", "nbdkit", "ip", "ping"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("%s not found: apt-get install fio nbdkit iproute2 iputils-ping", tool)
		}
	}
	if out, err := exec.Command("fio", "--enghelp=nbd").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("this fio has no nbd engine (built without libnbd): %s", strings.TrimSpace(string(out)))
	}
	if o.Rounds < 1 {
		o.Rounds = 1
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(o.Dir, "tachy-bench-volume-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)

	var uts unix.Utsname
	unix.Uname(&uts)
	fioVer, _ := exec.Command("fio", "--version").Output()
	nbdkitVer, _ := exec.Command("nbdkit", "--version").Output()
	res = &VolumeResult{Benchmark: "volume", Started: time.Now().UTC(), Kernel: unix.ByteSliceToString(uts.Release[:]), CPUs: runtime.NumCPU(),
		Client:    strings.TrimSpace(string(fioVer)) + " ioengine=nbd (libnbd), one connection, in the primary's namespace over loopback",
		Server:    strings.TrimSpace(string(nbdkitVer)) + " file plugin, in the primary's namespace, no replication",
		Network:   "two network namespaces, veth pairs on a bridge; the secondary in the other namespace",
		SizeBytes: o.Size, FileSys: fsType(dir), RuntimeS: o.Runtime.Seconds(), Rounds: o.Rounds,
		Tests: []string{"seq: rw=write bs=1M iodepth=8", "rand4k: rw=randwrite bs=4k iodepth=32", "qd1: rw=randwrite bs=4k iodepth=1"}}

	o.logf("network: namespaces %s and %s on bridge %s", bvNSPrimary, bvNSSecondary, bvBridge)
	bvTeardown()
	if err := bvNetwork(ctx); err != nil {
		bvTeardown()
		return nil, err
	}
	defer bvTeardown()

	secret := make([]byte, 32)
	if _, err := io.ReadFull(randReader(), secret); err != nil {
		return nil, err
	}
	targets := []*bvTarget{{name: "nbdkit-file", port: 10900}, {name: "nbdkit-relay", port: 10902}, {name: "tachy-unreplicated", port: 10901}}
	for i, p := range o.Protocols {
		targets = append(targets, &bvTarget{name: "tachy-" + p, protocol: p, port: 10910 + i})
	}
	defer func() {
		for _, t := range targets {
			stopProcs(t.procs)
		}
	}()
	for i, t := range targets {
		t.file = filepath.Join(dir, t.name+".img")
		if err := makeFile(t.file, o.Size); err != nil {
			return nil, err
		}
		echoAddr := ""
		if t.protocol != "" && o.echo == "" {
			echoAddr = bvAddrS + ":7798"
			o.echo = echoAddr
		}
		if err := startTarget(ctx, o, t, secret, dir, 7800+i, echoAddr); err != nil {
			return nil, fmt.Errorf("%s: %w", t.name, err)
		}
		o.logf("%s: serving on %s:%d; filling the volume", t.name, "127.0.0.1", t.port)
		// Every test then overwrites allocated blocks, on both sides.
		if _, err := runFio(ctx, t.port, "fill", "--rw=write", "--bs=1M", "--iodepth=8", "--size="+strconv.FormatInt(o.Size, 10)); err != nil {
			return nil, fmt.Errorf("%s: filling: %w", t.name, err)
		}
	}

	o.logf("measuring the round trip")
	if res.RTT, err = measureRTT(ctx, o); err != nil {
		return nil, err
	}
	o.logf("rtt: icmp p50 %.1f us, tcp ping-pong p50 %.1f us, process to process %.1f us", res.RTT.ICMPP50Us, res.RTT.TCPP50Us, res.RTT.ProcP50Us)

	rt := strconv.Itoa(max(1, int(o.Runtime.Seconds())))
	seqArgs := []string{"--rw=write", "--bs=1M", "--iodepth=8", "--time_based", "--runtime=" + rt, "--ramp_time=1"}
	randArgs := []string{"--rw=randwrite", "--bs=4k", "--iodepth=32", "--time_based", "--runtime=" + rt, "--ramp_time=1", "--randrepeat=0"}
	ceil := &VolumeCeiling{}
	type cpuSample struct{ server, machine, primary, secondary []float64 }
	seqCPU, randCPU := map[string]*cpuSample{}, map[string]*cpuSample{}
	for _, t := range targets {
		seqCPU[t.name], randCPU[t.name] = &cpuSample{}, &cpuSample{}
	}
	for round := range o.Rounds {
		for _, t := range targets {
			run := func(test string) bool { return len(o.Tests) == 0 || slices.Contains(o.Tests, test) }
			var seq, rnd, qd1 fioResult
			// measure runs one fio job and records the servers' and the
			// machine's CPU over it.
			measure := func(test string, cpu *cpuSample, args ...string) (fioResult, error) {
				if !run(test) {
					return fioResult{}, nil
				}
				m0, s0, at := busyTicks(), serverTicks(t.procs), time.Now()
				p0, q0 := serverTicks(t.procs[:1]), serverTicks(t.procs[1:])
				r, err := runFio(ctx, t.port, test, args...)
				if err != nil {
					return r, fmt.Errorf("%s: %w", t.name, err)
				}
				if cpu != nil {
					el := time.Since(at).Seconds()
					cpu.server = append(cpu.server, float64(serverTicks(t.procs)-s0)/clockTicks/el)
					cpu.machine = append(cpu.machine, float64(busyTicks()-m0)/clockTicks/el)
					if len(t.procs) == 2 { // primary, secondary
						cpu.primary = append(cpu.primary, float64(serverTicks(t.procs[:1])-p0)/clockTicks/el)
						cpu.secondary = append(cpu.secondary, float64(serverTicks(t.procs[1:])-q0)/clockTicks/el)
					}
				}
				// Not timed: a write and a FLUSH, which returns once every
				// earlier write is durable here and on the secondary, so
				// no test inherits the previous one's backlog (protocol
				// A's queue, dirty pages).
				if _, err := runFio(ctx, t.port, "drain", "--rw=write", "--bs=4k", "--size=4k", "--fsync=1"); err != nil {
					return r, fmt.Errorf("%s: flushing after %s: %w", t.name, test, err)
				}
				return r, nil
			}
			if seq, err = measure("seq", seqCPU[t.name], seqArgs...); err != nil {
				return nil, err
			}
			if rnd, err = measure("rand4k", randCPU[t.name], randArgs...); err != nil {
				return nil, err
			}
			if qd1, err = measure("qd1", nil, "--rw=randwrite", "--bs=4k", "--iodepth=1", "--time_based", "--runtime="+rt, "--ramp_time=1", "--randrepeat=0", "--lat_percentiles=1"); err != nil {
				return nil, err
			}
			t.res.RoundsSeq = append(t.res.RoundsSeq, round1(seq.BW/1e6))
			t.res.RoundsRand = append(t.res.RoundsRand, math0(rnd.IOPS))
			t.res.RoundsQD1 = append(t.res.RoundsQD1, round1(qd1.P50/1e3))
			t.res.QD1P99Us = append99(t.res.QD1P99Us, qd1.P99/1e3, round)
			t.res.QD1MeanUs += qd1.Mean / 1e3 / float64(o.Rounds)
			o.logf("round %d %s: seq %.0f MB/s, rand4k %.0f IOPS, qd1 p50 %.1f us p99 %.1f us", round+1, t.name, seq.BW/1e6, rnd.IOPS, qd1.P50/1e3, qd1.P99/1e3)
		}
		if err := measureCeiling(ctx, o, ceil, targets[0].port, seqArgs, randArgs); err != nil {
			return nil, err
		}
	}
	for _, t := range targets {
		t.res.Name, t.res.Protocol = t.name, t.protocol
		t.res.SeqWriteMBps = round1(median(t.res.RoundsSeq))
		t.res.Rand4kIOPS = math0(median(t.res.RoundsRand))
		t.res.Rand4kMBps = round1(t.res.Rand4kIOPS * 4096 / 1e6)
		t.res.QD1P50Us = round1(median(t.res.RoundsQD1))
		t.res.QD1P99Us = round1(t.res.QD1P99Us)
		t.res.QD1MeanUs = round1(t.res.QD1MeanUs)
		t.res.SeqServerCores = round3(median(seqCPU[t.name].server))
		t.res.SeqMachineCores = round3(median(seqCPU[t.name].machine))
		t.res.RandServerCores = round3(median(randCPU[t.name].server))
		t.res.RandMachineCores = round3(median(randCPU[t.name].machine))
		if t.res.SeqWriteMBps > 0 {
			t.res.SeqServerCPUPerGB = round3(t.res.SeqServerCores / (t.res.SeqWriteMBps / 1000))
		}
		if t.res.Rand4kIOPS > 0 {
			t.res.RandServerUsPerOp = round1(t.res.RandServerCores * 1e6 / t.res.Rand4kIOPS)
		}
		if c := seqCPU[t.name]; len(c.primary) > 0 && t.res.SeqWriteMBps > 0 {
			t.res.SeqPrimaryCPUPerGB = round3(median(c.primary) / (t.res.SeqWriteMBps / 1000))
			t.res.SeqSecondaryCPUPerGB = round3(median(c.secondary) / (t.res.SeqWriteMBps / 1000))
		}
		if c := randCPU[t.name]; len(c.primary) > 0 && t.res.Rand4kIOPS > 0 {
			t.res.RandPrimaryUsPerOp = round1(median(c.primary) * 1e6 / t.res.Rand4kIOPS)
			t.res.RandSecondaryUsPerOp = round1(median(c.secondary) * 1e6 / t.res.Rand4kIOPS)
		}
		if t.protocol != "" {
			// The secondary stops after the primary, so it has
			// applied everything; then both files must be equal.
			stopProcs(t.procs)
			t.procs = nil
			same, err := sameFiles(t.file, t.secFile)
			if err != nil {
				return nil, err
			}
			t.res.InSyncAfter = &same
		}
		res.Targets = append(res.Targets, t.res)
	}
	base := targets[0].res
	if len(ceil.RoundsSeqLocal)+len(ceil.RoundsRandLocal) > 0 {
		ceil.finish(base)
		res.Ceiling = ceil
		res.MustShow.CeilingSeqRatio, res.MustShow.CeilingRand4kRatio = ceil.SeqRatio, ceil.RandRatio
	}
	for _, t := range targets[1:] {
		if t.name == "nbdkit-relay" {
			res.MustShow.RelayQD1Us = t.res.QD1P50Us
		}
		r := VolumeRatio{Target: t.name,
			SeqWrite:     ratio(t.res.SeqWriteMBps, base.SeqWriteMBps),
			Rand4kWrite:  ratio(t.res.Rand4kIOPS, base.Rand4kIOPS),
			QD1P50Delta:  round1(t.res.QD1P50Us - base.QD1P50Us),
			QD1P99Delta:  round1(t.res.QD1P99Us - base.QD1P99Us),
			QD1MeanDelta: round1(t.res.QD1MeanUs - base.QD1MeanUs)}
		res.Ratios = append(res.Ratios, r)
		switch t.protocol {
		case "A":
			res.MustShow.AThroughputOK = r.SeqWrite >= 0.9 && r.Rand4kWrite >= 0.9
		case "C":
			res.MustShow.CThroughputOK = r.SeqWrite >= 0.8 && r.Rand4kWrite >= 0.8
			res.MustShow.CQD1BudgetUs = round1(base.QD1P50Us + res.RTT.ICMPP50Us + 100)
			res.MustShow.CQD1Us = t.res.QD1P50Us
			res.MustShow.CQD1OK = t.res.QD1P50Us <= res.MustShow.CQD1BudgetUs
			if res.RTT.ProcP50Us > 0 {
				res.MustShow.CQD1BudgetProcUs = round1(base.QD1P50Us + res.RTT.ProcP50Us + 100)
				res.MustShow.CQD1OKProc = t.res.QD1P50Us <= res.MustShow.CQD1BudgetProcUs
			}
		}
	}
	for _, t := range targets {
		if t.res.InSyncAfter != nil && !*t.res.InSyncAfter {
			return res, fmt.Errorf("%s: the secondary's file differs from the primary's after the run", t.name)
		}
	}
	return res, nil
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return round3(a / b)
}

// append99 keeps the worst p99 of the rounds.
func append99(cur, v float64, round int) float64 {
	if round == 0 {
		return v
	}
	return max(cur, v)
}

func round1(v float64) float64 { return float64(int64(v*10+0.5)) / 10 }
func math0(v float64) float64  { return float64(int64(v + 0.5)) }

// clockTicks is USER_HZ, the unit of /proc's CPU times (100 on Linux).
const clockTicks = 100

// serverTicks sums the user and system time of the processes, in ticks.
func serverTicks(cmds []*exec.Cmd) int64 {
	var n int64
	for _, c := range cmds {
		if c.Process == nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", c.Process.Pid))
		if err != nil {
			continue
		}
		// Fields after the command name (which may hold spaces).
		i := strings.LastIndexByte(string(b), ')')
		f := strings.Fields(string(b[i+1:]))
		if len(f) > 12 {
			u, _ := strconv.ParseInt(f[11], 10, 64)
			s, _ := strconv.ParseInt(f[12], 10, 64)
			n += u + s
		}
	}
	return n
}

// busyTicks is the machine's busy time (all CPUs), in ticks.
func busyTicks() int64 {
	b, _ := machineTicks()
	return int64(b)
}

func randReader() io.Reader {
	f, err := os.Open("/dev/urandom")
	if err != nil {
		return strings.NewReader("")
	}
	return f
}

func fsType(dir string) string {
	var st unix.Statfs_t
	if unix.Statfs(dir, &st) != nil {
		return "?"
	}
	switch st.Type {
	case unix.EXT4_SUPER_MAGIC:
		return "ext4"
	case unix.XFS_SUPER_MAGIC:
		return "xfs"
	case unix.TMPFS_MAGIC:
		return "tmpfs"
	case unix.BTRFS_SUPER_MAGIC:
		return "btrfs"
	case unix.OVERLAYFS_SUPER_MAGIC:
		return "overlayfs"
	}
	return fmt.Sprintf("0x%x", st.Type)
}

func makeFile(path string, size int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Fallocate(int(f.Fd()), 0, 0, size); err != nil {
		return f.Truncate(size)
	}
	return nil
}

func sameFiles(a, b string) (bool, error) {
	fa, err := os.Open(a)
	if err != nil {
		return false, err
	}
	defer fa.Close()
	fb, err := os.Open(b)
	if err != nil {
		return false, err
	}
	defer fb.Close()
	ba, bb := make([]byte, 1<<20), make([]byte, 1<<20)
	for {
		na, ea := io.ReadFull(fa, ba)
		nb, eb := io.ReadFull(fb, bb)
		if na != nb || string(ba[:na]) != string(bb[:nb]) {
			return false, nil
		}
		if ea != nil || eb != nil {
			return errors.Is(ea, io.EOF) || errors.Is(ea, io.ErrUnexpectedEOF), nil
		}
	}
}

func bvNetwork(ctx context.Context) error {
	cmds := [][]string{
		{"netns", "add", bvNSPrimary},
		{"netns", "add", bvNSSecondary},
		{"link", "add", bvBridge, "type", "bridge", "forward_delay", "0", "stp_state", "0"},
		{"link", "set", bvBridge, "up"},
	}
	for _, x := range []struct{ ns, host, addr string }{{bvNSPrimary, "tbv-hp", bvAddrP}, {bvNSSecondary, "tbv-hs", bvAddrS}} {
		cmds = append(cmds,
			[]string{"link", "add", x.host, "type", "veth", "peer", "name", "eth0", "netns", x.ns},
			[]string{"link", "set", x.host, "master", bvBridge, "up"},
			[]string{"-n", x.ns, "link", "set", "lo", "up"},
			[]string{"-n", x.ns, "addr", "add", x.addr + "/24", "dev", "eth0"},
			[]string{"-n", x.ns, "link", "set", "eth0", "up"})
	}
	for _, c := range cmds {
		if out, err := exec.CommandContext(ctx, "ip", c...).CombinedOutput(); err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(c, " "), err, strings.TrimSpace(string(out)))
		}
	}
	// Wait for the bridge to forward (ping until it answers).
	deadline := time.Now().Add(10 * time.Second)
	for {
		if exec.CommandContext(ctx, "ip", "netns", "exec", bvNSPrimary, "ping", "-c", "1", "-W", "1", bvAddrS).Run() == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return errors.New("the namespaces cannot reach each other over the bridge")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func bvTeardown() {
	exec.Command("ip", "netns", "del", bvNSPrimary).Run()
	exec.Command("ip", "netns", "del", bvNSSecondary).Run()
	exec.Command("ip", "link", "del", bvBridge).Run()
}

// startTarget starts a target's server processes and waits until they
// serve.
func startTarget(ctx context.Context, o VolumeOptions, t *bvTarget, secret []byte, dir string, replPort int, echoAddr string) error {
	nbdAddr := fmt.Sprintf("127.0.0.1:%d", t.port)
	prof := func(role string) []string {
		if o.Profile == "" {
			return nil
		}
		return []string{"--cpuprofile", filepath.Join(o.Profile, role+"-"+strings.TrimPrefix(t.name, "tachy-")+".pprof")}
	}
	switch {
	case t.name == "nbdkit-file":
		cmd, err := startNbdkit(ctx, o, bvNSPrimary, "127.0.0.1", t.port, "file", "file="+t.file)
		if err != nil {
			return err
		}
		t.procs = append(t.procs, cmd)
		return nil
	case t.name == "nbdkit-relay":
		// The relay first (the primary's process, as for tachy), then
		// the file plugin it forwards to.
		back, err := startNbdkit(ctx, o, bvNSSecondary, bvAddrS, bvRelayPort, "file", "file="+t.file)
		if err != nil {
			return err
		}
		relay, err := startNbdkit(ctx, o, bvNSPrimary, "127.0.0.1", t.port, "nbd", "hostname="+bvAddrS, "port="+strconv.Itoa(bvRelayPort))
		if err != nil {
			stopProcs([]*exec.Cmd{back})
			return err
		}
		t.procs = append(t.procs, relay, back)
		return nil
	case t.protocol == "":
		args := append([]string{"bench", "volume-node", "--role", "plain", "--backing", t.file, "--nbd", nbdAddr}, prof("plain")...)
		cmd, err := startNode(o, bvNSPrimary, args, nil)
		if err != nil {
			return err
		}
		t.procs = append(t.procs, cmd)
		return nil
	}
	t.secFile = filepath.Join(dir, t.name+"-secondary.img")
	if err := makeFile(t.secFile, o.Size); err != nil {
		return err
	}
	env := []string{"TACHY_BENCH_SECRET=" + hex.EncodeToString(secret)}
	repl := fmt.Sprintf("%s:%d", bvAddrS, replPort)
	args := []string{"bench", "volume-node", "--role", "secondary", "--backing", t.secFile, "--listen", repl}
	if echoAddr != "" {
		args = append(args, "--echo", echoAddr)
	}
	sec, err := startNode(o, bvNSSecondary, append(args, prof("secondary")...), env)
	if err != nil {
		return err
	}
	t.procs = append(t.procs, sec)
	pri, err := startNode(o, bvNSPrimary, append([]string{"bench", "volume-node", "--role", "primary", "--backing", t.file, "--peer", repl,
		"--nbd", nbdAddr, "--protocol", t.protocol}, prof("primary")...), env)
	if err != nil {
		return err
	}
	// Stopped in reverse order: the primary first.
	t.procs = append([]*exec.Cmd{pri}, t.procs...)
	return nil
}

// startNbdkit starts nbdkit with a plugin in a namespace and waits until it
// accepts connections.
func startNbdkit(ctx context.Context, o VolumeOptions, ns, addr string, port int, plugin ...string) (*exec.Cmd, error) {
	args := append([]string{"netns", "exec", ns, "nbdkit", "-f", "-i", addr, "-p", strconv.Itoa(port)}, plugin...)
	cmd := exec.Command("ip", args...)
	cmd.Stderr = o.Progress
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	if err := waitPort(ctx, fmt.Sprintf("%s:%d", addr, port), 10*time.Second); err != nil {
		stopProcs([]*exec.Cmd{cmd})
		return nil, fmt.Errorf("nbdkit %s in %s: %w", strings.Join(plugin, " "), ns, err)
	}
	return cmd, nil
}

// startNode starts `tachy bench volume-node` in a namespace and waits for
// its "ready" line.
func startNode(o VolumeOptions, ns string, args, env []string) (*exec.Cmd, error) {
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns, o.Binary}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = o.Progress
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	ready := make(chan error, 1)
	go func() {
		line, err := bufio.NewReader(out).ReadString('\n')
		if err == nil && strings.TrimSpace(line) != "ready" {
			err = fmt.Errorf("unexpected output %q", line)
		}
		ready <- err
		io.Copy(io.Discard, out)
	}()
	select {
	case err = <-ready:
	case <-time.After(2 * time.Minute):
		err = errors.New("not ready after 2 minutes")
	}
	if err != nil {
		stopProcs([]*exec.Cmd{cmd})
		return nil, fmt.Errorf("%s %s: %w", o.Binary, strings.Join(args, " "), err)
	}
	return cmd, nil
}

func stopProcs(cmds []*exec.Cmd) {
	for _, c := range cmds {
		if c.Process == nil {
			continue
		}
		c.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { c.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			c.Process.Kill()
			<-done
		}
	}
}

func waitPort(ctx context.Context, addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		err := inNetns(bvNSPrimary, func() error {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				c.Close()
			}
			return err
		})
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%s not listening: %w", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// inNetns runs fn on an OS thread in the named network namespace; sockets
// made there stay in it.
func inNetns(ns string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		self, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer self.Close()
		f, err := os.Open(filepath.Join("/run/netns", ns))
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		err = unix.Setns(int(f.Fd()), unix.CLONE_NEWNET)
		f.Close()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		err = fn()
		if unix.Setns(int(self.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	return <-errc
}

type fioResult struct {
	BW, IOPS       float64 // bytes/s, ops/s
	P50, P99, Mean float64 // ns (lat_percentiles)
}

// runFio runs one fio job against 127.0.0.1:port in the primary's namespace.
func runFio(ctx context.Context, port int, name string, args ...string) (fioResult, error) {
	rs, err := runFioJobs(ctx, []fioJob{{name, fmt.Sprintf("nbd://127.0.0.1:%d/", port)}}, args...)
	if err != nil {
		return fioResult{}, err
	}
	return rs[0], nil
}

// fioJob is one job of a fio run: its name and the NBD URI it writes to.
type fioJob struct{ name, uri string }

// runFioJobs runs fio jobs at once in the primary's namespace, each with
// args, and returns their results in order.
func runFioJobs(ctx context.Context, jobs []fioJob, args ...string) ([]fioResult, error) {
	full := append([]string{"netns", "exec", bvNSPrimary, "fio", "--output-format=json", "--ioengine=nbd", "--numjobs=1", "--direct=1"}, args...)
	var names []string
	for _, j := range jobs {
		full = append(full, "--name="+j.name, "--uri="+j.uri)
		names = append(names, j.name)
	}
	name := strings.Join(names, "+")
	cmd := exec.CommandContext(ctx, "ip", full...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("fio %s: %v: %s", name, err, strings.TrimSpace(stderr.String()))
	}
	// fio may print notes before the JSON.
	if i := strings.IndexByte(string(out), '{'); i > 0 {
		out = out[i:]
	}
	var doc struct {
		Jobs []struct {
			Error int `json:"error"`
			Write struct {
				BW    float64 `json:"bw_bytes"`
				IOPS  float64 `json:"iops"`
				LatNs struct {
					Mean       float64            `json:"mean"`
					Percentile map[string]float64 `json:"percentile"`
				} `json:"lat_ns"`
			} `json:"write"`
		} `json:"jobs"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		return nil, fmt.Errorf("fio %s: parsing its JSON: %w", name, err)
	}
	if len(doc.Jobs) != len(jobs) {
		return nil, fmt.Errorf("fio %s: %d job results, want %d: %s", name, len(doc.Jobs), len(jobs), strings.TrimSpace(stderr.String()))
	}
	var rs []fioResult
	for _, j := range doc.Jobs {
		if j.Error != 0 {
			return nil, fmt.Errorf("fio %s failed: %s", name, strings.TrimSpace(stderr.String()))
		}
		w := j.Write
		rs = append(rs, fioResult{BW: w.BW, IOPS: w.IOPS, Mean: w.LatNs.Mean, P50: w.LatNs.Percentile["50.000000"], P99: w.LatNs.Percentile["99.000000"]})
	}
	return rs, nil
}

// measureCeiling runs one round of the two-stream ceiling (VolumeCeiling)
// for the tests selected: fio writes to nbdkit-file (port, here) and to the
// relay's file plugin in the secondary's namespace at once.
func measureCeiling(ctx context.Context, o VolumeOptions, c *VolumeCeiling, port int, seqArgs, randArgs []string) error {
	jobs := []fioJob{{"local", fmt.Sprintf("nbd://127.0.0.1:%d/", port)}, {"peer", fmt.Sprintf("nbd://%s:%d/", bvAddrS, bvRelayPort)}}
	for _, t := range []struct {
		test        string
		args        []string
		local, peer *[]float64
		machine     *[]float64
		perOp       bool
	}{
		{"seq", seqArgs, &c.RoundsSeqLocal, &c.RoundsSeqPeer, &c.roundsSeqMachine, false},
		{"rand4k", randArgs, &c.RoundsRandLocal, &c.RoundsRandPeer, &c.roundsRandMachine, true},
	} {
		if len(o.Tests) > 0 && !slices.Contains(o.Tests, t.test) {
			continue
		}
		m0, at := busyTicks(), time.Now()
		rs, err := runFioJobs(ctx, jobs, t.args...)
		if err != nil {
			return fmt.Errorf("two-stream ceiling, %s: %w", t.test, err)
		}
		*t.machine = append(*t.machine, float64(busyTicks()-m0)/clockTicks/time.Since(at).Seconds())
		if t.perOp {
			*t.local, *t.peer = append(*t.local, math0(rs[0].IOPS)), append(*t.peer, math0(rs[1].IOPS))
		} else {
			*t.local, *t.peer = append(*t.local, round1(rs[0].BW/1e6)), append(*t.peer, round1(rs[1].BW/1e6))
		}
		o.logf("two-stream ceiling %s: local %.0f, peer %.0f (%s)", t.test, (*t.local)[len(*t.local)-1], (*t.peer)[len(*t.peer)-1], map[bool]string{false: "MB/s", true: "IOPS"}[t.perOp])
		// Not timed, as after every test: no backlog for the next one.
		for _, j := range jobs {
			if _, err := runFioJobs(ctx, []fioJob{j}, "--rw=write", "--bs=4k", "--size=4k", "--fsync=1"); err != nil {
				return fmt.Errorf("two-stream ceiling: flushing %s: %w", j.name, err)
			}
		}
	}
	return nil
}

// finish takes the medians of the rounds and the ratios to nbdkit-file.
func (c *VolumeCeiling) finish(base VolumeTarget) {
	c.SeqLocalMBps, c.SeqPeerMBps = round1(median(c.RoundsSeqLocal)), round1(median(c.RoundsSeqPeer))
	c.RandLocalIOPS, c.RandPeerIOPS = math0(median(c.RoundsRandLocal)), math0(median(c.RoundsRandPeer))
	c.SeqMachineCores, c.RandMachineCores = round3(median(c.roundsSeqMachine)), round3(median(c.roundsRandMachine))
	c.SeqRatio = ratio((c.SeqLocalMBps+c.SeqPeerMBps)/2, base.SeqWriteMBps)
	c.RandRatio = ratio((c.RandLocalIOPS+c.RandPeerIOPS)/2, base.Rand4kIOPS)
}

// measureRTT pings the secondary's namespace from the primary's (ICMP),
// then times a 64-byte TCP ping-pong between this process's sockets in the
// two namespaces.
func measureRTT(ctx context.Context, o VolumeOptions) (RTTResult, error) {
	var r RTTResult
	out, err := exec.CommandContext(ctx, "ip", "netns", "exec", bvNSPrimary, "ping", "-c", "200", "-i", "0.005", bvAddrS).Output()
	if err != nil {
		return r, fmt.Errorf("ping: %w", err)
	}
	var icmp []time.Duration
	for _, l := range strings.Split(string(out), "\n") {
		if i := strings.Index(l, "time="); i >= 0 {
			f, err := strconv.ParseFloat(strings.Fields(l[i+5:])[0], 64)
			if err == nil {
				icmp = append(icmp, time.Duration(f*1e6))
			}
		}
	}
	if len(icmp) == 0 {
		return r, errors.New("ping: no replies")
	}
	s := Summarize(icmp, 0, false)
	r.ICMPP50Us, r.ICMPMeanUs = round1(s.P50*1e3), round1(s.Mean*1e3)

	var ln net.Listener
	if err := inNetns(bvNSSecondary, func() (err error) {
		ln, err = net.Listen("tcp", bvAddrS+":7799")
		return err
	}); err != nil {
		return r, err
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, 64)
		for {
			if _, err := io.ReadFull(c, buf); err != nil {
				return
			}
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
	}()
	var c net.Conn
	if err := inNetns(bvNSPrimary, func() (err error) {
		c, err = net.DialTimeout("tcp", bvAddrS+":7799", 5*time.Second)
		return err
	}); err != nil {
		return r, err
	}
	defer c.Close()
	tcp, err := pingPong(c, 2000)
	if err != nil {
		return r, err
	}
	s = Summarize(tcp, 0, false)
	r.TCPP50Us, r.TCPP99Us = round1(s.P50*1e3), round1(s.P99*1e3)
	if o.echo != "" {
		var ec net.Conn
		if err := inNetns(bvNSPrimary, func() (err error) {
			ec, err = net.DialTimeout("tcp", o.echo, 5*time.Second)
			return err
		}); err != nil {
			return r, err
		}
		defer ec.Close()
		proc, err := pingPong(ec, 2000)
		if err != nil {
			return r, err
		}
		s = Summarize(proc, 0, false)
		r.ProcP50Us, r.ProcP99Us = round1(s.P50*1e3), round1(s.P99*1e3)
	}
	return r, nil
}

// echo answers every 64-byte message with itself, on each connection.
func echo(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			buf := make([]byte, 64)
			for {
				if _, err := io.ReadFull(c, buf); err != nil {
					return
				}
				if _, err := c.Write(buf); err != nil {
					return
				}
			}
		}()
	}
}

// pingPong times n 64-byte round trips on c (after 200 unmeasured).
func pingPong(c net.Conn, n int) ([]time.Duration, error) {
	buf := make([]byte, 64)
	var out []time.Duration
	for i := range n + 200 {
		t0 := time.Now()
		if _, err := c.Write(buf); err != nil {
			return nil, err
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			return nil, err
		}
		if i >= 200 {
			out = append(out, time.Since(t0))
		}
	}
	return out, nil
}

// VolumeNodeOptions configure one process of the benchmark (`tachy bench
// volume-node`, run by Volume inside a namespace).
type VolumeNodeOptions struct {
	Role       string // plain, primary, secondary
	Backing    string
	NBD        string // primary, plain: NBD listen address
	Listen     string // secondary: replication listen address
	Peer       string // primary: the secondary's address
	Echo       string // secondary: also echo 64-byte messages here (RTT)
	Protocol   string
	Secret     []byte
	CPUProfile string
	Ready      io.Writer // "ready\n" is written here once serving
}

// VolumeNode serves until SIGTERM or SIGINT.
func VolumeNode(o VolumeNodeOptions) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if o.CPUProfile != "" {
		f, err := os.Create(o.CPUProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	fb, err := nbdrepl.OpenFile(o.Backing, false)
	if err != nil {
		return err
	}
	defer fb.Close()
	var be nbdrepl.Backend = fb
	switch o.Role {
	case "secondary":
		ln, err := net.Listen("tcp", o.Listen)
		if err != nil {
			return err
		}
		sec := &nbdrepl.Secondary{Backend: fb, Volume: bvVolume, Secret: o.Secret, Node: "s", Logger: log}
		if o.Echo != "" {
			eln, err := net.Listen("tcp", o.Echo)
			if err != nil {
				return err
			}
			defer eln.Close()
			go echo(eln)
		}
		fmt.Fprintln(o.Ready, "ready")
		return sec.Serve(ctx, ln)
	case "primary":
		var p nbdrepl.Protocol
		switch o.Protocol {
		case "A":
			p = nbdrepl.ProtocolA
		case "B":
			p = nbdrepl.ProtocolB
		case "C":
			p = nbdrepl.ProtocolC
		default:
			return fmt.Errorf("protocol %q: use A, B or C", o.Protocol)
		}
		r, err := nbdrepl.NewReplicated(fb, nbdrepl.ReplConfig{Volume: bvVolume, Secret: o.Secret, Protocol: p, Node: "p", Logger: log})
		if err != nil {
			return err
		}
		defer r.Close()
		peer, err := r.Dial(ctx, o.Peer, "s")
		if err != nil {
			return err
		}
		for peer.State() != nbdrepl.PeerUpToDate {
			if st := peer.State(); st != nbdrepl.PeerSyncTarget {
				return fmt.Errorf("secondary %s: %s: %v", o.Peer, st, peer.Err())
			}
			time.Sleep(20 * time.Millisecond)
		}
		be = r
		defer func() {
			if !peer.Connected() {
				log.Error("bench: the secondary disconnected during the run", "err", peer.Err())
			}
			log.Warn("bench: replication latency (moving average, queued to applied)", "protocol", o.Protocol, "latency", peer.Latency())
		}()
	case "plain":
	default:
		return fmt.Errorf("role %q: use plain, primary or secondary", o.Role)
	}
	ln, err := net.Listen("tcp", o.NBD)
	if err != nil {
		return err
	}
	fmt.Fprintln(o.Ready, "ready")
	return nbdrepl.Serve(ctx, ln, []nbdrepl.Export{{Name: bvVolume, Backend: be}}, log)
}
