package config

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// The pieces most test files are made of: a valid [cluster] and two nodes.
const head = `[cluster]
name = "lab"
id = 4242
key_file = "cluster.key"
`

const twoNodes = `
[[node]]
name = "n1"
id = 1
addresses = ["10.77.0.1", "10.77.1.1"]

[[node]]
name = "n2"
id = 2
addresses = ["10.77.0.2", "10.77.1.2"]
`

// file is a valid file with mid between [cluster] and the nodes.
func file(mid string) string { return head + mid + twoNodes }

// withNode is a valid file with a third node (or anything else) at the end.
func withNode(n string) string { return head + twoNodes + "\n" + n }

func mustParse(t *testing.T, src string) *Config {
	t.Helper()
	c, err := Parse("tachy.conf", []byte(src))
	if err != nil {
		t.Fatalf("Parse: %v\n--- file:\n%s", err, src)
	}
	return c
}

func addrs(s ...string) []netip.Addr {
	out := make([]netip.Addr, len(s))
	for i, a := range s {
		out[i] = netip.MustParseAddr(a)
	}
	return out
}

func ptr[T any](v T) *T { return &v }

// goodFiles parse cleanly; check (if set) looks at the result.
var goodFiles = []struct {
	name  string
	src   string
	check func(t *testing.T, c *Config)
}{
	{"minimal", file(""), func(t *testing.T, c *Config) {
		want := Defaults()
		want.Path = "tachy.conf"
		want.Cluster = Cluster{Name: "lab", ID: 4242, KeyFile: "cluster.key"}
		want.Nodes = []Node{
			{Name: "n1", ID: 1, Votes: 1, Addresses: addrs("10.77.0.1", "10.77.1.1")},
			{Name: "n2", ID: 2, Votes: 1, Addresses: addrs("10.77.0.2", "10.77.1.2")},
		}
		if !reflect.DeepEqual(c, &want) {
			t.Errorf("got  %+v\nwant %+v", c, &want)
		}
		if c.Links() != 2 || c.ExpectedVotes() != 2 || c.Heartbeat.DetectionTime() != 8*time.Millisecond {
			t.Errorf("Links %d, ExpectedVotes %d, DetectionTime %v", c.Links(), c.ExpectedVotes(), c.Heartbeat.DetectionTime())
		}
		if w := c.Warnings(); len(w) != 0 {
			t.Errorf("warnings: %q", w)
		}
	}},
	{"every key", `# a comment
[cluster]
name = "prod-db-7"   # trailing comment
id = 4_294_967_295
key_file = '/etc/tachy/prod.key'

[local]
node = "b"
socket = "/run/t.sock"
log_level = "debug"
state_dir = "/srv/tachy"
metrics = "[::1]:9100"
watchdog = "/dev/watchdog1"
watchdog_timeout = "12s"

[cib]
port = 8000
pki_dir = "/srv/pki"

[heartbeat]
interval = "2.5ms"
miss_count = +1000
port = 1
receiver = "udp"
xdp_mode = "generic"
max_clock_skew = "1h"
realtime_priority = 99
grant_window = "5ms"

[quorum]
expected_votes = 7
two_node = false
wait_for_all = false
last_man_standing = true
last_man_standing_window = "1m30s"
auto_tie_breaker = true
auto_tie_breaker_node = ["b", "a"]

[[node]]
name = "a"
id = 10
votes = 0
addresses = ["fd00:77::1", "192.168.1.1", "10.0.0.1"]

[[node]]
name = "b"
id = 20
votes = 255
addresses = [
	"fd00:77::2",  # link 0
	"192.168.1.2", # link 1

	"10.0.0.2",    # link 2, and a trailing comma
]
`, func(t *testing.T, c *Config) {
		want := &Config{
			Path:      "tachy.conf",
			Cluster:   Cluster{Name: "prod-db-7", ID: 4294967295, KeyFile: "/etc/tachy/prod.key"},
			Local:     Local{Node: "b", Socket: "/run/t.sock", LogLevel: "debug", StateDir: "/srv/tachy", Metrics: "[::1]:9100", Watchdog: "/dev/watchdog1", WatchdogTimeout: 12 * time.Second},
			Heartbeat: Heartbeat{Interval: 2500 * time.Microsecond, MissCount: 1000, Port: 1, Receiver: "udp", XDPMode: "generic", MaxClockSkew: time.Hour, RealtimePriority: 99, GrantWindow: 5 * time.Millisecond},
			CIB:       CIB{Port: 8000, PKIDir: "/srv/pki"},
			Quorum: Quorum{ExpectedVotes: 7, WaitForAll: ptr(false), LastManStanding: true, LastManStandingWindow: 90 * time.Second,
				AutoTieBreaker: true, TieBreaker: TieBreaker{Mode: TieList, Nodes: []string{"b", "a"}}},
			Nodes: []Node{
				{Name: "a", ID: 10, Votes: 0, Addresses: addrs("fd00:77::1", "192.168.1.1", "10.0.0.1")},
				{Name: "b", ID: 20, Votes: 255, Addresses: addrs("fd00:77::2", "192.168.1.2", "10.0.0.2")},
			},
		}
		if !reflect.DeepEqual(c, want) {
			t.Errorf("got  %+v\nwant %+v", c, want)
		}
		if c.Links() != 3 || c.ExpectedVotes() != 7 || c.TotalVotes() != 255 {
			t.Errorf("Links %d ExpectedVotes %d TotalVotes %d", c.Links(), c.ExpectedVotes(), c.TotalVotes())
		}
		if c.Quorum.WaitsForAll() {
			t.Error("WaitsForAll with wait_for_all = false")
		}
	}},
	{"crlf, bom, tabs, spacing", "\uFEFF[ cluster ]\r\n\tname\t=\t\"lab\"\r\nid=4242\r\nkey_file=\"k\"   \r\n\r\n[[node]]\r\nname = \"n1\"\r\nid = 1\r\naddresses = [ \"10.0.0.1\" , \"10.1.0.1\" , ]\r\n", func(t *testing.T, c *Config) {
		if c.Cluster.Name != "lab" || c.Cluster.KeyFile != "k" || len(c.Nodes) != 1 || c.Links() != 2 {
			t.Errorf("got %+v", c)
		}
	}},
	{"no newline at the end", head + "[[node]]\nname = \"n1\"\nid = 1\naddresses = [\"10.0.0.1\", \"10.1.0.1\"]", nil},
	{"escapes", strings.Replace(file(""), `key_file = "cluster.key"`, `key_file = "/k\u00e9y \"q\" \\ \t\u0001"`, 1), func(t *testing.T, c *Config) {
		if want := "/k\u00e9y \"q\" \\ \t\x01"; c.Cluster.KeyFile != want {
			t.Errorf("key_file %q, want %q", c.Cluster.KeyFile, want)
		}
	}},
	{"literal string keeps backslashes", strings.Replace(file(""), `key_file = "cluster.key"`, `key_file = 'C:\keys\n"x"'`, 1), func(t *testing.T, c *Config) {
		if want := `C:\keys\n"x"`; c.Cluster.KeyFile != want {
			t.Errorf("key_file %q, want %q", c.Cluster.KeyFile, want)
		}
	}},
	{"tie-breaker node as a string", file("[quorum]\nauto_tie_breaker = true\nauto_tie_breaker_node = \"n2\"\n"), func(t *testing.T, c *Config) {
		if want := (TieBreaker{Mode: TieList, Nodes: []string{"n2"}}); !reflect.DeepEqual(c.Quorum.TieBreaker, want) {
			t.Errorf("tie breaker %+v", c.Quorum.TieBreaker)
		}
	}},
	{"tie-breaker highest", file("[quorum]\nauto_tie_breaker = true\nauto_tie_breaker_node = \"highest\"\n"), func(t *testing.T, c *Config) {
		if want := (TieBreaker{Mode: TieHighest}); !reflect.DeepEqual(c.Quorum.TieBreaker, want) {
			t.Errorf("tie breaker %+v", c.Quorum.TieBreaker)
		}
	}},
	{"two_node", file("[quorum]\ntwo_node = true\nexpected_votes = 2\n"), func(t *testing.T, c *Config) {
		if !c.Quorum.TwoNode || c.Quorum.WaitForAll != nil || !c.Quorum.WaitsForAll() {
			t.Errorf("quorum %+v", c.Quorum)
		}
	}},
	{"tables in any order, local.node left out", twoNodes + "[heartbeat]\nport = 6000\n" + head, func(t *testing.T, c *Config) {
		if c.Heartbeat.Port != 6000 || c.Local.Node != "" || c.Nodes[0].Name != "n1" {
			t.Errorf("got %+v", c)
		}
	}},
	{"zero priority and skew, one link", head + "[heartbeat]\nrealtime_priority = 0\nmax_clock_skew = \"0\"\n[[node]]\nname = \"n1\"\nid = 1\naddresses = [\"::1\"]\n", func(t *testing.T, c *Config) {
		if c.Heartbeat.RealtimePriority != 0 || c.Heartbeat.MaxClockSkew != 0 {
			t.Errorf("heartbeat %+v", c.Heartbeat)
		}
		w := strings.Join(c.Warnings(), "\n")
		for _, s := range []string{"only one heartbeat link", "realtime_priority = 0", "max_clock_skew"} {
			if !strings.Contains(w, s) {
				t.Errorf("warnings %q lack %q", w, s)
			}
		}
	}},
	{"32 nodes", head + nodes(32), func(t *testing.T, c *Config) {
		if len(c.Nodes) != 32 {
			t.Errorf("%d nodes", len(c.Nodes))
		}
	}},
	{"example", Example(), func(t *testing.T, c *Config) {
		if c.Local.Node != "n1" || len(c.Nodes) != 3 || c.Links() != 2 {
			t.Errorf("example: %+v", c)
		}
		// The example shows the defaults.
		d := Defaults()
		if c.Local.Socket != d.Local.Socket || c.Local.StateDir != d.Local.StateDir || c.Local.LogLevel != d.Local.LogLevel ||
			c.Heartbeat != d.Heartbeat || !reflect.DeepEqual(c.Quorum, d.Quorum) || c.Cluster.KeyFile != DefaultKeyFile {
			t.Errorf("example differs from the defaults: %+v", c)
		}
		if w := c.Warnings(); len(w) != 0 {
			t.Errorf("example has warnings: %q", w)
		}
	}},
}

