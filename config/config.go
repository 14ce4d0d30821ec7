// Package config reads the tachy daemon's configuration file
// (/etc/tachy/tachy.conf): a strict subset of TOML with a fixed schema.
//
// Parse checks the syntax, applies the defaults and validates every value
// and the relations between them, reporting each problem as
//
//	FILE:LINE: section.key: problem; what is allowed
//
// Render writes a Config back out so that Parse(Render(c)) gives c again;
// Example is the documented example file. The key file, the cluster's
// shared secret, is read by ReadKey and written by WriteKey. docs/config.md
// describes every key.
package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Config is a parsed, validated configuration file.
type Config struct {
	Path      string // the file name given to Parse or Load
	Cluster   Cluster
	Local     Local
	Heartbeat Heartbeat
	CIB       CIB
	Quorum    Quorum
	Nodes     []Node // at least one; their order is the file's
}

// Cluster is the [cluster] table: what every node must agree on.
type Cluster struct {
	Name    string // 1-32 characters a-z 0-9 -, starting with a letter
	ID      uint32 // carried in every heartbeat frame; 1..4294967295
	KeyFile string // the shared secret; Load makes it absolute
}

// Local is the [local] table: settings of this node only.
type Local struct {
	Node     string // this node's name; empty when given by `tachy daemon --node`
	Socket   string // the control socket
	LogLevel string // debug, info, warn or error
	StateDir string
	// Metrics is the address (host:port) of the Prometheus metrics
	// endpoint, /metrics; empty: none.
	Metrics string
	// Watchdog is the watchdog device for self-fencing (/dev/watchdog;
	// empty: none), WatchdogTimeout its timeout: a node that loses
	// quorum stops feeding it and is reset that long after.
	Watchdog        string
	WatchdogTimeout time.Duration
}

// CIB is the [cib] table: the replicated Cluster Information Base.
type CIB struct {
	Port   int    // TCP port of the CIB's Raft traffic (mutual TLS), 1..65535
	PKIDir string // the cluster CA and node certificates (tachy cluster init); Load makes it absolute
}

// Heartbeat is the [heartbeat] table: the membership layer.
type Heartbeat struct {
	Interval         time.Duration // 1ms..10s
	MissCount        int           // 2..1000
	Port             int           // UDP port, 1..65535
	Receiver         string        // auto, xdp or udp
	XDPMode          string        // auto, native or generic
	MaxClockSkew     time.Duration // 0 (no check)..1h
	RealtimePriority int           // SCHED_FIFO priority 1..99; 0 = normal scheduling
	// GrantWindow: the fast path's view frames grant a lease to the peers
	// heard within it (fastpath.RunnerConfig.GrantWindow). 0 = the
	// detection time (GrantWindowOrDefault); else more than Interval, at
	// most the detection time.
	GrantWindow time.Duration
}

// GrantWindowOrDefault is GrantWindow, or the detection time when unset:
// a node grants a lease to the peers its membership has up, as before
// grant windows existed. A shorter window moves a failed holder's VIPs
// sooner but ends a live holder's lease after a shorter stall (docs/vip.md).
func (h Heartbeat) GrantWindowOrDefault() time.Duration {
	if h.GrantWindow > 0 {
		return h.GrantWindow
	}
	return h.DetectionTime()
}

// DetectionTime is how long a link may stay silent before it is declared
// down: Interval * MissCount.
func (h Heartbeat) DetectionTime() time.Duration {
	return h.Interval * time.Duration(h.MissCount)
}

// Quorum is the [quorum] table: votequorum's options.
type Quorum struct {
	ExpectedVotes         int // 0 = the sum of the nodes' votes
	TwoNode               bool
	WaitForAll            *bool // nil: the same as TwoNode
	LastManStanding       bool
	LastManStandingWindow time.Duration // 1s..1h
	AutoTieBreaker        bool
	TieBreaker            TieBreaker // auto_tie_breaker_node
}

// WaitsForAll is wait_for_all with its default applied.
func (q Quorum) WaitsForAll() bool {
	if q.WaitForAll != nil {
		return *q.WaitForAll
	}
	return q.TwoNode
}

// TieBreaker is auto_tie_breaker_node: which partition of an evenly split
// cluster keeps quorum.
type TieBreaker struct {
	Mode  string   // "lowest" or "highest" (node id), or "list"
	Nodes []string // for "list": node names in order of preference
}

// Tie-breaker modes.
const (
	TieLowest  = "lowest"
	TieHighest = "highest"
	TieList    = "list"
)

// Node is one [[node]] table: a cluster member.
type Node struct {
	Name      string
	ID        uint32 // 1..4294967295, unique
	Votes     int    // 0..255
	Addresses []netip.Addr
	// Addresses[i] is the node's address on heartbeat link i: every node
	// lists the same number of links, with the same family per link.
}

