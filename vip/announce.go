package vip

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/mdlayher/packet"
	"golang.org/x/sys/unix"
)

// Announcer sends the pre-built announcements of one VIP on one interface:
// gratuitous ARP for IPv4, an unsolicited neighbour advertisement for IPv6.
// Everything that can fail (the socket, the frame) fails in NewAnnouncer,
// before a takeover needs it.
type Announcer struct {
	conn  *packet.Conn
	frame []byte
	dst   *packet.Addr
}

// NewAnnouncer prepares the announcement of ip on ifi, from ifi's MAC.
func NewAnnouncer(ifi *net.Interface, ip netip.Addr) (*Announcer, error) {
	ip = ip.Unmap()
	var (
		frame []byte
		err   error
		proto = unix.ETH_P_ARP
		dst   = broadcastMAC
	)
	if ip.Is4() {
		frame, err = GratuitousARP(ifi.HardwareAddr, ip)
	} else {
		frame, err = UnsolicitedNA(ifi.HardwareAddr, ip)
		proto, dst = unix.ETH_P_IPV6, allNodesMAC
	}
	if err != nil {
		return nil, fmt.Errorf("interface %s: %w", ifi.Name, err)
	}
	c, err := packet.Listen(ifi, packet.Raw, proto, nil)
	if err != nil {
		return nil, fmt.Errorf("packet socket on %s: %w", ifi.Name, err)
	}
	return &Announcer{conn: c, frame: frame, dst: &packet.Addr{HardwareAddr: dst}}, nil
}

// Announce sends the announcement once.
func (a *Announcer) Announce() error {
	if _, err := a.conn.WriteTo(a.frame, a.dst); err != nil {
		return fmt.Errorf("announce: %w", err)
	}
	return nil
}

// Close closes the socket.
func (a *Announcer) Close() error { return a.conn.Close() }
