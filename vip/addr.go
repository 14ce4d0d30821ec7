package vip

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Addresses adds and removes addresses through rtnetlink. One value keeps
// its socket open so that a takeover costs a single request; it works in
// the network namespace it was opened in.
type Addresses struct {
	c *netlink.Conn
}

// OpenAddresses opens an rtnetlink socket (needs CAP_NET_ADMIN to change
// addresses).
func OpenAddresses() (*Addresses, error) {
	c, err := netlink.Dial(unix.NETLINK_ROUTE, nil)
	if err != nil {
		return nil, fmt.Errorf("rtnetlink: %w", err)
	}
	return &Addresses{c: c}, nil
}

// Close closes the socket.
func (a *Addresses) Close() error { return a.c.Close() }

// Add puts p on the interface. It is idempotent: an address already there
// is not an error. IPv6 addresses skip duplicate address detection
// (IFA_F_NODAD), or they would stay unusable ("tentative") for a second.
func (a *Addresses) Add(ifindex int, p netip.Prefix) error {
	err := a.do(unix.RTM_NEWADDR, netlink.Create|netlink.Excl, ifindex, p)
	if errors.Is(err, unix.EEXIST) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("add %s to interface %d: %w", p, ifindex, err)
	}
	return nil
}

// Remove takes p off the interface. An address that is not there is not an
// error: releasing twice is safe.
func (a *Addresses) Remove(ifindex int, p netip.Prefix) error {
	err := a.do(unix.RTM_DELADDR, 0, ifindex, p)
	if errors.Is(err, unix.EADDRNOTAVAIL) || errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("remove %s from interface %d: %w", p, ifindex, err)
	}
	return nil
}

func (a *Addresses) do(typ int, flags netlink.HeaderFlags, ifindex int, p netip.Prefix) error {
	if !p.IsValid() {
		return errors.New("invalid prefix")
	}
	if ifindex <= 0 {
		return fmt.Errorf("invalid interface index %d", ifindex)
	}
	addr := p.Addr().Unmap()
	family, ifaFlags := unix.AF_INET, uint32(0)
	if addr.Is6() {
		family, ifaFlags = unix.AF_INET6, unix.IFA_F_NODAD
	}
	// struct ifaddrmsg: family, prefixlen, flags, scope, index.
	msg := make([]byte, unix.SizeofIfAddrmsg)
	msg[0] = byte(family)
	msg[1] = byte(p.Bits())
	msg[2] = byte(ifaFlags)
	msg[3] = unix.RT_SCOPE_UNIVERSE
	binary.NativeEndian.PutUint32(msg[4:], uint32(ifindex))
	ae := netlink.NewAttributeEncoder()
	ae.Bytes(unix.IFA_LOCAL, addr.AsSlice())
	ae.Bytes(unix.IFA_ADDRESS, addr.AsSlice())
	if ifaFlags != 0 {
		ae.Uint32(unix.IFA_FLAGS, ifaFlags)
	}
	attrs, err := ae.Encode()
	if err != nil {
		return err
	}
	_, err = a.c.Execute(netlink.Message{
		Header: netlink.Header{Type: netlink.HeaderType(typ), Flags: netlink.Request | netlink.Acknowledge | flags},
		Data:   append(msg, attrs...),
	})
	return err
}
