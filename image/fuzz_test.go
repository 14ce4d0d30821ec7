package image

import (
	"strings"
	"testing"
)

// Any kernel command line parses without panicking; what it accepts names
// a valid node, absolute config path and known test action.
func FuzzParseCmdline(f *testing.F) {
	for _, s := range []string{
		"console=ttyS0 panic=-1 quiet tachy.node=n1 tachy.addr=eth0=10.77.0.1/24,eth1=10.77.1.1/24",
		`tachy.config=/etc/x.conf tachy.data=tachy-data tachy.test=poweroff-when-ready -- "a b"`,
		"tachy.node= tachy.unknown=1 tachy.addr=eth0",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseCmdline(s)
		if err != nil {
			return
		}
		if p.Node != "" && !nodeName().MatchString(p.Node) {
			t.Fatalf("accepted node %q", p.Node)
		}
		if !strings.HasPrefix(p.Config, "/") {
			t.Fatalf("accepted config %q", p.Config)
		}
		for _, a := range p.Addrs {
			if !a.Prefix.IsValid() {
				t.Fatalf("accepted address %+v", a)
			}
		}
	})
}
