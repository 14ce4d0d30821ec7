package vip

import (
	"net/netip"
	"strings"
	"testing"
)

func TestParseSpec(t *testing.T) {
	for _, tc := range []struct {
		params map[string]string
		want   Spec
		err    string
	}{
		{map[string]string{"ip": "10.0.0.10"}, Spec{IP: netip.MustParseAddr("10.0.0.10"), Bits: -1}, ""},
		{map[string]string{"ip": " 10.0.0.10 ", "cidr_netmask": "24", "nic": "eth0"}, Spec{IP: netip.MustParseAddr("10.0.0.10"), Bits: 24, Nic: "eth0"}, ""},
		{map[string]string{"ip": "10.0.0.10", "cidr_netmask": "255.255.255.0"}, Spec{IP: netip.MustParseAddr("10.0.0.10"), Bits: 24}, ""},
		{map[string]string{"ip": "::ffff:10.0.0.10"}, Spec{IP: netip.MustParseAddr("10.0.0.10"), Bits: -1}, ""},
		{map[string]string{"ip": "fd00::10", "cidr_netmask": "64"}, Spec{IP: netip.MustParseAddr("fd00::10"), Bits: 64}, ""},
		{map[string]string{}, Spec{}, "ip is required"},
		{map[string]string{"ip": "10.0.0"}, Spec{}, "not an IP address"},
		{map[string]string{"ip": "fe80::1%eth0"}, Spec{}, "no zones"},
		{map[string]string{"ip": "224.0.0.1"}, Spec{}, "not a unicast"},
		{map[string]string{"ip": "10.0.0.1", "cidr_netmask": "33"}, Spec{}, "out of range"},
		{map[string]string{"ip": "fd00::1", "cidr_netmask": "255.255.0.0"}, Spec{}, "neither a prefix length"},
		{map[string]string{"ip": "10.0.0.1", "cidr_netmask": "255.0.255.0"}, Spec{}, "not a contiguous"},
		{map[string]string{"ip": "10.0.0.1", "nic": "a/b"}, Spec{}, "not an interface name"},
	} {
		got, err := ParseSpec(tc.params)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%v: error %v, want one containing %q", tc.params, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%v: %+v, %v; want %+v", tc.params, got, err, tc.want)
		}
	}
}
