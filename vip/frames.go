// Package vip moves floating IP addresses: it adds and removes them through
// rtnetlink and tells the network about the new owner with gratuitous ARP
// (IPv4) and unsolicited neighbour advertisements (IPv6), sent from frames
// built once, ahead of the takeover, so that a takeover costs one netlink
// request and a few packet writes.
package vip

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
)

// EtherType values and addresses the frames use.
const (
	etherTypeARP  = 0x0806
	etherTypeIPv6 = 0x86dd
	ethHeaderLen  = 14
	arpLen        = 28
	ipv6HeaderLen = 40
	naLen         = 24 + 8 // NA body + target link-layer address option
)

var (
	broadcastMAC = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	// allNodesMAC is ff02::1 mapped to Ethernet (RFC 2464).
	allNodesMAC = net.HardwareAddr{0x33, 0x33, 0, 0, 0, 1}
	allNodesIP  = netip.MustParseAddr("ff02::1")
)

// GratuitousARP builds an ARP announcement (RFC 5227): a broadcast request
// whose sender and target protocol addresses are both ip, so that every
// host and switch on the segment maps ip to mac at once.
func GratuitousARP(mac net.HardwareAddr, ip netip.Addr) ([]byte, error) {
	if len(mac) != 6 {
		return nil, fmt.Errorf("gratuitous ARP: %q is not an Ethernet MAC address", mac)
	}
	if !ip.Is4() {
		return nil, fmt.Errorf("gratuitous ARP: %s is not an IPv4 address", ip)
	}
	b := make([]byte, ethHeaderLen+arpLen)
	copy(b[0:6], broadcastMAC)
	copy(b[6:12], mac)
	binary.BigEndian.PutUint16(b[12:], etherTypeARP)
	a := b[ethHeaderLen:]
	binary.BigEndian.PutUint16(a[0:], 1)      // hardware type Ethernet
	binary.BigEndian.PutUint16(a[2:], 0x0800) // protocol IPv4
	a[4], a[5] = 6, 4
	binary.BigEndian.PutUint16(a[6:], 1) // request
	copy(a[8:14], mac)
	ip4 := ip.As4()
	copy(a[14:18], ip4[:])
	// Target hardware address stays zero (RFC 5227 2.3).
	copy(a[24:28], ip4[:])
	return b, nil
}

// UnsolicitedNA builds an unsolicited neighbour advertisement (RFC 4861
// 7.2.6) for ip, sent to all nodes, with the override flag set so that
// neighbours replace a cached entry pointing at the old owner.
func UnsolicitedNA(mac net.HardwareAddr, ip netip.Addr) ([]byte, error) {
	if len(mac) != 6 {
		return nil, fmt.Errorf("neighbour advertisement: %q is not an Ethernet MAC address", mac)
	}
	if !ip.Is6() || ip.Is4In6() {
		return nil, fmt.Errorf("neighbour advertisement: %s is not an IPv6 address", ip)
	}
	b := make([]byte, ethHeaderLen+ipv6HeaderLen+naLen)
	copy(b[0:6], allNodesMAC)
	copy(b[6:12], mac)
	binary.BigEndian.PutUint16(b[12:], etherTypeIPv6)
	h := b[ethHeaderLen:]
	h[0] = 0x60
	binary.BigEndian.PutUint16(h[4:], naLen)
	h[6] = 58  // ICMPv6
	h[7] = 255 // hop limit: receivers drop NDP with any other
	src, dst := ip.As16(), allNodesIP.As16()
	copy(h[8:24], src[:])
	copy(h[24:40], dst[:])
	na := h[ipv6HeaderLen:]
	na[0] = 136                                    // neighbour advertisement
	binary.BigEndian.PutUint32(na[4:], 0x20000000) // override
	copy(na[8:24], src[:])
	na[24], na[25] = 2, 1 // target link-layer address, 8 bytes
	copy(na[26:32], mac)
	binary.BigEndian.PutUint16(na[2:], icmpv6Checksum(src, dst, na))
	return b, nil
}

