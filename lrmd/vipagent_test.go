package lrmd

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tachy-ha/tachy/vip"
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

// TestStartUnderLease: a start whose lease ends during the probe waits for
// the next lease and starts again; without a lease until the deadline it
// fails with ErrNoLease; other errors end it at once.
func TestStartUnderLease(t *testing.T) {
	waits, starts := 0, 0
	wait := func(context.Context) error { waits++; return nil }
	err := startUnderLease(context.Background(), wait, func() error {
		starts++
		if starts == 1 {
			return vip.ErrNoLease // the lease ended during the probe
		}
		return nil
	})
	if err != nil || waits != 2 || starts != 2 {
		t.Fatalf("lease ended during the first start: err %v after %d waits and %d starts, want nil after 2 and 2", err, waits, starts)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	starts = 0
	err = startUnderLease(ctx, func(ctx context.Context) error {
		if ctx.Err() != nil {
			return vip.ErrNoLease
		}
		return nil
	}, func() error {
		starts++
		time.Sleep(5 * time.Millisecond)
		return vip.ErrNoLease
	})
	if !errors.Is(err, vip.ErrNoLease) || starts < 2 {
		t.Fatalf("no lease until the deadline: err %v after %d starts, want ErrNoLease after several", err, starts)
	}

	starts = 0
	in := errors.New("10.0.0.1 is in use")
	if err := startUnderLease(context.Background(), wait, func() error { starts++; return in }); err != in || starts != 1 {
		t.Fatalf("address in use: err %v after %d starts, want it after 1", err, starts)
	}
}