// nodes writes n valid [[node]] tables with one link each.
func nodes(n int) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "[[node]]\nname = \"n%d\"\nid = %d\naddresses = [\"10.0.%d.%d\", \"fd00::%x\"]\n", i, i, i/256, i%256, i)
	}
	return b.String()
}

func TestParseGood(t *testing.T) {
	for _, tc := range goodFiles {
		t.Run(tc.name, func(t *testing.T) {
			c := mustParse(t, tc.src)
			if tc.check != nil {
				tc.check(t, c)
			}
			// Render round trip.
			out := Render(c)
			c2, err := Parse("tachy.conf", []byte(out))
			if err != nil {
				t.Fatalf("Parse(Render(c)): %v\n%s", err, out)
			}
			if !reflect.DeepEqual(c, c2) {
				t.Errorf("round trip differs:\n got %+v\nwant %+v\n%s", c2, c, out)
			}
			if out2 := Render(c2); out2 != out {
				t.Errorf("Render is not stable:\n%s\n---\n%s", out, out2)
			}
		})
	}
}

// badFiles each hold one problem, reported as FILE:LINE: KEY: ...MSG...
// line 0 means the line that holds the marker "#<".
var badFiles = []struct {
	name string
	src  string
	line int
	key  string
	msg  string
}{
	// The watchdog.
	{"watchdog relative", file("[local]\nwatchdog = \"dev/watchdog\" #<\n"), 0, "local.watchdog", "absolute path"},
	{"watchdog timeout fraction", file("[local]\nwatchdog_timeout = \"2500ms\" #<\n"), 0, "local.watchdog_timeout", "whole seconds"},
	{"watchdog timeout long", file("[local]\nwatchdog_timeout = \"5m\" #<\n"), 0, "local.watchdog_timeout", ""},
	// Syntax.
	{"unterminated string", "[cluster]\nname = \"lab #<\n", 0, "cluster.name", "unterminated string"},
	{"unterminated literal", "[cluster]\nname = 'lab #<\n", 0, "cluster.name", "unterminated string"},
	{"bad escape", file("[local]\nsocket = \"/a\\qb\" #<\n"), 0, "local.socket", `invalid escape \q`},
	{"short \\u", file("[local]\nsocket = \"/a\\u12\" #<\n"), 0, "local.socket", `four hex digits`},
	{"\\u at the end", "[local]\nsocket = \"\\u12", 2, "local.socket", `four hex digits`},
	{"surrogate", file("[local]\nsocket = \"/a\\uD800\" #<\n"), 0, "local.socket", `surrogate`},
	{"control character", file("[local]\nsocket = \"/a\x01\" #<\n"), 0, "local.socket", `control character U+0001`},
	{"control character in literal", file("[local]\nsocket = '/a\x7f' #<\n"), 0, "local.socket", `control character U+007F`},
	{"multi-line string", "[cluster]\nname = \"\"\"lab\"\"\" #<\n", 0, "cluster.name", "multi-line strings are not supported"},
	{"multi-line literal", "[cluster]\nname = '''lab''' #<\n", 0, "cluster.name", "multi-line strings are not supported"},
	{"missing value", "[cluster]\nname = #<\n", 0, "cluster.name", "missing value"},
	{"missing value at the end", "[cluster]\nname =", 2, "cluster.name", "missing value"},
	{"missing =", "[cluster]\nname \"lab\" #<\n", 0, "cluster.name", "expected = after the key"},
	{"dotted key", "[cluster]\ncluster.name = \"lab\" #<\n", 0, "cluster.cluster", "dotted keys are not supported"},
	{"quoted key", "[cluster]\n\"name\" = \"lab\" #<\n", 0, "[cluster]", "quoted keys are not supported"},
	{"garbage line", "[cluster]\n!name = 1 #<\n", 0, "[cluster]", `unexpected character '!'`},
	{"garbage at the top", "* #<\n", 0, "", `unexpected character '*'`},
	{"two values", "[cluster]\nid = 1 2 #<\n", 0, "cluster.id", "unexpected character '2' after the value"},
	{"two keys on a line", "[cluster]\nid = 1 name = \"x\" #<\n", 0, "cluster.id", "after the value"},
	{"float", "[cluster]\nid = 1.5 #<\n", 0, "cluster.id", "floats are not supported"},
	{"exponent", "[cluster]\nid = 1e3 #<\n", 0, "cluster.id", "floats are not supported"},
	{"inf", "[cluster]\nid = -inf #<\n", 0, "cluster.id", "floats are not supported"},
	{"hex", "[cluster]\nid = 0x10 #<\n", 0, "cluster.id", "hexadecimal, octal and binary integers are not supported; use a decimal integer"},
	{"leading zero", "[cluster]\nid = 012 #<\n", 0, "cluster.id", "leading zeros are not allowed; write 12"},
	{"trailing underscore", "[cluster]\nid = 1_ #<\n", 0, "cluster.id", "underscore"},
	{"double underscore", "[cluster]\nid = 1__0 #<\n", 0, "cluster.id", "underscore"},
	{"huge integer", "[cluster]\nid = 99999999999999999999 #<\n", 0, "cluster.id", "too large"},
	{"date", "[cluster]\nid = 2024-01-01 #<\n", 0, "cluster.id", "dates and times are not supported"},
	{"time", "[cluster]\nid = 10:30:00 #<\n", 0, "cluster.id", "dates and times are not supported"},
	{"bare word", file("[local]\nlog_level = info #<\n"), 0, "local.log_level", `text needs quotes, e.g. "info"`},
	{"unquoted duration", file("[heartbeat]\ninterval = 1ms #<\n"), 0, "heartbeat.interval", `text needs quotes, e.g. "1ms"`},
	{"sign alone", "[cluster]\nid = - #<\n", 0, "cluster.id", "is not a value"},
	{"True", "[quorum]\ntwo_node = True #<\n", 0, "quorum.two_node", `e.g. "True"`},
	{"inline table", "[cluster]\nid = { a = 1 } #<\n", 0, "cluster.id", "inline tables"},
	{"nested array", "[[node]]\naddresses = [[\"a\"]] #<\n", 0, "node.addresses", "nested arrays"},
	{"mixed array", "[[node]]\naddresses = [\n\"a\",\n1, #<\n]\n", 0, "node.addresses", "mixed array: the integer 1 after the string \"a\""},
	{"boolean array", "[[node]]\naddresses = [true] #<\n", 0, "node.addresses", "arrays of booleans"},
	{"array without comma", "[[node]]\naddresses = [\"a\" \"b\"] #<\n", 0, "node.addresses", "expected , or ]"},
	{"double comma", "[[node]]\naddresses = [\"a\",,] #<\n", 0, "node.addresses", "expected a value, found character ','"},
	{"array missing ]", "[[node]]\naddresses = [\"10.0.0.1\",\n\"10.0.0.2\"\nname = \"n1\" #<\n", 0, "node.addresses", "is the array opened on line 2 missing its ]?"},
	{"unterminated array", "[[node]]\naddresses = [\"10.0.0.1\", #<\n# comment\n", 0, "node.addresses", "unterminated array"},
	{"unclosed header", "[cluster #<\n", 0, "[cluster]", "expected ] to close the table header"},
	{"unclosed array header", "[[node] #<\n", 0, "[[node]]", "expected ]] to close the table header"},
	{"empty header", "[] #<\n", 0, "", "expected a table name"},
	{"dotted header", "[cluster.sub] #<\n", 0, "[cluster]", "nested tables"},
	{"quoted header", "[\"cluster\"] #<\n", 0, "", "quoted table names"},
	{"text after header", "[cluster] name = \"x\" #<\n", 0, "[cluster]", "after the table header"},
	{"lone carriage return", "[cluster]\rname = \"x\"\n", 1, "[cluster]", "carriage return"},
	{"invalid UTF-8", "[cluster]\nname = \"\xff\"\n", 2, "", "not valid UTF-8"},

	// Structure.
	{"duplicate key", file("[heartbeat]\nport = 1\nport = 2 #<\n"), 0, "heartbeat.port", "duplicate key (first set on line 6)"},
	{"duplicate table", file("[local]\n[local] #<\n"), 0, "[local]", "duplicate table (first on line 5)"},
	{"unknown table", file("[clutser] #<\nname = 1\n"), 0, "[clutser]", "unknown table; allowed tables: [cluster], [local]"},
	{"cib port", file("[cib]\nport = 70000 #<\n"), 0, "cib.port", "65535"},
	{"cib unknown key", file("[cib]\nraft_port = 1 #<\n"), 0, "cib.raft_port", "unknown"},
	{"node as a table", file("[node] #<\n"), 0, "[node]", "write [[node]]"},
	{"cluster as an array", file("[[cluster]] #<\n"), 0, "[[cluster]]", "write [cluster]"},
	{"key outside a table", "name = \"lab\" #<\n" + file(""), 0, "name", "key outside any table"},
	{"unknown key", "[cluster]\nname = \"lab\"\nnmae = \"lab\" #<\nid = 1\nkey_file = \"k\"\n" + twoNodes, 0, "cluster.nmae", "unknown key; allowed keys in [cluster]: name, id, key_file"},
	{"unknown node key", withNode("[[node]]\nname = \"n3\"\nid = 3\nvote = 1 #<\naddresses = [\"10.77.0.3\", \"10.77.1.3\"]\n"), 0, "node.vote", "allowed keys in [[node]]: name, id, votes, addresses"},
	{"missing cluster", "[local] #<\n" + twoNodes, 11, "[cluster]", "missing table"},
	{"no nodes", head + "[local] #<\n", 0, "[[node]]", "no nodes"},
	{"missing cluster.name", "[cluster] #<\nid = 1\nkey_file = \"k\"\n" + twoNodes, 0, "cluster.name", "missing; this key is required"},
	{"missing cluster.id", "[cluster] #<\nname = \"x\"\nkey_file = \"k\"\n" + twoNodes, 0, "cluster.id", "missing"},
	{"missing cluster.key_file", "[cluster] #<\nname = \"x\"\nid = 1\n" + twoNodes, 0, "cluster.key_file", "missing"},
	{"missing node.name", withNode("[[node]] #<\nid = 3\naddresses = [\"10.77.0.3\", \"10.77.1.3\"]\n"), 0, "node.name", "missing"},
	{"missing node.id", withNode("[[node]] #<\nname = \"n3\"\naddresses = [\"10.77.0.3\", \"10.77.1.3\"]\n"), 0, "node.id", "missing"},
	{"missing node.addresses", withNode("[[node]] #<\nname = \"n3\"\nid = 3\n"), 0, "node.addresses", "missing"},

	// Types.
	{"quoted integer", file("[heartbeat]\nport = \"5405\" #<\n"), 0, "heartbeat.port", "expected an integer, got the string \"5405\"; write the number without quotes; use an integer from 1 to 65535"},
	{"string for integer", file("[heartbeat]\nport = \"ha\" #<\n"), 0, "heartbeat.port", "expected an integer, got the string \"ha\"; use an integer from 1 to 65535"},
	{"integer for name", "[cluster]\nname = 7 #<\nid = 1\nkey_file = \"k\"\n" + twoNodes, 0, "cluster.name", "expected a string, got the integer 7; use 1 to 32 characters"},
	{"string for boolean", file("[quorum]\ntwo_node = \"yes\" #<\n"), 0, "quorum.two_node", "expected a boolean, got the string \"yes\"; use true or false"},
	{"integer for boolean", file("[quorum]\nwait_for_all = 1 #<\n"), 0, "quorum.wait_for_all", "expected a boolean"},
	{"integer for duration", file("[heartbeat]\ninterval = 5 #<\n"), 0, "heartbeat.interval", `expected a duration string, got the integer 5; write it in quotes with a unit, e.g. "5ms"`},
	{"array for string", file("[local]\nlog_level = [\"info\"] #<\n"), 0, "local.log_level", "expected a string, got an array"},
	{"boolean for choice", file("[heartbeat]\nreceiver = true #<\n"), 0, "heartbeat.receiver", "expected a string, got the boolean true; use auto, xdp or udp"},

	// Values.
	{"interval too short", file("[heartbeat]\ninterval = \"0.5ms\" #<\n"), 0, "heartbeat.interval", `"0.5ms" is below the minimum; use a duration from 1ms to 10s`},
	{"interval too long", file("[heartbeat]\ninterval = \"11s\" #<\n"), 0, "heartbeat.interval", `"11s" is above the maximum; use a duration from 1ms to 10s`},
	{"interval not a duration", file("[heartbeat]\ninterval = \"fast\" #<\n"), 0, "heartbeat.interval", `"fast" is not a duration`},
	{"interval without unit", file("[heartbeat]\ninterval = \"5\" #<\n"), 0, "heartbeat.interval", `"5" is not a duration`},
	{"negative skew", file("[heartbeat]\nmax_clock_skew = \"-1s\" #<\n"), 0, "heartbeat.max_clock_skew", `"-1s" is below the minimum; use a duration from "0s" (no check) to 1h`},
	{"skew too large", file("[heartbeat]\nmax_clock_skew = \"2h\" #<\n"), 0, "heartbeat.max_clock_skew", "above the maximum"},
	{"window too short", file("[quorum]\nlast_man_standing_window = \"500ms\" #<\n"), 0, "quorum.last_man_standing_window", "use a duration from 1s to 1h"},
	{"miss_count 1", file("[heartbeat]\nmiss_count = 1 #<\n"), 0, "heartbeat.miss_count", "1 is below the minimum; use an integer from 2 to 1000"},
	{"miss_count 1001", file("[heartbeat]\nmiss_count = 1_001 #<\n"), 0, "heartbeat.miss_count", "1001 is above the maximum"},
	{"port 0", file("[heartbeat]\nport = 0 #<\n"), 0, "heartbeat.port", "0 is below the minimum; use an integer from 1 to 65535"},
	{"port 65536", file("[heartbeat]\nport = 65536 #<\n"), 0, "heartbeat.port", "above the maximum"},
	{"grant window not above the interval", file("[heartbeat]\ninterval = \"2ms\"\ngrant_window = \"2ms\" #<\n"), 0, "heartbeat.grant_window",
		`2ms is outside its range: more than the interval (2ms) and at most the detection time, interval * miss_count (8ms); use e.g. "4ms" (2 intervals), or "0s" for the detection time`},
	{"grant window above the detection time", file("[heartbeat]\ngrant_window = \"9ms\" #<\n"), 0, "heartbeat.grant_window", "at most the detection time, interval * miss_count (8ms)"},
	{"negative grant window", file("[heartbeat]\ngrant_window = \"-1ms\" #<\n"), 0, "heartbeat.grant_window", `use a duration from "0s" (the detection time) to 10m`},
	{"priority 100", file("[heartbeat]\nrealtime_priority = 100 #<\n"), 0, "heartbeat.realtime_priority", "use an integer from 0 to 99"},
	{"priority -1", file("[heartbeat]\nrealtime_priority = -1 #<\n"), 0, "heartbeat.realtime_priority", "below the minimum"},
	{"receiver", file("[heartbeat]\nreceiver = \"ebpf\" #<\n"), 0, "heartbeat.receiver", `"ebpf" is not allowed; use auto, xdp or udp`},
	{"xdp_mode", file("[heartbeat]\nxdp_mode = \"offload\" #<\n"), 0, "heartbeat.xdp_mode", "use auto, native or generic"},
	{"log_level", file("[local]\nlog_level = \"trace\" #<\n"), 0, "local.log_level", "use debug, info, warn or error"},
	{"expected_votes", file("[quorum]\nexpected_votes = -1 #<\n"), 0, "quorum.expected_votes", "use an integer from 0 to 65535"},
	{"cluster id 0", "[cluster]\nname = \"lab\"\nid = 0 #<\nkey_file = \"k\"\n" + twoNodes, 0, "cluster.id", "0 is below the minimum; use an integer from 1 to 4294967295"},
	{"cluster id 2^32", "[cluster]\nname = \"lab\"\nid = 4294967296 #<\nkey_file = \"k\"\n" + twoNodes, 0, "cluster.id", "above the maximum"},
	{"cluster name capital", "[cluster]\nname = \"Lab\" #<\nid = 1\nkey_file = \"k\"\n" + twoNodes, 0, "cluster.name", `"Lab" is not a valid name; use 1 to 32 characters a-z, 0-9 and -, starting with a letter`},
	{"cluster name digit first", "[cluster]\nname = \"1lab\" #<\nid = 1\nkey_file = \"k\"\n" + twoNodes, 0, "cluster.name", "not a valid name"},
	{"cluster name empty", "[cluster]\nname = \"\" #<\nid = 1\nkey_file = \"k\"\n" + twoNodes, 0, "cluster.name", "not a valid name"},
	{"cluster name too long", "[cluster]\nname = \"a" + strings.Repeat("b", 32) + "\" #<\nid = 1\nkey_file = \"k\"\n" + twoNodes, 0, "cluster.name", "not a valid name"},
	{"node name underscore", withNode("[[node]]\nname = \"n_3\" #<\nid = 3\naddresses = [\"10.77.0.3\", \"10.77.1.3\"]\n"), 0, "node.name", "not a valid name"},
	{"key_file empty", "[cluster]\nname = \"lab\"\nid = 1\nkey_file = \"\" #<\n" + twoNodes, 0, "cluster.key_file", "empty path"},
	{"key_file NUL", "[cluster]\nname = \"lab\"\nid = 1\nkey_file = \"a\\u0000b\" #<\n" + twoNodes, 0, "cluster.key_file", "NUL"},
	{"socket relative", file("[local]\nsocket = \"tachy.sock\" #<\n"), 0, "local.socket", "not an absolute path"},
	{"socket too long", file("[local]\nsocket = \"/" + strings.Repeat("s", 107) + "\" #<\n"), 0, "local.socket", "at most 107 bytes"},
	{"state_dir relative", file("[local]\nstate_dir = \"var\" #<\n"), 0, "local.state_dir", "not an absolute path"},
	{"metrics without a port", file("[local]\nmetrics = \"localhost\" #<\n"), 0, "local.metrics", "not an address and port"},
	{"votes 256", withNode("[[node]]\nname = \"n3\"\nid = 3\nvotes = 256 #<\naddresses = [\"10.77.0.3\", \"10.77.1.3\"]\n"), 0, "node.votes", "use an integer from 0 to 255"},
	{"node id 0", withNode("[[node]]\nname = \"n3\"\nid = 0 #<\naddresses = [\"10.77.0.3\", \"10.77.1.3\"]\n"), 0, "node.id", "use an integer from 1 to 4294967295"},
	{"addresses as a string", withNode("[[node]]\nname = \"n3\"\nid = 3\naddresses = \"10.77.0.3\" #<\n"), 0, "node.addresses", `expected an array, got the string "10.77.0.3"; write addresses = ["10.77.0.3"]`},
	{"addresses as a boolean", withNode("[[node]]\nname = \"n3\"\nid = 3\naddresses = true #<\n"), 0, "node.addresses", `expected an array, got the boolean true`},
	{"addresses empty", withNode("[[node]]\nname = \"n3\"\nid = 3\naddresses = [] #<\n"), 0, "node.addresses", "empty list"},
	{"addresses integers", withNode("[[node]]\nname = \"n3\"\nid = 3\naddresses = [1, 2] #<\n"), 0, "node.addresses", "expected strings, got an array of integers"},
	{"nine addresses", withNode("[[node]]\nname = \"n3\"\nid = 3\naddresses = [\"10.0.0.1\",\"10.0.0.2\",\"10.0.0.3\",\"10.0.0.4\",\"10.0.0.5\",\"10.0.0.6\",\"10.0.0.7\",\"10.0.0.8\",\"10.0.0.9\"] #<\n"), 0, "node.addresses", "9 addresses; 8 heartbeat links at most"},
	{"bad address", withNode("[[node]]\nname = \"n3\"\nid = 3\naddresses = [\n\"10.77.0.3\",\n\"10.77.1.300\", #<\n]\n"), 0, "node.addresses", `"10.77.1.300" is not an IP address`},
	{"host name", withNode("[[node]]\nname = \"n3\"\nid = 3\naddresses = [\"n3.lab\", \"10.77.1.3\"] #<\n"), 0, "node.addresses", `"n3.lab" is not an IP address`},
	{"zone", withNode("[[node]]\nname = \"n3\"\nid = 3\naddresses = [\"10.77.0.3\", \"fd00::3%eth0\"] #<\n"), 0, "node.addresses", "has a zone"},
	{"4in6", withNode("[[node]]\nname = \"n3\"\nid = 3\naddresses = [\"::ffff:10.77.0.3\", \"10.77.1.3\"] #<\n"), 0, "node.addresses", "write it as IPv4: 10.77.0.3"},
	{"unspecified", withNode("[[node]]\nname = \"n3\"\nid = 3\naddresses = [\"0.0.0.0\", \"10.77.1.3\"] #<\n"), 0, "node.addresses", "cannot be a node's address"},
	{"multicast", withNode("[[node]]\nname = \"n3\"\nid = 3\naddresses = [\"239.1.1.1\", \"10.77.1.3\"] #<\n"), 0, "node.addresses", "cannot be a node's address"},
	{"link-local v6", head + "[[node]]\nname = \"n1\"\nid = 1\naddresses = [\"fe80::1\"] #<\n", 0, "node.addresses", "link-local"},
	{"tie-breaker bad string", file("[quorum]\nauto_tie_breaker_node = \"Lowest\" #<\n"), 0, "quorum.auto_tie_breaker_node", `"Lowest" is neither lowest, highest nor a node name`},
	{"tie-breaker empty", file("[quorum]\nauto_tie_breaker_node = [] #<\n"), 0, "quorum.auto_tie_breaker_node", "empty list"},
	{"tie-breaker ids", file("[quorum]\nauto_tie_breaker_node = [1, 2] #<\n"), 0, "quorum.auto_tie_breaker_node", "expected node names, got an array of integers"},
	{"tie-breaker twice", file("[quorum]\nauto_tie_breaker_node = [\"n1\", \"n1\"] #<\n"), 0, "quorum.auto_tie_breaker_node", `"n1" is listed twice`},
	{"tie-breaker bad name", file("[quorum]\nauto_tie_breaker_node = [\"n1\", \"N2\"] #<\n"), 0, "quorum.auto_tie_breaker_node", `"N2" is not a valid node name`},
	{"tie-breaker boolean", file("[quorum]\nauto_tie_breaker_node = true #<\n"), 0, "quorum.auto_tie_breaker_node", "expected a string, got the boolean true"},

	// The file as a whole.
	{"duplicate node name", withNode("[[node]]\nname = \"n1\" #<\nid = 3\naddresses = [\"10.77.0.3\", \"10.77.1.3\"]\n"), 0, "node.name", `"n1" is already the name of the node on line 7; node names must be unique`},
	{"duplicate node id", withNode("[[node]]\nname = \"n3\"\nid = 2 #<\naddresses = [\"10.77.0.3\", \"10.77.1.3\"]\n"), 0, "node.id", `2 is already the id of node "n2" (line 13); node ids must be unique`},
	{"duplicate address", withNode("[[node]]\nname = \"n3\"\nid = 3\naddresses = [\"10.77.0.3\", \"10.77.1.2\"] #<\n"), 0, "node.addresses", `10.77.1.2 is already the link 1 address of node "n2" (line 14); no address may appear twice`},
	{"address twice in a node", head + "[[node]]\nname = \"n1\"\nid = 1\naddresses = [\"10.0.0.1\", \"10.0.0.1\"] #<\n", 0, "node.addresses", `10.0.0.1 is already the link 0 address of node "n1"`},
	{"fewer links", withNode("[[node]]\nname = \"n3\"\nid = 3\naddresses = [\"10.77.0.3\"] #<\n"), 0, "node.addresses", `node "n3" lists 1 address but node "n1" lists 2 addresses`},
	{"more links", withNode("[[node]]\nname = \"n3\"\nid = 3\naddresses = [\"10.77.0.3\", \"10.77.1.3\", \"10.77.2.3\"] #<\n"), 0, "node.addresses", `lists 3 addresses but node "n1" lists 2`},
	{"family differs", withNode("[[node]]\nname = \"n3\"\nid = 3\naddresses = [\"10.77.0.3\",\n\"fd00::3\"] #<\n"), 0, "node.addresses", `link 1 of node "n3" is IPv6 (fd00::3) but link 1 of node "n1" is IPv4 (10.77.1.1)`},
	{"no votes", head + "[[node]]\nname = \"n1\"\nid = 1\nvotes = 0 #<\naddresses = [\"10.0.0.1\"]\n[[node]]\nname = \"n2\"\nid = 2\nvotes = 0\naddresses = [\"10.0.0.2\"]\n", 0, "node.votes", "at least one node must have votes"},
	{"local.node unknown", file("[local]\nnode = \"n9\" #<\n"), 0, "local.node", `"n9" is not a configured node; use one of: n1, n2`},
	{"local.node invalid", file("[local]\nnode = \"N1\" #<\n"), 0, "local.node", `"N1" is not a valid name`},
	{"two_node with 3 nodes", file("[quorum]\ntwo_node = true #<\n[[node]]\nname = \"n3\"\nid = 3\naddresses = [\"10.77.0.3\", \"10.77.1.3\"]\n"), 0, "quorum.two_node", "two_node needs exactly 2 nodes, and the file has 3"},
	{"two_node with 1 node", head + "[quorum]\ntwo_node = true #<\n[[node]]\nname = \"n1\"\nid = 1\naddresses = [\"10.0.0.1\"]\n", 0, "quorum.two_node", "exactly 2 nodes, and the file has 1"},
	{"two_node votes", head + "[quorum]\ntwo_node = true #<\n[[node]]\nname = \"n1\"\nid = 1\nvotes = 2\naddresses = [\"10.0.0.1\"]\n[[node]]\nname = \"n2\"\nid = 2\naddresses = [\"10.0.0.2\"]\n", 0, "quorum.two_node", "1 vote"},
	{"two_node expected_votes", file("[quorum]\ntwo_node = true\nexpected_votes = 3 #<\n"), 0, "quorum.expected_votes", "set it to 2"},
	{"tie-breaker unknown node", file("[quorum]\nauto_tie_breaker = true\nauto_tie_breaker_node = [\"n2\", \"n7\"] #<\n"), 0, "quorum.auto_tie_breaker_node", `"n7" is not a configured node`},
	{"tie-breaker unknown node string", file("[quorum]\nauto_tie_breaker_node = \"n7\" #<\n"), 0, "quorum.auto_tie_breaker_node", `"n7" is not a configured node`},
	{"33 nodes", head + nodes(32) + "[[node]] #<\nname = \"n33\"\nid = 33\naddresses = [\"10.1.0.33\", \"fd01::33\"]\n", 0, "[[node]]", "33 nodes; a cluster has at most 32"},
}