// Defaults returns a Config holding every default value and nothing else
// (no cluster name, id or key file, no nodes). A program that builds a
// configuration to Render starts from it.
func Defaults() Config {
	return Config{
		Local: Local{
			Socket:   DefaultSocket,
			LogLevel: "info",
			StateDir: DefaultStateDir,
			// sbd's default watchdog timeout.
			WatchdogTimeout: 5 * time.Second,
		},
		Heartbeat: Heartbeat{
			Interval:         2 * time.Millisecond,
			MissCount:        4,
			Port:             5405,
			Receiver:         "auto",
			XDPMode:          "auto",
			MaxClockSkew:     2 * time.Second,
			RealtimePriority: 50,
		},
		CIB: CIB{Port: 7947, PKIDir: DefaultPKIDir},
		Quorum: Quorum{
			LastManStandingWindow: 10 * time.Second,
			TieBreaker:            TieBreaker{Mode: TieLowest},
		},
	}
}

// Default locations.
const (
	DefaultPath     = "/etc/tachy/tachy.conf"
	DefaultKeyFile  = "/etc/tachy/cluster.key"
	DefaultPKIDir   = "/etc/tachy/pki"
	DefaultSocket   = "/run/tachy/tachy.sock"
	DefaultStateDir = "/var/lib/tachy"
)

// maxFileSize bounds what Load reads; a real file is a few kilobytes.
const maxFileSize = 1 << 20

// Load reads and parses the file at path. A relative cluster.key_file or
// cib.pki_dir is made absolute, relative to the directory of the file.
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w (`tachy config example > %s` writes a commented example to start from)", err, path)
		}
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("%s: larger than %d bytes; this is not a tachy configuration file", path, maxFileSize)
	}
	c, err := Parse(path, data)
	if err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return nil, err
	}
	for _, p := range []*string{&c.Cluster.KeyFile, &c.CIB.PKIDir} {
		if !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	return c, nil
}

// Node returns the node called name.
func (c *Config) Node(name string) (*Node, bool) {
	for i := range c.Nodes {
		if c.Nodes[i].Name == name {
			return &c.Nodes[i], true
		}
	}
	return nil, false
}

// NodeByID returns the node with the given id.
func (c *Config) NodeByID(id uint32) (*Node, bool) {
	for i := range c.Nodes {
		if c.Nodes[i].ID == id {
			return &c.Nodes[i], true
		}
	}
	return nil, false
}

// LocalNode returns the node this daemon runs as: override (the --node
// flag) if it is not empty, else local.node.
func (c *Config) LocalNode(override string) (*Node, error) {
	name, from := override, "--node"
	if name == "" {
		name, from = c.Local.Node, "local.node in "+c.Path
	}
	if name == "" {
		return nil, fmt.Errorf("which node is this? set node = \"NAME\" in the [local] table of %s, or pass --node NAME; nodes: %s", c.Path, c.nodeNames())
	}
	n, ok := c.Node(name)
	if !ok {
		return nil, fmt.Errorf("node %q (from %s) is not in %s; nodes: %s", name, from, c.Path, c.nodeNames())
	}
	return n, nil
}

func (c *Config) nodeNames() string {
	names := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		names[i] = n.Name
	}
	return strings.Join(names, ", ")
}

// Links is the number of heartbeat links: the number of addresses every
// node lists.
func (c *Config) Links() int {
	if len(c.Nodes) == 0 {
		return 0
	}
	return len(c.Nodes[0].Addresses)
}

// TotalVotes is the sum of the nodes' votes.
func (c *Config) TotalVotes() int {
	t := 0
	for _, n := range c.Nodes {
		t += n.Votes
	}
	return t
}

// ExpectedVotes is quorum.expected_votes, or the nodes' total votes when it
// is 0.
func (c *Config) ExpectedVotes() int {
	if c.Quorum.ExpectedVotes != 0 {
		return c.Quorum.ExpectedVotes
	}
	return c.TotalVotes()
}

// Warnings are legal settings the daemon logs a warning about at start.
func (c *Config) Warnings() []string {
	var w []string
	if c.Links() == 1 {
		w = append(w, "only one heartbeat link (each node lists one address): a single network fault will look like the death of every other node, and may cause fencing; list a second address per node on an independent network")
	}
	h := c.Heartbeat
	if h.RealtimePriority == 0 && h.Interval < 10*time.Millisecond {
		w = append(w, fmt.Sprintf("heartbeat.realtime_priority = 0 with a %v interval: without real-time scheduling, a busy CPU can delay heartbeats beyond the %v detection time and cause false failures", h.Interval, h.DetectionTime()))
	}
	if h.MaxClockSkew == 0 {
		w = append(w, "heartbeat.max_clock_skew = \"0s\" turns off the check of each frame's send time: after a restart, this node can be shown recorded frames of a dead node and take it for alive")
	}
	q := c.Quorum
	if q.TwoNode && q.WaitForAll != nil && !*q.WaitForAll {
		w = append(w, "quorum.two_node without wait_for_all: after both nodes start alone (e.g. a power cut and a broken link), each one has quorum and they will fence each other")
	}
	if !q.AutoTieBreaker && (q.TieBreaker.Mode != TieLowest || len(q.TieBreaker.Nodes) != 0) {
		w = append(w, "quorum.auto_tie_breaker_node has no effect unless quorum.auto_tie_breaker = true")
	}
	if !q.LastManStanding && q.LastManStandingWindow != 10*time.Second {
		w = append(w, "quorum.last_man_standing_window has no effect unless quorum.last_man_standing = true")
	}
	return w
}
