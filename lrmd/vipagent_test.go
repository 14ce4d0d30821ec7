package lrmd

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestVIPAgentMetadataAndErrors(t *testing.T) {
	reg := TachyBuiltins(nil, "")
	e := New(Config{RscTmp: t.TempDir(), Builtins: reg})
	defer e.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, spec := range []string{"tachy:vip", "ocf:tachy:vip"} {
		a, err := ParseAgent(spec)
		if err != nil {
			t.Fatal(err)
		}
		md, err := e.Metadata(ctx, a)
		if err != nil {
			t.Fatalf("%s: %v", spec, err)
		}
		for _, p := range []string{"ip", "cidr_netmask", "nic"} {
			if md.Param(p) == nil {
				t.Errorf("%s: no parameter %s in the meta-data", spec, p)
			}
		}
		if ip := md.Param("ip"); ip == nil || !ip.Required {
			t.Errorf("%s: ip not required", spec)
		}
	}
	a, _ := reg.Lookup(VIPAgentName)
	for _, tc := range []struct {
		action string
		params map[string]string
		rc     RC
		reason string
	}{
		{"start", map[string]string{}, ErrConfigured, "ip is required"},
		{"monitor", map[string]string{"ip": "nope"}, ErrConfigured, "not an IP address"},
		{"start", map[string]string{"ip": "10.0.0.1"}, ErrInstalled, "inside the tachy daemon"},
		{"meta-data", nil, OK, ""},
	} {
		r := a.Run(ctx, BuiltinRequest{Resource: "v", Action: tc.action, Params: tc.params})
		if r.RC != tc.rc || !strings.Contains(r.ExitReason, tc.reason) {
			t.Errorf("%s %v: rc %d %q, want %d %q", tc.action, tc.params, r.RC, r.ExitReason, tc.rc, tc.reason)
		}
	}
}
