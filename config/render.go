package config

import (
	"fmt"
	"strings"
	"time"
)

// Render writes c in the configuration file syntax, every key explicit
// (wait_for_all only when set, local.node only when not empty), so that
// Parse(Render(c)) gives back c. Other empty strings are left out, so that
// a Config built by hand from Defaults() with a field cleared gets that
// field's default. Render does not validate: an invalid c gives a file
// that Parse rejects with the reason.
func Render(c *Config) string {
	var b strings.Builder
	w := func(key string, v any) {
		switch v := v.(type) {
		case string:
			if v == "" {
				return
			}
			fmt.Fprintf(&b, "%s = %s\n", key, quote(v))
		case time.Duration:
			fmt.Fprintf(&b, "%s = %s\n", key, quote(v.String()))
		case []string:
			q := make([]string, len(v))
			for i, s := range v {
				q[i] = quote(s)
			}
			fmt.Fprintf(&b, "%s = [%s]\n", key, strings.Join(q, ", "))
		default:
			fmt.Fprintf(&b, "%s = %v\n", key, v)
		}
	}

	b.WriteString("[cluster]\n")
	w("name", c.Cluster.Name)
	w("id", c.Cluster.ID)
	w("key_file", c.Cluster.KeyFile)

	b.WriteString("\n[local]\n")
	w("node", c.Local.Node)
	w("socket", c.Local.Socket)
	w("log_level", c.Local.LogLevel)
	w("state_dir", c.Local.StateDir)
	if c.Local.Metrics != "" {
		w("metrics", c.Local.Metrics)
	}
	if c.Local.Watchdog != "" {
		w("watchdog", c.Local.Watchdog)
	}
	w("watchdog_timeout", c.Local.WatchdogTimeout)

	b.WriteString("\n[cib]\n")
	w("port", c.CIB.Port)
	w("pki_dir", c.CIB.PKIDir)

	h := c.Heartbeat
	b.WriteString("\n[heartbeat]\n")
	w("interval", h.Interval)
	w("miss_count", h.MissCount)
	w("port", h.Port)
	w("receiver", h.Receiver)
	w("xdp_mode", h.XDPMode)
	w("max_clock_skew", h.MaxClockSkew)
	w("realtime_priority", h.RealtimePriority)
	w("grant_window", h.GrantWindow)

	q := c.Quorum
	b.WriteString("\n[quorum]\n")
	w("expected_votes", q.ExpectedVotes)
	w("two_node", q.TwoNode)
	if q.WaitForAll != nil {
		w("wait_for_all", *q.WaitForAll)
	}
	w("last_man_standing", q.LastManStanding)
	w("last_man_standing_window", q.LastManStandingWindow)
	w("auto_tie_breaker", q.AutoTieBreaker)
	if q.TieBreaker.Mode == TieList {
		w("auto_tie_breaker_node", q.TieBreaker.Nodes)
	} else {
		w("auto_tie_breaker_node", q.TieBreaker.Mode)
	}

	for _, n := range c.Nodes {
		b.WriteString("\n[[node]]\n")
		w("name", n.Name)
		w("id", n.ID)
		w("votes", n.Votes)
		addrs := make([]string, len(n.Addresses))
		for i, a := range n.Addresses {
			addrs[i] = a.String()
		}
		w("addresses", addrs)
	}
	return b.String()
}

// Example returns the documented example configuration: every key, with
// its default and what it does. `tachy config example` prints it. It
// parses cleanly (with local.node set to n1).
func Example() string { return example }

