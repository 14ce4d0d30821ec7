package config

// The schema layer: gives the parsed entries their meaning, applies the
// defaults, and validates each value and then the file as a whole.

import (
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// tableKeys lists each table's keys, in the documented order.
var tableKeys = map[string][]string{
	"cluster":   {"name", "id", "key_file"},
	"local":     {"node", "socket", "log_level", "state_dir", "metrics", "watchdog", "watchdog_timeout"},
	"cib":       {"port", "pki_dir"},
	"heartbeat": {"interval", "miss_count", "port", "receiver", "xdp_mode", "max_clock_skew", "realtime_priority", "grant_window"},
	"quorum":    {"expected_votes", "two_node", "wait_for_all", "last_man_standing", "last_man_standing_window", "auto_tie_breaker", "auto_tie_breaker_node"},
	"node":      {"name", "id", "votes", "addresses"},
}

// Limits.
const (
	MaxNodes      = 32
	MaxLinks      = 8
	maxNameLen    = 32
	maxSocketPath = 107 // sun_path holds 108 bytes with the terminating NUL
)

const (
	nameHelp    = "use 1 to 32 characters a-z, 0-9 and -, starting with a letter"
	addressHelp = `use IPv4 or IPv6 literals such as "10.77.0.1" or "fd00:77::1", one per heartbeat link`
	tieHelp     = `use "lowest", "highest", or node names in order of preference, e.g. ["n1", "n3"]`
)

// Parse reads a configuration file's contents. name is the file name used
// in error messages and kept as Config.Path. Defaults are applied and the
// whole file is validated; the error lists every problem found (a syntax
// error stops the reading, so problems after it are not reported).
// Relative paths are left as written: Load resolves cluster.key_file.
func Parse(name string, data []byte) (*Config, error) {
	doc, perr := parseDocument(name, data)
	if perr != nil {
		var errs []*Error
		if doc != nil {
			errs = doc.soft
		}
		return nil, asError(append(errs, perr))
	}
	c := Defaults()
	c.Path = name
	d := &decoder{file: name, doc: doc, c: &c, lines: map[string]int{}}
	d.errs = append(d.errs, doc.soft...)
	seen := map[string]bool{}
	for _, t := range doc.tables {
		if t.ignore {
			continue
		}
		seen[t.name] = true
		d.lines["["+t.name+"]"] = t.line
		switch t.name {
		case "":
			for _, e := range t.entries {
				d.errAt(e.line, clip(e.key), "key outside any table; put it under its table: %s", allowedTables)
			}
		case "cluster":
			d.cluster(t)
		case "local":
			d.local(t)
		case "heartbeat":
			d.heartbeat(t)
		case "cib":
			d.cib(t)
		case "quorum":
			d.quorum(t)
		case "node":
			d.node(t)
		}
	}
	if !seen["cluster"] {
		d.errAt(d.doc.lines, "[cluster]", "missing table; every file needs [cluster] with name, id and key_file")
	}
	if !seen["node"] {
		d.errAt(d.doc.lines, "[[node]]", "no nodes; add one [[node]] table (name, id, addresses) for each cluster member, 1 to %d", MaxNodes)
	}
	if len(d.errs) == 0 {
		d.validate()
	}
	if err := asError(d.errs); err != nil {
		return nil, err
	}
	return &c, nil
}

type decoder struct {
	file  string
	doc   *document
	c     *Config
	errs  []*Error
	lines map[string]int // "[cluster]", "cluster.name", "node.2.id", "node.2.addresses.1" -> line
	nodes int            // [[node]] tables seen
}

func (d *decoder) errAt(line int, where, format string, a ...any) {
	d.errs = append(d.errs, &Error{File: d.file, Line: line, Key: where, Msg: fmt.Sprintf(format, a...)})
}

// at is the line of the first of keys that is in the file, else the last line.
func (d *decoder) at(keys ...string) int {
	for _, k := range keys {
		if l, ok := d.lines[k]; ok {
			return l
		}
	}
	return d.doc.lines
}

func (d *decoder) unknown(e *entry, table string) {
	shown := "[" + table + "]"
	if table == "node" {
		shown = "[[node]]"
	}
	d.errAt(e.line, table+"."+clip(e.key), "unknown key; allowed keys in %s: %s", shown, strings.Join(tableKeys[table], ", "))
}

// require reports the keys of t that are missing.
func (d *decoder) require(t *table, where string, keys map[string]string) {
	for _, k := range tableKeys[t.name] {
		help, required := keys[k]
		if _, ok := t.seen[k]; required && !ok {
			d.errAt(t.line, where+"."+k, "missing; this key is required: %s", help)
		}
	}
}

func (d *decoder) wrongType(e *entry, where string, want kind, help string) {
	d.errAt(e.val.line, where, "expected %s, got %s; %s", want, e.val.describe(), help)
}

func (d *decoder) str(e *entry, where, help string) (string, bool) {
	if e.val.kind != kString {
		d.wrongType(e, where, kString, help)
		return "", false
	}
	return e.val.str, true
}

func (d *decoder) boolean(e *entry, where string) (bool, bool) {
	if e.val.kind != kBool {
		d.wrongType(e, where, kBool, "use true or false")
		return false, false
	}
	return e.val.b, true
}

func (d *decoder) integer(e *entry, where string, lo, hi int64) (int64, bool) {
	help := fmt.Sprintf("use an integer from %d to %d", lo, hi)
	if e.val.kind != kInt {
		if e.val.kind == kString {
			if _, err := strconv.ParseInt(e.val.str, 10, 64); err == nil {
				d.errAt(e.val.line, where, "expected an integer, got %s; write the number without quotes; %s", e.val.describe(), help)
				return 0, false
			}
		}
		d.wrongType(e, where, kInt, help)
		return 0, false
	}
	switch n := e.val.num; {
	case n < lo:
		d.errAt(e.val.line, where, "%d is below the minimum; %s", n, help)
	case n > hi:
		d.errAt(e.val.line, where, "%d is above the maximum; %s", n, help)
	default:
		return n, true
	}
	return 0, false
}

func (d *decoder) duration(e *entry, where string, lo, hi time.Duration, loName string) (time.Duration, bool) {
	help := fmt.Sprintf("use a duration from %s to %s", loName, shortDuration(hi))
	if e.val.kind == kInt {
		d.errAt(e.val.line, where, "expected a duration string, got %s; write it in quotes with a unit, e.g. \"%dms\"; %s", e.val.describe(), e.val.num, help)
		return 0, false
	}
	s, ok := d.str(e, where, help)
	if !ok {
		return 0, false
	}
	v, err := time.ParseDuration(s)
	switch {
	case err != nil:
		d.errAt(e.val.line, where, "%s is not a duration; %s, written like \"1ms\", \"500us\", \"2s\" or \"1m30s\"", show(s), help)
	case v < lo:
		d.errAt(e.val.line, where, "%s is below the minimum; %s", show(s), help)
	case v > hi:
		d.errAt(e.val.line, where, "%s is above the maximum; %s", show(s), help)
	default:
		return v, true
	}
	return 0, false
}

func (d *decoder) choice(e *entry, where string, choices ...string) (string, bool) {
	help := "use " + orList(choices)
	s, ok := d.str(e, where, help)
	if !ok {
		return "", false
	}
	for _, c := range choices {
		if s == c {
			return s, true
		}
	}
	d.errAt(e.val.line, where, "%s is not allowed; %s", show(s), help)
	return "", false
}

// orList writes "a, b or c".
func orList(s []string) string {
	if len(s) <= 1 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1]
}

