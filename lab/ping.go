package lab

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"
)

// Ping sends ICMP (or ICMPv6) echo requests from node's namespace ("client"
// for the client's) to addr, one every 100 ms, until one is answered or
// timeout passes. It needs no ping binary.
func (l *Lab) Ping(node string, addr netip.Addr, timeout time.Duration) error {
	i, err := l.nodeIndex(node)
	if err != nil {
		return err
	}
	ns := nsName(i)
	addr = addr.Unmap()
	family, proto, reqType, repType := unix.AF_INET, unix.IPPROTO_ICMP, byte(8), byte(0)
	if addr.Is6() {
		family, proto, reqType, repType = unix.AF_INET6, unix.IPPROTO_ICMPV6, 128, 129
	}
	var fd int
	if err := inNamespace(ns, func() error {
		var err error
		fd, err = unix.Socket(family, unix.SOCK_RAW|unix.SOCK_CLOEXEC, proto)
		return err
	}); err != nil {
		return fmt.Errorf("ping from %s: %w", node, err)
	}
	defer unix.Close(fd)
	var sa unix.Sockaddr
	if addr.Is4() {
		sa = &unix.SockaddrInet4{Addr: addr.As4()}
	} else {
		sa = &unix.SockaddrInet6{Addr: addr.As16()}
	}

	var idb [2]byte
	rand.Read(idb[:])
	id := binary.BigEndian.Uint16(idb[:])
	deadline := time.Now().Add(timeout)
	buf := make([]byte, 1500)
	for seq := uint16(1); ; seq++ {
		msg := make([]byte, 16)
		msg[0] = reqType
		binary.BigEndian.PutUint16(msg[4:], id)
		binary.BigEndian.PutUint16(msg[6:], seq)
		copy(msg[8:], "tachylab")
		if addr.Is4() {
			binary.BigEndian.PutUint16(msg[2:], icmpChecksum(msg))
		} // ICMPv6: the kernel fills in the checksum.
		// A send error (no route, no neighbour) is a failed try, not the end.
		sendErr := unix.Sendto(fd, msg, 0, sa)
		next := time.Now().Add(100 * time.Millisecond)
		if next.After(deadline) {
			next = deadline
		}
		for {
			wait := time.Until(next)
			if wait <= 0 {
				break
			}
			pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
			n, err := unix.Poll(pfd, int(wait.Milliseconds())+1)
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				return err
			}
			if n == 0 {
				continue
			}
			m, from, err := unix.Recvfrom(fd, buf, unix.MSG_DONTWAIT)
			if err != nil {
				continue
			}
			p := buf[:m]
			if addr.Is4() { // raw IPv4 sockets receive the IP header too
				if m < 20 || int(p[0]&0x0f)*4 > m {
					continue
				}
				p = p[int(p[0]&0x0f)*4:]
			}
			var src netip.Addr
			switch f := from.(type) {
			case *unix.SockaddrInet4:
				src = netip.AddrFrom4(f.Addr)
			case *unix.SockaddrInet6:
				src = netip.AddrFrom16(f.Addr)
			}
			if len(p) >= 8 && p[0] == repType && binary.BigEndian.Uint16(p[4:]) == id && src == addr {
				return nil
			}
		}
		if !time.Now().Before(deadline) {
			if sendErr != nil {
				return fmt.Errorf("ping %s from %s (%s): no answer in %s (last send: %v)", addr, node, ns, timeout, sendErr)
			}
			return fmt.Errorf("ping %s from %s (%s): no answer in %s", addr, node, ns, timeout)
		}
	}
}

func icmpChecksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}