const example = `# /etc/tachy/tachy.conf: the tachy daemon's configuration.
#
# The same file goes on every node; only [local] may differ. The syntax is a
# small part of TOML: key = value, "strings", integers, true/false and
# [arrays]; durations are strings in Go syntax ("500us", "1ms", "2s", "1m").
# Keys shown with their default value may be left out.
# docs/config.md explains every key.

[cluster]
# The cluster's name: 1-32 characters a-z 0-9 -, starting with a letter.
name = "lab"
# The cluster id, carried in every heartbeat: the same on all nodes, and
# different from any other cluster on the same networks. 1..4294967295.
id = 4242
# The shared secret that authenticates heartbeats, made by ` + "`tachy keygen`" + `
# and copied to every node (mode 0600). A relative path is relative to the
# directory of this file.
key_file = "/etc/tachy/cluster.key"

[local]
# This node's name, one of the [[node]] names below. May be left out and
# given as ` + "`tachy daemon --node NAME`" + ` instead, so that one file serves all.
node = "n1"
# The root-only control socket ` + "`tachy status`" + ` talks to.
socket = "/run/tachy/tachy.sock"
# debug | info | warn | error
log_level = "info"
# Where the daemon keeps its state (the replicated CIB in state_dir/cib).
state_dir = "/var/lib/tachy"
# Prometheus metrics at http://ADDRESS/metrics; leave out for none.
metrics = "127.0.0.1:9647"
# Self-fencing: the watchdog device this node feeds while it is in a
# quorate partition (leave out for none), and its timeout in whole seconds.
# A node that loses quorum is reset by it that long after.
# watchdog = "/dev/watchdog"
watchdog_timeout = "5s"

[cib]
# TCP port of the replicated CIB (Raft over mutual TLS) on each node's
# first address, the same on all nodes. 1..65535.
port = 7947
# The cluster CA certificate and this node's certificate and key, made by
# ` + "`tachy cluster init`" + ` (ca.crt, NODE.crt, NODE.key). A relative path is
# relative to the directory of this file.
pki_dir = "/etc/tachy/pki"

[heartbeat]
# How often each link sends a heartbeat to every peer: 1ms..10s.
interval = "2ms"
# A link is down after interval * miss_count without a valid frame
# (here 8ms); a node is down when all its links are. 2..1000.
miss_count = 4
# UDP port of the heartbeat links, the same on all nodes. 1..65535.
port = 5405
# auto | xdp | udp: auto tries XDP on every link's interface and falls back
# to the user-space UDP receiver where it cannot attach.
receiver = "auto"
# auto | native | generic: how the XDP program is attached.
xdp_mode = "auto"
# Frames whose send time differs more than this from this node's clock are
# rejected as replays. "0s" turns the check off; at most "1h".
max_clock_skew = "2s"
# SCHED_FIFO priority of the sender and receiver threads, 1..99;
# 0 runs them at normal priority.
realtime_priority = 50
# The fast failover of floating IPs: a node's view frames grant a lease only
# to the peers it heard within this window, so a failed holder's VIPs move
# about grant_window + 2 * interval + the lease (the detection time or 5
# intervals) after its last heartbeat; a live holder whose heartbeats stall
# about as long loses them too. More than interval, at most the detection
# time; "0s" = the detection time.
grant_window = "0s"

[quorum]
# The votes a partition needs more than half of; 0 = the sum of the nodes'
# votes.
expected_votes = 0
# A two-node cluster: either node alone keeps quorum (fencing decides who
# survives). Requires exactly 2 nodes with 1 vote each.
two_node = false
# After a cold start, gain quorum only once all nodes have been seen
# together. Default: the same as two_node.
# wait_for_all = false
# Recalculate expected votes downwards when nodes leave, one step every
# last_man_standing_window (1s..1h), so a shrinking cluster keeps quorum.
last_man_standing = false
last_man_standing_window = "10s"
# In a split into equal halves, the half holding the tie-breaker node keeps
# quorum: "lowest" or "highest" node id, or node names in order of
# preference, e.g. ["n1", "n3"].
auto_tie_breaker = false
auto_tie_breaker_node = "lowest"

# One [[node]] per cluster member, 1 to 32 of them.
# name: unique, 1-32 characters a-z 0-9 -, starting with a letter.
# id: unique, 1..4294967295.
# votes: 0..255 (default 1); at least one node must have votes.
# addresses: the node's address on each heartbeat link, link 0 first
# (IPv4 or IPv6). Every node lists the same number of links (1..8) with the
# same address family per link. Use two or more links on independent
# networks: with one, a single network fault looks like a dead node.
[[node]]
name = "n1"
id = 1
votes = 1
addresses = ["10.77.0.1", "10.77.1.1"]

[[node]]
name = "n2"
id = 2
addresses = ["10.77.0.2", "10.77.1.2"]

[[node]]
name = "n3"
id = 3
addresses = [
    "10.77.0.3",   # link 0
    "10.77.1.3",   # link 1
]
`