// markedLine is the number of the line of src holding "#<".
func markedLine(t *testing.T, src string) int {
	i := strings.Index(src, "#<")
	if i < 0 {
		t.Fatalf("no #< marker in\n%s", src)
	}
	return strings.Count(src[:i], "\n") + 1
}

func TestParseBad(t *testing.T) {
	for _, tc := range badFiles {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse("tachy.conf", []byte(tc.src))
			if err == nil {
				t.Fatalf("no error; got %+v\n--- file:\n%s", c, tc.src)
			}
			if c != nil {
				t.Errorf("a Config with the error")
			}
			line := tc.line
			if line == 0 {
				line = markedLine(t, tc.src)
			}
			var problems []*Error
			var list Errors
			if errors.As(err, &list) {
				problems = list
			} else {
				var e *Error
				if !errors.As(err, &e) {
					t.Fatalf("error %T %v is not an *Error", err, err)
				}
				problems = []*Error{e}
			}
			if len(problems) != 1 {
				t.Fatalf("%d problems, want 1:\n%v\n--- file:\n%s", len(problems), err, tc.src)
			}
			prefix := fmt.Sprintf("tachy.conf:%d: ", line)
			if tc.key != "" {
				prefix += tc.key + ": "
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, prefix) || !strings.Contains(msg, tc.msg) {
				t.Errorf("error\n  %s\nwant the prefix\n  %s\nand\n  %s", msg, prefix, tc.msg)
			}
			if p := problems[0]; p.Line != line || p.Key != tc.key || p.File != "tachy.conf" {
				t.Errorf("Error fields %+v", p)
			}
			// Each message says what is allowed, after a ';' (or names what
			// the parser expected).
			if m := problems[0].Msg; !strings.Contains(m, ";") && !strings.Contains(m, "expected") {
				t.Errorf("message %q does not say what is allowed", m)
			}
		})
	}
}

