package vip

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"strings"
	"testing"
)

var testMAC = net.HardwareAddr{0x02, 0x77, 0x02, 0, 0, 0x01}

func TestGratuitousARPLayout(t *testing.T) {
	f, err := GratuitousARP(testMAC, netip.MustParseAddr("10.77.2.100"))
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0x77, 0x02, 0, 0, 0x01, 0x08, 0x06, // Ethernet
		0, 1, 0x08, 0, 6, 4, 0, 1, // Ethernet/IPv4, request
		0x02, 0x77, 0x02, 0, 0, 0x01, 10, 77, 2, 100, // sender: us, the VIP
		0, 0, 0, 0, 0, 0, 10, 77, 2, 100, // target: zero MAC, the VIP
	}
	if !bytes.Equal(f, want) {
		t.Fatalf("frame\n% x\nwant\n% x", f, want)
	}
	a, err := ParseAnnouncement(f)
	if err != nil || a.IP != netip.MustParseAddr("10.77.2.100") || !bytes.Equal(a.MAC, testMAC) || a.Op != "arp-request" {
		t.Fatalf("parsed %+v, %v", a, err)
	}
}

func TestUnsolicitedNA(t *testing.T) {
	ip := netip.MustParseAddr("fd77:0:0:2::100")
	f, err := UnsolicitedNA(testMAC, ip)
	if err != nil {
		t.Fatal(err)
	}
	if len(f) != 14+40+32 || !bytes.Equal(f[0:6], allNodesMAC) || binary.BigEndian.Uint16(f[12:]) != 0x86dd {
		t.Fatalf("Ethernet header % x", f[:14])
	}
	h := f[14:]
	if h[6] != 58 || h[7] != 255 || binary.BigEndian.Uint16(h[4:]) != 32 {
		t.Fatalf("IPv6 header % x", h[:40])
	}
	na := h[40:]
	if na[0] != 136 || na[4] != 0x20 {
		t.Fatalf("type %d flags %#x: want 136 and override only", na[0], na[4])
	}
	// The checksum verifies: summing the message with it gives zero.
	if icmpv6Checksum([16]byte(h[8:24]), [16]byte(h[24:40]), na) != 0 {
		t.Fatal("checksum does not verify")
	}
	a, err := ParseAnnouncement(f)
	if err != nil || a.IP != ip || !bytes.Equal(a.MAC, testMAC) || a.Op != "na" {
		t.Fatalf("parsed %+v, %v", a, err)
	}
	// One flipped bit anywhere in the ICMPv6 message breaks the checksum.
	f[14+40+10] ^= 1
	if _, err := ParseAnnouncement(f); err == nil || !strings.Contains(err.Error(), "checksum") {
		t.Fatalf("corrupted NA: %v", err)
	}
}

func TestFrameBuildersRejectBadInput(t *testing.T) {
	if _, err := GratuitousARP(testMAC, netip.MustParseAddr("fd00::1")); err == nil {
		t.Error("GARP for an IPv6 address")
	}
	if _, err := GratuitousARP(net.HardwareAddr{1, 2, 3}, netip.MustParseAddr("10.0.0.1")); err == nil {
		t.Error("GARP from a 3-byte MAC")
	}
	if _, err := UnsolicitedNA(testMAC, netip.MustParseAddr("10.0.0.1")); err == nil {
		t.Error("NA for an IPv4 address")
	}
}

func TestParseAnnouncementRejects(t *testing.T) {
	garp, _ := GratuitousARP(testMAC, netip.MustParseAddr("10.0.0.1"))
	na, _ := UnsolicitedNA(testMAC, netip.MustParseAddr("fd00::1"))
	mut := func(b []byte, f func([]byte)) []byte { c := append([]byte(nil), b...); f(c); return c }
	for name, tc := range map[string]struct {
		frame []byte
		want  string
	}{
		"short":          {garp[:10], "shorter than an Ethernet header"},
		"truncated ARP":  {garp[:30], "ARP packet of 16 bytes"},
		"ARP op 3":       {mut(garp, func(b []byte) { b[21] = 3 }), "operation 3"},
		"ARP not IPv4":   {mut(garp, func(b []byte) { b[16] = 0x86 }), "not IPv4 over Ethernet"},
		"IPv4 frame":     {mut(garp, func(b []byte) { b[12], b[13] = 8, 0 }), "not an ARP packet"},
		"NA hop limit":   {mut(na, func(b []byte) { b[14+7] = 64 }), "hop limit 64"},
		"NA long plen":   {mut(na, func(b []byte) { b[14+5] = 200 }), "exceeds"},
		"NA zero option": {mut(na, func(b []byte) { b[14+40+25] = 0 }), "checksum"},
	} {
		if _, err := ParseAnnouncement(tc.frame); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", name, err, tc.want)
		}
	}
}

func FuzzParseAnnouncement(f *testing.F) {
	garp, _ := GratuitousARP(testMAC, netip.MustParseAddr("10.0.0.1"))
	na, _ := UnsolicitedNA(testMAC, netip.MustParseAddr("fd00::1"))
	f.Add(garp)
	f.Add(na)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := ParseAnnouncement(b)
		if err != nil {
			return
		}
		if !a.IP.IsValid() || len(a.MAC) != 6 {
			t.Fatalf("accepted %x as %+v", b, a)
		}
		// What parses rebuilds into a frame that parses the same way.
		var rebuilt []byte
		if a.IP.Is4() {
			rebuilt, err = GratuitousARP(a.MAC, a.IP)
		} else {
			rebuilt, err = UnsolicitedNA(a.MAC, a.IP)
		}
		if err != nil {
			t.Fatalf("%+v does not rebuild: %v", a, err)
		}
		if b2, err := ParseAnnouncement(rebuilt); err != nil || b2.IP != a.IP || !bytes.Equal(b2.MAC, a.MAC) {
			t.Fatalf("rebuilt %+v parses as %+v, %v", a, b2, err)
		}
	})
}
