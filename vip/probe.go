package vip

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/mdlayher/packet"
	"golang.org/x/sys/unix"
)

// InUse asks the segment whether another host answers for the IPv4
// address ip (ARP probes of RFC 5227: sender address 0.0.0.0, so no
// neighbour learns anything from them), for up to wait, with a second
// probe halfway. It returns the MAC of a host that answered, or announced
// ip, or nil. The slow path runs it before a start: a VIP that another
// node still holds (whose take-over the CIB does not know of yet) is not
// started a second time.
func InUse(ifi *net.Interface, ip netip.Addr, wait time.Duration) (net.HardwareAddr, error) {
	ip = ip.Unmap()
	if !ip.Is4() {
		return nil, fmt.Errorf("ARP probe: %s is not an IPv4 address", ip)
	}
	c, err := packet.Listen(ifi, packet.Raw, unix.ETH_P_ARP, nil)
	if err != nil {
		return nil, fmt.Errorf("ARP probe on %s: %w", ifi.Name, err)
	}
	defer c.Close()
	probe, err := ARPRequest(ifi.HardwareAddr, netip.IPv4Unspecified(), ip)
	if err != nil {
		return nil, err
	}
	dst := &packet.Addr{HardwareAddr: broadcastMAC}
	start := time.Now()
	deadline := start.Add(wait)
	second := start.Add(wait / 2)
	sentSecond := false
	if _, err := c.WriteTo(probe, dst); err != nil {
		return nil, fmt.Errorf("ARP probe: %w", err)
	}
	buf := make([]byte, 1500)
	for {
		until := deadline
		if !sentSecond {
			until = second
		}
		c.SetReadDeadline(until)
		n, _, err := c.ReadFrom(buf)
		if err != nil {
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				return nil, fmt.Errorf("ARP probe: %w", err)
			}
			// Go checks the deadline before it reads: a goroutine that
			// ran late (a busy machine) gets ErrDeadlineExceeded with an
			// answer waiting in the socket. Look at what arrived first.
			if mac, err := queuedAnswer(c, buf, ifi, ip); mac != nil || err != nil {
				return mac, err
			}
			if !sentSecond {
				sentSecond = true
				if _, err := c.WriteTo(probe, dst); err != nil {
					return nil, fmt.Errorf("ARP probe: %w", err)
				}
				continue
			}
			return nil, nil
		}
		if mac := inUseBy(buf[:n], ifi, ip); mac != nil {
			return mac, nil
		}
	}
}

// inUseBy returns the MAC of the host that frame shows answering for ip:
// a reply to a probe, or another host announcing ip (a request whose
// sender is ip); nil otherwise.
func inUseBy(frame []byte, ifi *net.Interface, ip netip.Addr) net.HardwareAddr {
	a, err := ParseAnnouncement(frame)
	if err != nil || a.IP != ip || bytes.Equal(a.MAC, ifi.HardwareAddr) {
		return nil
	}
	if a.Op == "arp-reply" || a.Op == "arp-request" {
		return a.MAC
	}
	return nil
}

// queuedAnswer reads, without waiting, the frames already queued on c and
// returns the MAC of a host answering for ip among them.
func queuedAnswer(c *packet.Conn, buf []byte, ifi *net.Interface, ip netip.Addr) (net.HardwareAddr, error) {
	if err := c.SetReadDeadline(time.Time{}); err != nil {
		return nil, fmt.Errorf("ARP probe: %w", err)
	}
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("ARP probe: %w", err)
	}
	var mac net.HardwareAddr
	err = rc.Read(func(fd uintptr) bool {
		for mac == nil {
			n, _, err := unix.Recvfrom(int(fd), buf, unix.MSG_DONTWAIT)
			if err != nil {
				break // EAGAIN: nothing more queued
			}
			mac = inUseBy(buf[:n], ifi, ip)
		}
		return true // never wait
	})
	if err != nil {
		return nil, fmt.Errorf("ARP probe: %w", err)
	}
	return mac, nil
}