func TestManyErrors(t *testing.T) {
	src := `[cluster]
name = "Lab"
id = 0
key_file = "k"
[heartbeat]
interval = "0s"
port = 0
[bogus]
x = 1
[[node]]
name = "n1"
id = 1
addresses = ["10.0.0.1"]
`
	_, err := Parse("f.conf", []byte(src))
	var list Errors
	if !errors.As(err, &list) {
		t.Fatalf("want Errors, got %T %v", err, err)
	}
	var lines []int
	for _, e := range list {
		lines = append(lines, e.Line)
	}
	if want := []int{2, 3, 6, 7, 8}; !reflect.DeepEqual(lines, want) {
		t.Errorf("lines %v, want %v:\n%v", lines, want, err)
	}
	if got := strings.Count(err.Error(), "\n"); got != 4 {
		t.Errorf("want one line per problem:\n%v", err)
	}

	// An empty file lacks both [cluster] and nodes.
	_, err = Parse("f.conf", nil)
	if !errors.As(err, &list) || len(list) != 2 || list[0].Key != "[cluster]" || list[1].Key != "[[node]]" || list[0].Line != 1 {
		t.Errorf("empty file: %v", err)
	}

	// A syntax error stops the parse but keeps what was found before it.
	_, err = Parse("f.conf", []byte("[cluster]\n[cluster]\nname = \"x\n[bogus]\n"))
	if !errors.As(err, &list) || len(list) != 2 || list[0].Line != 2 || list[1].Line != 3 {
		t.Errorf("got %v", err)
	}

	// Many problems are cut short.
	var b strings.Builder
	b.WriteString(file(""))
	b.WriteString("[local]\n")
	for i := range 50 {
		fmt.Fprintf(&b, "k%d = 1\n", i)
	}
	_, err = Parse("f.conf", []byte(b.String()))
	if !strings.Contains(err.Error(), "and 30 more problems") || strings.Count(err.Error(), "\n") != maxErrors {
		t.Errorf("got %v", err)
	}
}

