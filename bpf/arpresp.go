//go:build linux

package bpf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"

	"github.com/cilium/ebpf"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// ARPResponder is the loaded XDP ARP responder (arpresp.c): it answers ARP
// requests for the VIPs in its map with their MAC, in the driver. Taking a
// VIP over is Add, releasing it Remove: one map update each.
type ARPResponder struct {
	objs arprespObjects
}

// ARPStats counts what the responder did, summed over CPUs.
type ARPStats struct {
	Replied   uint64 // requests for a VIP, answered
	Announces uint64 // announcements of a VIP by some node, passed on
	Expired   uint64 // requests for a VIP whose lease had ended, dropped
	DroppedIP uint64 // IPv4 packets to a VIP whose lease had ended, dropped
}

// LoadARPResponder loads the program and its maps. It answers nothing until
// attached and given VIPs.
func LoadARPResponder() (*ARPResponder, error) {
	r := &ARPResponder{}
	if err := loadArprespObjects(&r.objs, nil); err != nil {
		return nil, explainLoadError(err)
	}
	return r, nil
}

// Add makes the program answer for ip with mac (replacing an earlier MAC).
func (r *ARPResponder) Add(ip netip.Addr, mac net.HardwareAddr) error {
	return r.AddUntil(ip, mac, 0)
}

// AddUntil makes the program answer for ip with mac until CLOCK_MONOTONIC
// reaches expiresNs (0: for good), and drop requests for ip after that: the
// quorum lease of the holder, enforced in the kernel. Calling it again moves
// the end of the lease.
func (r *ARPResponder) AddUntil(ip netip.Addr, mac net.HardwareAddr, expiresNs int64) error {
	if !ip.Unmap().Is4() {
		return fmt.Errorf("arp responder: %s is not an IPv4 address", ip)
	}
	if len(mac) != 6 {
		return fmt.Errorf("arp responder: %q is not an Ethernet MAC address", mac)
	}
	var v arprespArpVip
	copy(v.Mac[:], mac)
	if expiresNs > 0 {
		v.ExpiresNs = uint64(expiresNs)
	}
	if err := r.objs.Vips.Update(vipKey(ip), &v, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("arp responder: add %s: %w", ip, err)
	}
	return nil
}

// Remove stops answering for ip; removing an absent VIP is not an error.
func (r *ARPResponder) Remove(ip netip.Addr) error {
	err := r.objs.Vips.Delete(vipKey(ip))
	if err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("arp responder: remove %s: %w", ip, err)
	}
	return nil
}

// vipKey is the map key: the address bytes as they appear in the packet.
func vipKey(ip netip.Addr) [4]byte { return ip.Unmap().As4() }

// Attach hooks the responder into an interface. On veth, use AttachGeneric:
// XDP_TX in native mode needs NAPI on the peer.
func (r *ARPResponder) Attach(ifindex int, mode AttachMode) (io.Closer, error) {
	a, err := attachXDP(r.objs.XdpArpResponder, ifindex, mode)
	if err != nil {
		return nil, fmt.Errorf("arp responder: %w", err)
	}
	return a, nil
}

// Program is the XDP program, for BPF_PROG_TEST_RUN.
func (r *ARPResponder) Program() *ebpf.Program { return r.objs.XdpArpResponder }

// Stats reads the counters.
func (r *ARPResponder) Stats() (ARPStats, error) {
	sum, err := sumPerCPU(r.objs.ArpStats, 4)
	if err != nil {
		return ARPStats{}, fmt.Errorf("arp responder: read stats: %w", err)
	}
	return ARPStats{Replied: sum[0], Announces: sum[1], Expired: sum[2], DroppedIP: sum[3]}, nil
}

// Close unloads the program; close its attachments first.
func (r *ARPResponder) Close() error { return r.objs.Close() }

// AttachPersistent hooks the responder into an interface in generic mode
// through rtnetlink rather than a BPF link, so that the attachment outlives
// this process: a node whose daemon died still drops ARP requests for its
// VIPs once their lease ends (the program and its map stay with the
// interface), instead of its stack answering for addresses nobody holds a
// lease on. A later AttachPersistent (a restarted daemon) replaces it;
// Close detaches it.
func (r *ARPResponder) AttachPersistent(ifindex int) (io.Closer, error) {
	if err := setXDP(ifindex, r.objs.XdpArpResponder.FD()); err != nil {
		return nil, fmt.Errorf("arp responder: attach to ifindex %d: %w", ifindex, err)
	}
	return persistentXDP(ifindex), nil
}

type persistentXDP int

// Close detaches whatever XDP program the interface has in generic mode.
func (p persistentXDP) Close() error { return setXDP(int(p), -1) }

func setXDP(ifindex, fd int) error {
	c, err := netlink.Dial(unix.NETLINK_ROUTE, nil)
	if err != nil {
		return err
	}
	defer c.Close()
	ae := netlink.NewAttributeEncoder()
	ae.Nested(unix.IFLA_XDP, func(nae *netlink.AttributeEncoder) error {
		nae.Int32(unix.IFLA_XDP_FD, int32(fd))
		nae.Uint32(unix.IFLA_XDP_FLAGS, unix.XDP_FLAGS_SKB_MODE)
		return nil
	})
	attrs, err := ae.Encode()
	if err != nil {
		return err
	}
	msg := make([]byte, unix.SizeofIfInfomsg)
	msg[0] = unix.AF_UNSPEC
	binary.NativeEndian.PutUint32(msg[4:], uint32(ifindex))
	_, err = c.Execute(netlink.Message{
		Header: netlink.Header{Type: unix.RTM_SETLINK, Flags: netlink.Request | netlink.Acknowledge},
		Data:   append(msg, attrs...),
	})
	return err
}