// validName is the rule for cluster and node names.
func validName(s string) bool {
	if len(s) == 0 || len(s) > maxNameLen || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func (d *decoder) name(e *entry, where string) (string, bool) {
	s, ok := d.str(e, where, nameHelp)
	if !ok {
		return "", false
	}
	if !validName(s) {
		d.errAt(e.val.line, where, "%s is not a valid name; %s", show(s), nameHelp)
		return "", false
	}
	return s, true
}

func (d *decoder) path(e *entry, where string, absolute bool, maxLen int) (string, bool) {
	help := "use a file path"
	if absolute {
		help = "use an absolute path"
	}
	s, ok := d.str(e, where, help)
	if !ok {
		return "", false
	}
	switch {
	case s == "":
		d.errAt(e.val.line, where, "empty path; %s", help)
	case strings.IndexByte(s, 0) >= 0:
		d.errAt(e.val.line, where, "a path cannot contain a NUL character; %s", help)
	case absolute && !strings.HasPrefix(s, "/"):
		d.errAt(e.val.line, where, "%s is not an absolute path; %s (starting with /)", show(s), help)
	case maxLen > 0 && len(s) > maxLen:
		d.errAt(e.val.line, where, "path is %d bytes long; a unix socket path is at most %d bytes", len(s), maxLen)
	default:
		return s, true
	}
	return "", false
}

func (d *decoder) cluster(t *table) {
	c := &d.c.Cluster
	for _, e := range t.entries {
		w := "cluster." + e.key
		d.lines[w] = e.line
		switch e.key {
		case "name":
			if s, ok := d.name(e, w); ok {
				c.Name = s
			}
		case "id":
			if n, ok := d.integer(e, w, 1, math.MaxUint32); ok {
				c.ID = uint32(n)
			}
		case "key_file":
			if s, ok := d.path(e, w, false, 0); ok {
				c.KeyFile = s
			}
		default:
			d.unknown(e, t.name)
		}
	}
	d.require(t, "cluster", map[string]string{
		"name":     `the cluster's name, e.g. name = "lab"; ` + nameHelp,
		"id":       "a number that every node of this cluster shares and no other cluster on the network uses, from 1 to 4294967295",
		"key_file": `the shared secret made by ` + "`tachy keygen`" + `, e.g. key_file = "` + DefaultKeyFile + `"`,
	})
}

func (d *decoder) cib(t *table) {
	c := &d.c.CIB
	for _, e := range t.entries {
		w := "cib." + e.key
		d.lines[w] = e.line
		switch e.key {
		case "port":
			if n, ok := d.integer(e, w, 1, 65535); ok {
				c.Port = int(n)
			}
		case "pki_dir":
			if s, ok := d.path(e, w, false, 0); ok {
				c.PKIDir = s
			}
		default:
			d.unknown(e, t.name)
		}
	}
}

func (d *decoder) local(t *table) {
	l := &d.c.Local
	for _, e := range t.entries {
		w := "local." + e.key
		d.lines[w] = e.line
		switch e.key {
		case "node":
			if s, ok := d.name(e, w); ok {
				l.Node = s
			}
		case "socket":
			if s, ok := d.path(e, w, true, maxSocketPath); ok {
				l.Socket = s
			}
		case "log_level":
			if s, ok := d.choice(e, w, "debug", "info", "warn", "error"); ok {
				l.LogLevel = s
			}
		case "state_dir":
			if s, ok := d.path(e, w, true, 0); ok {
				l.StateDir = s
			}
		case "watchdog":
			if s, ok := d.path(e, w, true, 0); ok {
				l.Watchdog = s
			}
		case "watchdog_timeout":
			if v, ok := d.duration(e, w, time.Second, time.Minute, "1s"); ok {
				if v%time.Second != 0 {
					d.errAt(e.line, w, "%v: the watchdog counts whole seconds; use e.g. \"5s\"", v)
				} else {
					l.WatchdogTimeout = v
				}
			}
		case "metrics":
			if s, ok := d.str(e, w, `an address and port, e.g. metrics = "127.0.0.1:9647"`); ok {
				if _, err := netip.ParseAddrPort(s); s != "" && err != nil {
					d.errAt(e.line, w, "%q is not an address and port; use e.g. \"127.0.0.1:9647\" or \"[::]:9647\", or \"\" for none", s)
				} else {
					l.Metrics = s
				}
			}
		default:
			d.unknown(e, t.name)
		}
	}
}

func (d *decoder) heartbeat(t *table) {
	h := &d.c.Heartbeat
	for _, e := range t.entries {
		w := "heartbeat." + e.key
		d.lines[w] = e.line
		switch e.key {
		case "interval":
			if v, ok := d.duration(e, w, time.Millisecond, 10*time.Second, "1ms"); ok {
				h.Interval = v
			}
		case "miss_count":
			if n, ok := d.integer(e, w, 2, 1000); ok {
				h.MissCount = int(n)
			}
		case "port":
			if n, ok := d.integer(e, w, 1, 65535); ok {
				h.Port = int(n)
			}
		case "receiver":
			if s, ok := d.choice(e, w, "auto", "xdp", "udp"); ok {
				h.Receiver = s
			}
		case "xdp_mode":
			if s, ok := d.choice(e, w, "auto", "native", "generic"); ok {
				h.XDPMode = s
			}
		case "max_clock_skew":
			if v, ok := d.duration(e, w, 0, time.Hour, `"0s" (no check)`); ok {
				h.MaxClockSkew = v
			}
		case "realtime_priority":
			if n, ok := d.integer(e, w, 0, 99); ok {
				h.RealtimePriority = int(n)
			}
		case "grant_window":
			if v, ok := d.duration(e, w, 0, 10*time.Minute, `"0s" (the detection time)`); ok {
				h.GrantWindow = v
			}
		default:
			d.unknown(e, t.name)
		}
	}
}

func (d *decoder) quorum(t *table) {
	q := &d.c.Quorum
	for _, e := range t.entries {
		w := "quorum." + e.key
		d.lines[w] = e.line
		switch e.key {
		case "expected_votes":
			if n, ok := d.integer(e, w, 0, 65535); ok {
				q.ExpectedVotes = int(n)
			}
		case "two_node":
			if b, ok := d.boolean(e, w); ok {
				q.TwoNode = b
			}
		case "wait_for_all":
			if b, ok := d.boolean(e, w); ok {
				q.WaitForAll = &b
			}
		case "last_man_standing":
			if b, ok := d.boolean(e, w); ok {
				q.LastManStanding = b
			}
		case "last_man_standing_window":
			if v, ok := d.duration(e, w, time.Second, time.Hour, "1s"); ok {
				q.LastManStandingWindow = v
			}
		case "auto_tie_breaker":
			if b, ok := d.boolean(e, w); ok {
				q.AutoTieBreaker = b
			}
		case "auto_tie_breaker_node":
			d.tieBreaker(e, w)
		default:
			d.unknown(e, t.name)
		}
	}
}

func (d *decoder) tieBreaker(e *entry, where string) {
	q := &d.c.Quorum
	switch e.val.kind {
	case kString:
		switch s := e.val.str; {
		case s == TieLowest || s == TieHighest:
			q.TieBreaker = TieBreaker{Mode: s}
		case validName(s):
			q.TieBreaker = TieBreaker{Mode: TieList, Nodes: []string{s}}
		default:
			d.errAt(e.val.line, where, "%s is neither lowest, highest nor a node name; %s", show(s), tieHelp)
		}
	case kArray:
		if len(e.val.arr) == 0 {
			d.errAt(e.val.line, where, "empty list; %s", tieHelp)
			return
		}
		if e.val.arr[0].kind != kString {
			d.errAt(e.val.line, where, "expected node names, got an array of integers; %s", tieHelp)
			return
		}
		var names []string
		seen := map[string]bool{}
		for _, v := range e.val.arr {
			switch {
			case !validName(v.str):
				d.errAt(v.line, where, "%s is not a valid node name; %s", show(v.str), nameHelp)
				return
			case seen[v.str]:
				d.errAt(v.line, where, "%s is listed twice; list each node once", show(v.str))
				return
			}
			seen[v.str] = true
			names = append(names, v.str)
		}
		q.TieBreaker = TieBreaker{Mode: TieList, Nodes: names}
	default:
		d.wrongType(e, where, kString, tieHelp)
	}
}

func (d *decoder) node(t *table) {
	i := d.nodes
	d.nodes++
	prefix := "node." + strconv.Itoa(i) + "."
	d.lines[prefix+"header"] = t.line
	n := Node{Votes: 1}
	for _, e := range t.entries {
		w := "node." + e.key
		d.lines[prefix+e.key] = e.line
		switch e.key {
		case "name":
			if s, ok := d.name(e, w); ok {
				n.Name = s
			}
		case "id":
			if v, ok := d.integer(e, w, 1, math.MaxUint32); ok {
				n.ID = uint32(v)
			}
		case "votes":
			if v, ok := d.integer(e, w, 0, 255); ok {
				n.Votes = int(v)
			}
		case "addresses":
			n.Addresses = d.addresses(e, w, prefix)
		default:
			d.unknown(e, t.name)
		}
	}
	d.require(t, "node", map[string]string{
		"name":      `the node's name, e.g. name = "n1"; ` + nameHelp,
		"id":        "a number unique in the cluster, from 1 to 4294967295",
		"addresses": `the node's address on each heartbeat link, link 0 first, e.g. addresses = ["10.77.0.1", "10.77.1.1"]`,
	})
	d.c.Nodes = append(d.c.Nodes, n)
}

func (d *decoder) addresses(e *entry, where, prefix string) []netip.Addr {
	switch {
	case e.val.kind == kString:
		d.errAt(e.val.line, where, "expected an array, got %s; write addresses = [%s] (one address per heartbeat link)", e.val.describe(), show(e.val.str))
		return nil
	case e.val.kind != kArray:
		d.wrongType(e, where, kArray, addressHelp)
		return nil
	case len(e.val.arr) == 0:
		d.errAt(e.val.line, where, "empty list; %s", addressHelp)
		return nil
	case e.val.arr[0].kind != kString:
		d.errAt(e.val.line, where, "expected strings, got an array of integers; %s", addressHelp)
		return nil
	case len(e.val.arr) > MaxLinks:
		d.errAt(e.val.line, where, "%d addresses; %d heartbeat links at most, one address per link", len(e.val.arr), MaxLinks)
		return nil
	}
	var out []netip.Addr
	ok := true
	for j, v := range e.val.arr {
		d.lines[prefix+"addresses."+strconv.Itoa(j)] = v.line
		a, err := netip.ParseAddr(v.str)
		switch {
		case err != nil:
			d.errAt(v.line, where, "%s is not an IP address; %s", show(v.str), addressHelp)
		case a.Zone() != "":
			d.errAt(v.line, where, "%s has a zone; write the address without %%%s (link-local addresses cannot be used)", show(v.str), a.Zone())
		case a.Is4In6():
			d.errAt(v.line, where, "%s is an IPv4-mapped IPv6 address; write it as IPv4: %s", show(v.str), a.Unmap())
		case a.IsUnspecified() || a.IsMulticast() || a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
			d.errAt(v.line, where, "%s cannot be a node's address; give the node's own unicast address on the link", show(v.str))
		case a.IsLinkLocalUnicast() && a.Is6():
			d.errAt(v.line, where, "%s is an IPv6 link-local address, which needs a zone; use a global or unique-local (fd00::/8) address", show(v.str))
		default:
			out = append(out, a)
			continue
		}
		ok = false
	}
	if !ok {
		return nil
	}
	return out
}

// validate checks the file as a whole, once every value is valid.
func (d *decoder) validate() {
	c := d.c
	nodeAt := func(i int, key string) int {
		p := "node." + strconv.Itoa(i) + "."
		return d.at(p+key, p+"header")
	}
	if len(c.Nodes) > MaxNodes {
		d.errAt(nodeAt(MaxNodes, "header"), "[[node]]", "%d nodes; a cluster has at most %d", len(c.Nodes), MaxNodes)
	}

	// The link count most nodes have is the reference (the first node's
	// in a tie), so that one odd node is the one reported.
	ref, counts := 0, map[int]int{}
	for i, n := range c.Nodes {
		counts[len(n.Addresses)]++
		if counts[len(n.Addresses)] > counts[len(c.Nodes[ref].Addresses)] {
			ref = i
		}
	}

	names := map[string]int{}
	ids := map[uint32]int{}
	addrs := map[netip.Addr][2]int{} // node, link
	votes := 0
	for i, n := range c.Nodes {
		if j, dup := names[n.Name]; dup {
			d.errAt(nodeAt(i, "name"), "node.name", "%s is already the name of the node on line %d; node names must be unique", show(n.Name), nodeAt(j, "name"))
		} else {
			names[n.Name] = i
		}
		if j, dup := ids[n.ID]; dup {
			d.errAt(nodeAt(i, "id"), "node.id", "%d is already the id of node %s (line %d); node ids must be unique", n.ID, show(c.Nodes[j].Name), nodeAt(j, "id"))
		} else {
			ids[n.ID] = i
		}
		votes += n.Votes

		first := c.Nodes[ref]
		if len(n.Addresses) != len(first.Addresses) {
			d.errAt(nodeAt(i, "addresses"), "node.addresses", "node %s lists %s but node %s lists %s; every node lists one address per heartbeat link, in the same order",
				show(n.Name), plural(len(n.Addresses), "address"), show(first.Name), plural(len(first.Addresses), "address"))
		}
		for l, a := range n.Addresses {
			line := d.at("node."+strconv.Itoa(i)+".addresses."+strconv.Itoa(l), "node."+strconv.Itoa(i)+".addresses")
			if l < len(first.Addresses) && a.Is4() != first.Addresses[l].Is4() {
				d.errAt(line, "node.addresses", "link %d of node %s is %s (%s) but link %d of node %s is %s (%s); all nodes use the same address family on a link",
					l, show(n.Name), family(a), a, l, show(first.Name), family(first.Addresses[l]), first.Addresses[l])
			}
			if prev, dup := addrs[a]; dup {
				d.errAt(line, "node.addresses", "%s is already the link %d address of node %s (line %d); no address may appear twice",
					a, prev[1], show(c.Nodes[prev[0]].Name), d.at("node."+strconv.Itoa(prev[0])+".addresses."+strconv.Itoa(prev[1])))
			} else {
				addrs[a] = [2]int{i, l}
			}
		}
	}
	if votes == 0 && len(c.Nodes) > 0 {
		d.errAt(nodeAt(0, "votes"), "node.votes", "every node has 0 votes; at least one node must have votes (1 to 255)")
	}

	if l := c.Local.Node; l != "" {
		if _, ok := names[l]; !ok {
			d.errAt(d.at("local.node"), "local.node", "%s is not a configured node; use one of: %s", show(l), c.nodeNames())
		}
	}

	if h := c.Heartbeat; h.GrantWindow != 0 && (h.GrantWindow <= h.Interval || h.GrantWindow > h.DetectionTime()) {
		d.errAt(d.at("heartbeat.grant_window"), "heartbeat.grant_window", "%s is outside its range: more than the interval (%s) and at most the detection time, interval * miss_count (%s); use e.g. %s (2 intervals), or \"0s\" for the detection time",
			shortDuration(h.GrantWindow), shortDuration(h.Interval), shortDuration(h.DetectionTime()), show(shortDuration(min(2*h.Interval, h.DetectionTime()))))
	}

	q := c.Quorum
	if q.TwoNode {
		line := d.at("quorum.two_node")
		switch {
		case len(c.Nodes) != 2:
			d.errAt(line, "quorum.two_node", "two_node needs exactly 2 nodes, and the file has %d; set two_node = false", len(c.Nodes))
		case c.Nodes[0].Votes != 1 || c.Nodes[1].Votes != 1:
			d.errAt(line, "quorum.two_node", "two_node needs both nodes to have 1 vote, and they have %d and %d; set votes = 1 on both", c.Nodes[0].Votes, c.Nodes[1].Votes)
		case q.ExpectedVotes != 0 && q.ExpectedVotes != 2:
			d.errAt(d.at("quorum.expected_votes"), "quorum.expected_votes", "%d with two_node; leave expected_votes out (or 0), or set it to 2", q.ExpectedVotes)
		}
	}
	for _, n := range q.TieBreaker.Nodes {
		if _, ok := names[n]; !ok {
			d.errAt(d.at("quorum.auto_tie_breaker_node"), "quorum.auto_tie_breaker_node", "%s is not a configured node; %s, naming nodes among: %s", show(n), tieHelp, c.nodeNames())
		}
	}
}

func family(a netip.Addr) string {
	if a.Is4() {
		return "IPv4"
	}
	return "IPv6"
}

// plural writes "1 address", "2 addresses".
func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	if strings.HasSuffix(word, "s") {
		return strconv.Itoa(n) + " " + word + "es"
	}
	return strconv.Itoa(n) + " " + word + "s"
}

// shortDuration writes d without the zero units time.Duration.String adds:
// "1h", not "1h0m0s".
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}