func TestTruncatedExample(t *testing.T) {
	// Every prefix of a valid file parses or fails cleanly.
	ex := Example()
	for i := range len(ex) {
		c, err := Parse("x", []byte(ex[:i]))
		if (c == nil) == (err == nil) {
			t.Fatalf("prefix %d: config %v, error %v", i, c, err)
		}
	}
}

func TestExample(t *testing.T) {
	c := mustParse(t, Example())
	n, err := c.LocalNode("")
	if err != nil || n.Name != "n1" {
		t.Fatalf("LocalNode: %v %v", n, err)
	}
	// Every key of the schema appears in the example.
	for table, keys := range tableKeys {
		for _, k := range keys {
			if !strings.Contains(Example(), "\n"+k+" = ") && !strings.Contains(Example(), "# "+k+" = ") {
				t.Errorf("the example lacks %s.%s", table, k)
			}
		}
	}
}

func TestRenderFromDefaults(t *testing.T) {
	c := Defaults()
	c.Cluster = Cluster{Name: "lab", ID: 7, KeyFile: "/etc/tachy/cluster.key"}
	c.Local.Node = "n2"
	c.Quorum.WaitForAll = ptr(true)
	c.Quorum.TieBreaker = TieBreaker{Mode: TieList, Nodes: []string{"n2"}}
	c.Nodes = []Node{
		{Name: "n1", ID: 1, Votes: 1, Addresses: addrs("10.0.0.1", "fd00::1")},
		{Name: "n2", ID: 2, Votes: 1, Addresses: addrs("10.0.0.2", "fd00::2")},
	}
	c.Path = "gen.conf"
	got, err := Parse("gen.conf", []byte(Render(&c)))
	if err != nil {
		t.Fatalf("%v\n%s", err, Render(&c))
	}
	if !reflect.DeepEqual(got, &c) {
		t.Errorf("got  %+v\nwant %+v", got, &c)
	}

	// Cleared strings get their defaults back.
	c.Local.Socket, c.Heartbeat.Receiver, c.Quorum.TieBreaker = "", "", TieBreaker{}
	got, err = Parse("gen.conf", []byte(Render(&c)))
	if err != nil {
		t.Fatal(err)
	}
	if got.Local.Socket != DefaultSocket || got.Heartbeat.Receiver != "auto" || got.Quorum.TieBreaker.Mode != TieLowest {
		t.Errorf("defaults not applied: %+v", got)
	}

	// Strings that need escapes survive.
	c.Cluster.KeyFile = "/odd \"key\"\\\n\t\x01\x7f\u00e9\ufffd"
	got, err = Parse("gen.conf", []byte(Render(&c)))
	if err != nil || got.Cluster.KeyFile != c.Cluster.KeyFile {
		t.Errorf("key_file %q: %v\n%s", got.Cluster.KeyFile, err, Render(&c))
	}
}

