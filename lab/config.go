package lab

import (
	"bytes"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"text/template"
	"time"
)

// The node configuration file, in the syntax the config package parses.
// configTemplate is parsed on first use: every tachy command links this
// package, and parsing at init would slow each one's start.
var configTemplate = sync.OnceValue(func() *template.Template {
	return template.Must(template.New("tachy.conf").Funcs(template.FuncMap{"q": tomlString}).Parse(`# Written by tachy lab up for node {{.Node}}; tachy lab down removes it.
[cluster]
name = {{q .Cluster}}
id = {{.ClusterID}}
key_file = {{q .KeyFile}}

[local]
node = {{q .Node}}
socket = {{q .Socket}}
state_dir = {{q .StateDir}}
metrics = {{q .Metrics}}

[cib]
pki_dir = {{q .PKIDir}}

[heartbeat]
interval = {{q .Interval}}
miss_count = {{.MissCount}}
receiver = {{q .Receiver}}
{{- if .GrantWindow}}
grant_window = {{q .GrantWindow}}
{{- end}}

[quorum]
{{range .Nodes}}
[[node]]
name = {{q .Name}}
id = {{.ID}}
addresses = [{{q .Ring0}}, {{q .Ring1}}]
{{end}}`))
})

// MetricsPort is where each lab node serves /metrics, on its ring 0 address.
const MetricsPort = 9647

type configNode struct {
	Name         string
	ID           int
	Ring0, Ring1 string
}

// renderConfig is node i's tachy.conf in a lab of n nodes.
func renderConfig(dir string, i, n int, interval time.Duration, missCount int, receiver string, grantWindow time.Duration) ([]byte, error) {
	node := nodeName(i)
	data := struct {
		Cluster          string
		ClusterID        int
		KeyFile, PKIDir  string
		Metrics          string
		Node             string
		Socket, StateDir string
		Interval         string
		MissCount        int
		Receiver         string
		GrantWindow      string
		Nodes            []configNode
	}{
		Cluster: ClusterName, ClusterID: ClusterID, KeyFile: keyPath(dir), PKIDir: pkiPath(dir),
		Node: node, Socket: socketPath(dir, node), StateDir: filepath.Join(dir, node, "state"),
		Metrics:  netip.AddrPortFrom(addr4(i, Ring0), MetricsPort).String(),
		Interval: interval.String(), MissCount: missCount, Receiver: receiver,
	}
	if grantWindow != 0 {
		data.GrantWindow = grantWindow.String()
	}
	for j := 1; j <= n; j++ {
		data.Nodes = append(data.Nodes, configNode{Name: nodeName(j), ID: j, Ring0: addr4(j, Ring0).String(), Ring1: addr4(j, Ring1).String()})
	}
	var b bytes.Buffer
	if err := configTemplate().Execute(&b, data); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// tomlString quotes s as a TOML basic string.
func tomlString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, "\\u%04x", r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