// icmpv6Checksum is the ICMPv6 checksum over the pseudo-header and msg
// (whose checksum field must be zero, or hold the checksum to verify: then
// the result is zero).
func icmpv6Checksum(src, dst [16]byte, msg []byte) uint16 {
	var sum uint32
	add := func(b []byte) {
		for len(b) >= 2 {
			sum += uint32(binary.BigEndian.Uint16(b))
			b = b[2:]
		}
		if len(b) == 1 {
			sum += uint32(b[0]) << 8
		}
	}
	add(src[:])
	add(dst[:])
	var l [8]byte
	binary.BigEndian.PutUint32(l[0:], uint32(len(msg)))
	l[7] = 58
	add(l[:])
	add(msg)
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// Announcement is what an ARP packet or a neighbour advertisement says: IP
// is at MAC. The ARP sniffer that checks for two owners of one VIP reads
// every ARP packet on the segment with it.
type Announcement struct {
	IP  netip.Addr
	MAC net.HardwareAddr
	// Op is "arp-request", "arp-reply" or "na".
	Op string
	// To is an ARP packet's target protocol address: for a reply, the
	// address of whoever asked.
	To netip.Addr
}

var errNotOurs = errors.New("not an ARP packet or a neighbour advertisement")

// ParseAnnouncement reads the sender binding of an Ethernet frame holding an
// ARP packet (IPv4 over Ethernet) or an ICMPv6 neighbour advertisement with a
// target link-layer address option. Anything else is an error.
func ParseAnnouncement(frame []byte) (Announcement, error) {
	if len(frame) < ethHeaderLen {
		return Announcement{}, fmt.Errorf("frame of %d bytes is shorter than an Ethernet header", len(frame))
	}
	switch binary.BigEndian.Uint16(frame[12:]) {
	case etherTypeARP:
		a := frame[ethHeaderLen:]
		if len(a) < arpLen {
			return Announcement{}, fmt.Errorf("ARP packet of %d bytes, want %d", len(a), arpLen)
		}
		if binary.BigEndian.Uint16(a[0:]) != 1 || binary.BigEndian.Uint16(a[2:]) != 0x0800 || a[4] != 6 || a[5] != 4 {
			return Announcement{}, errors.New("ARP packet is not IPv4 over Ethernet")
		}
		op := "arp-request"
		switch binary.BigEndian.Uint16(a[6:]) {
		case 1:
		case 2:
			op = "arp-reply"
		default:
			return Announcement{}, fmt.Errorf("ARP operation %d is neither request nor reply", binary.BigEndian.Uint16(a[6:]))
		}
		return Announcement{IP: netip.AddrFrom4([4]byte(a[14:18])), MAC: net.HardwareAddr(append([]byte(nil), a[8:14]...)), Op: op,
			To: netip.AddrFrom4([4]byte(a[24:28]))}, nil
	case etherTypeIPv6:
		h := frame[ethHeaderLen:]
		if len(h) < ipv6HeaderLen+24 || h[0]>>4 != 6 || h[6] != 58 {
			return Announcement{}, errNotOurs
		}
		plen := int(binary.BigEndian.Uint16(h[4:]))
		if plen > len(h)-ipv6HeaderLen {
			return Announcement{}, fmt.Errorf("IPv6 payload length %d exceeds the %d bytes present", plen, len(h)-ipv6HeaderLen)
		}
		na := h[ipv6HeaderLen : ipv6HeaderLen+plen]
		if len(na) < 24 || na[0] != 136 || na[1] != 0 {
			return Announcement{}, errNotOurs
		}
		if h[7] != 255 {
			return Announcement{}, fmt.Errorf("neighbour advertisement with hop limit %d (must be 255)", h[7])
		}
		if icmpv6Checksum([16]byte(h[8:24]), [16]byte(h[24:40]), na) != 0 {
			return Announcement{}, errors.New("neighbour advertisement with a bad checksum")
		}
		target := netip.AddrFrom16([16]byte(na[8:24]))
		for opts := na[24:]; len(opts) >= 2; {
			n := int(opts[1]) * 8
			if n == 0 || n > len(opts) {
				return Announcement{}, errors.New("neighbour advertisement with a malformed option")
			}
			if opts[0] == 2 && n >= 8 {
				return Announcement{IP: target, MAC: net.HardwareAddr(append([]byte(nil), opts[2:8]...)), Op: "na"}, nil
			}
			opts = opts[n:]
		}
		return Announcement{}, errors.New("neighbour advertisement without a target link-layer address")
	}
	return Announcement{}, errNotOurs
}