func TestLocalNode(t *testing.T) {
	c := mustParse(t, file(""))
	if _, err := c.LocalNode(""); err == nil || !strings.Contains(err.Error(), "[local]") || !strings.Contains(err.Error(), "--node") {
		t.Errorf("no node set: %v", err)
	}
	if n, err := c.LocalNode("n2"); err != nil || n.ID != 2 {
		t.Errorf("--node n2: %v %v", n, err)
	}
	if _, err := c.LocalNode("n9"); err == nil || !strings.Contains(err.Error(), "--node") || !strings.Contains(err.Error(), "n1, n2") {
		t.Errorf("--node n9: %v", err)
	}
	c = mustParse(t, file("[local]\nnode = \"n1\"\n"))
	if n, err := c.LocalNode(""); err != nil || n.Name != "n1" {
		t.Errorf("local.node: %v %v", n, err)
	}
	if n, err := c.LocalNode("n2"); err != nil || n.Name != "n2" {
		t.Errorf("--node wins: %v %v", n, err)
	}
	if n, ok := c.Node("n2"); !ok || n != &c.Nodes[1] {
		t.Errorf("Node: %v %v", n, ok)
	}
	if _, ok := c.Node("n3"); ok {
		t.Error("Node n3")
	}
	if n, ok := c.NodeByID(2); !ok || n.Name != "n2" {
		t.Errorf("NodeByID: %v %v", n, ok)
	}
}

func TestWarnings(t *testing.T) {
	for _, tc := range []struct {
		mid, want string
	}{
		{"[quorum]\nauto_tie_breaker_node = \"highest\"\n", "auto_tie_breaker_node has no effect"},
		{"[quorum]\nlast_man_standing_window = \"20s\"\n", "last_man_standing_window has no effect"},
		{"[quorum]\ntwo_node = true\nwait_for_all = false\n", "two_node without wait_for_all"},
		{"[heartbeat]\nmax_clock_skew = \"0s\"\n", "max_clock_skew"},
		{"[heartbeat]\nrealtime_priority = 0\ninterval = \"2ms\"\nmiss_count = 5\n", "10ms detection time"},
	} {
		c := mustParse(t, file(tc.mid))
		if w := c.Warnings(); len(w) != 1 || !strings.Contains(w[0], tc.want) {
			t.Errorf("%q: warnings %q, want %q", tc.mid, w, tc.want)
		}
	}
	c := mustParse(t, file("[heartbeat]\nrealtime_priority = 0\ninterval = \"10ms\"\n"))
	if w := c.Warnings(); len(w) != 0 {
		t.Errorf("warnings %q", w)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tachy.conf")
	if err := os.WriteFile(path, []byte(file("")), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if c.Path != path || c.Cluster.KeyFile != filepath.Join(dir, "cluster.key") {
		t.Errorf("Path %q KeyFile %q", c.Path, c.Cluster.KeyFile)
	}
	// Relative to the file's directory even when the path is relative.
	t.Chdir(dir)
	c, err = Load("tachy.conf")
	if err != nil || c.Cluster.KeyFile != filepath.Join(dir, "cluster.key") || c.Path != "tachy.conf" {
		t.Errorf("relative: %v %+v", err, c)
	}
	// Absolute key files are kept.
	abs := strings.Replace(file(""), `"cluster.key"`, `"/etc/tachy/cluster.key"`, 1)
	os.WriteFile(path, []byte(abs), 0o644)
	if c, err := Load(path); err != nil || c.Cluster.KeyFile != "/etc/tachy/cluster.key" {
		t.Errorf("absolute: %v %+v", err, c)
	}
	// Errors name the file.
	os.WriteFile(path, []byte("[cluster]\nname = 1\n"), 0o644)
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), path+":2: cluster.name: expected a string") {
		t.Errorf("got %v", err)
	}
	if _, err := Load(filepath.Join(dir, "none.conf")); err == nil || !strings.Contains(err.Error(), "tachy config example") {
		t.Errorf("missing file: %v", err)
	}
	os.WriteFile(path, make([]byte, maxFileSize+1), 0o644)
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("huge file: %v", err)
	}
}

func writeFile(t *testing.T, path, data string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func TestKeyFile(t *testing.T) {
	dir := t.TempDir()
	key, err := GenerateKey()
	if err != nil || len(key) != KeySize {
		t.Fatalf("GenerateKey: %x %v", key, err)
	}
	if other, _ := GenerateKey(); reflect.DeepEqual(key, other) {
		t.Fatal("two keys are equal")
	}

	path := filepath.Join(dir, "cluster.key")
	if err := WriteKey(path, key); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v %v", fi.Mode(), err)
	}
	data, _ := os.ReadFile(path)
	if want := fmt.Sprintf("%x\n", key); string(data) != want {
		t.Errorf("file %q, want %q", data, want)
	}
	got, err := ReadKey(path)
	if err != nil || !reflect.DeepEqual(got, key) {
		t.Fatalf("ReadKey: %x %v", got, err)
	}

	// No overwriting.
	other, _ := GenerateKey()
	if err := WriteKey(path, other); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("overwrite: %v", err)
	}
	if got, _ := ReadKey(path); !reflect.DeepEqual(got, key) {
		t.Error("the key was overwritten")
	}
	if err := WriteKey(filepath.Join(dir, "short.key"), key[:16]); err == nil {
		t.Error("a 16-byte key was written")
	}
	if err := WriteKey(filepath.Join(dir, "no", "such.key"), key); err == nil {
		t.Error("no error for a missing directory")
	}

	hex64 := strings.Repeat("0123456789abcdef", 4)
	for _, tc := range []struct {
		name, data string
		mode       os.FileMode
		want       string // error text; "" = accepted
	}{
		{"whitespace trimmed", "\n  " + hex64 + " \r\n\n", 0o600, ""},
		{"upper case, longer", strings.ToUpper(hex64) + "abcd", 0o400, ""},
		{"group readable", hex64, 0o640, "chmod 600 "},
		{"world readable", hex64, 0o644, "mode 0644"},
		{"group writable", hex64, 0o620, "chmod 600 "},
		{"short", hex64[:62], 0o600, "31-byte key; at least 32 bytes (64 hex digits)"},
		{"garbage", "not a key at all, not even close to it, certainly not sixty-four", 0o600, "does not hold a hex key"},
		{"odd length", hex64 + "a", 0o600, "does not hold a hex key"},
		{"inner space", hex64[:32] + " " + hex64[32:], 0o600, "does not hold a hex key"},
		{"empty", " \n", 0o600, "is empty"},
		{"huge", strings.Repeat("a", maxKeyFile+2), 0o600, "larger than"},
	} {
		p := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-"))
		writeFile(t, p, tc.data, tc.mode)
		got, err := ReadKey(p)
		switch {
		case tc.want == "" && (err != nil || len(got) < KeySize):
			t.Errorf("%s: %x %v", tc.name, got, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), p)):
			t.Errorf("%s: error %v, want %q and the path", tc.name, err, tc.want)
		}
	}
	if _, err := ReadKey(filepath.Join(dir, "none")); err == nil || !strings.Contains(err.Error(), "tachy keygen") {
		t.Errorf("missing: %v", err)
	}
	sub := filepath.Join(dir, "sub")
	os.Mkdir(sub, 0o700)
	if _, err := ReadKey(sub); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("directory: %v", err)
	}
}

// FuzzParse: Parse never panics, its errors point into the file, and a
// Config it returns renders to a file that parses to the same Config.
func FuzzParse(f *testing.F) {
	f.Add([]byte(Example()))
	for _, tc := range goodFiles {
		f.Add([]byte(tc.src))
	}
	for _, tc := range badFiles {
		f.Add([]byte(tc.src))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("fuzz.conf", data)
		if err != nil {
			if c != nil {
				t.Fatal("both a Config and an error")
			}
			lines := strings.Count(string(data), "\n") + 1
			var list Errors
			var one *Error
			switch {
			case errors.As(err, &list):
			case errors.As(err, &one):
				list = Errors{one}
			default:
				t.Fatalf("error %T: %v", err, err)
			}
			for _, e := range list {
				if e.File != "fuzz.conf" || e.Line < 1 || e.Line > lines || e.Msg == "" {
					t.Fatalf("bad error %+v in a %d-line file", e, lines)
				}
			}
			return
		}
		out := Render(c)
		c2, err := Parse("fuzz.conf", []byte(out))
		if err != nil {
			t.Fatalf("Parse(Render(c)): %v\n--- input:\n%q\n--- rendered:\n%s", err, data, out)
		}
		if !reflect.DeepEqual(c, c2) {
			t.Fatalf("round trip differs:\n%+v\n%+v\n--- rendered:\n%s", c, c2, out)
		}
		c.Warnings()
		c.LocalNode("")
	})
}

func TestLongValuesShortened(t *testing.T) {
	long := strings.Repeat("x", 10000)
	for _, src := range []string{
		file("[local]\nlog_level = \"" + long + "\"\n"),
		file("[local]\nlog_level = " + long + "\n"),
		file("[local]\nlog_level = 1" + long + "\n"),
		file("[local]\nlog_level = 0" + strings.Repeat("1", 10000) + "\n"),
	} {
		_, err := Parse("f.conf", []byte(src))
		if err == nil || len(err.Error()) > 400 {
			t.Errorf("error of %d bytes: %.300v", len(fmt.Sprint(err)), err)
		}
	}
}

// The complete examples in docs/config.md are valid.
func TestDocExamples(t *testing.T) {
	doc, err := os.ReadFile("../docs/config.md")
	if err != nil {
		t.Skip(err)
	}
	n := 0
	for i, block := range strings.Split(string(doc), "```toml\n") {
		if i == 0 {
			continue
		}
		block = block[:strings.Index(block, "```")]
		if !strings.Contains(block, "[cluster]") {
			continue
		}
		if _, err := Parse(fmt.Sprintf("docs example %d", i), []byte(block)); err != nil {
			t.Errorf("%v\n%s", err, block)
		}
		n++
	}
	if n < 2 {
		t.Errorf("%d examples found", n)
	}
}

func TestGrantWindowOrDefault(t *testing.T) {
	for _, c := range []struct {
		h    Heartbeat
		want time.Duration
	}{
		{Heartbeat{Interval: 2 * time.Millisecond, MissCount: 4}, 8 * time.Millisecond},
		{Heartbeat{Interval: time.Millisecond, MissCount: 8, GrantWindow: 2 * time.Millisecond}, 2 * time.Millisecond},
	} {
		if got := c.h.GrantWindowOrDefault(); got != c.want {
			t.Errorf("%+v: %v, want %v", c.h, got, c.want)
		}
	}
}
