package vmtests

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Switch is the lab's Ethernet switch: one per link. Each VM NIC is a port,
// connected through QEMU's stream netdev (a Unix socket carrying frames,
// each after its length as 4 big-endian bytes); the harness itself can be a
// port too (a TAP device: the host's own stack then talks to the VMs). It
// learns MAC addresses as a real switch does, and it is where faults
// happen: a port cut (its cable pulled), a delay on a port, and partitions
// (frames pass only between ports of the same group).
type Switch struct {
	Name string
	dir  string

	mu        sync.Mutex
	ports     map[string]*port
	macs      map[[6]byte]*port
	partition map[string]int // port -> group; nil: none
	closed    bool
	taps      map[int]func(frame []byte) // see every frame that enters
	nextTap   int
}

type port struct {
	name  string
	sw    *Switch
	send  func(frame []byte) error
	close func() error
	cut   bool
	delay time.Duration
	wmu   sync.Mutex
	ln    net.Listener
	// out is the port's egress queue: a port that does not take frames
	// (a paused VM stops reading its NIC) loses them when it is full, as
	// on a real switch, instead of holding up the others.
	out  chan []byte
	done chan struct{} // closed when the switch closes
	once sync.Once
}

const egressQueue = 1024

// start runs the port's egress writer.
func (p *port) start() {
	p.once.Do(func() {
		p.out, p.done = make(chan []byte, egressQueue), make(chan struct{})
		go func() {
			for {
				select {
				case <-p.done:
					return
				case f := <-p.out:
					p.wmu.Lock()
					p.send(f) // a VM that went away: the frame is lost, as on a wire
					p.wmu.Unlock()
				}
			}
		}()
	})
}

// NewSwitch makes a switch whose port sockets live in dir.
func NewSwitch(name, dir string) *Switch {
	return &Switch{Name: name, dir: dir, ports: map[string]*port{}, macs: map[[6]byte]*port{}}
}

// AddPort makes a port for a VM NIC and returns the socket path QEMU
// connects to (-netdev stream,server=off,addr.type=unix,addr.path=PATH).
// The port accepts one connection at a time; a VM that restarts connects
// again.
func (s *Switch) AddPort(name string) (string, error) {
	path := filepath.Join(s.dir, s.Name+"-"+name+".sock")
	os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return "", fmt.Errorf("switch %s: port %s: %w", s.Name, name, err)
	}
	p := &port{name: name, sw: s, ln: ln, send: func([]byte) error { return nil }, close: func() error { return nil }}
	p.start()
	s.mu.Lock()
	s.ports[name] = p
	s.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.wmu.Lock()
			p.close()
			p.send = func(frame []byte) error {
				b := make([]byte, 4+len(frame))
				binary.BigEndian.PutUint32(b, uint32(len(frame)))
				copy(b[4:], frame)
				_, err := c.Write(b)
				return err
			}
			p.close = c.Close
			p.wmu.Unlock()
			go p.readStream(c)
		}
	}()
	return path, nil
}

func (p *port) readStream(c net.Conn) {
	var hdr [4]byte
	for {
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			return
		}
		n := binary.BigEndian.Uint32(hdr[:])
		if n > 65536+18 {
			return // not a frame: drop the connection
		}
		frame := make([]byte, n)
		if _, err := io.ReadFull(c, frame); err != nil {
			return
		}
		p.sw.forward(p, frame)
	}
}

// AddHostPort attaches a TAP device (already created, see OpenTAP) as a
// port named name.
func (s *Switch) AddHostPort(name string, tap *os.File) {
	p := &port{name: name, sw: s, send: func(frame []byte) error { _, err := tap.Write(frame); return err }, close: tap.Close}
	p.start()
	s.mu.Lock()
	s.ports[name] = p
	s.mu.Unlock()
	go func() {
		buf := make([]byte, 65536)
		for {
			n, err := tap.Read(buf)
			if err != nil {
				return
			}
			s.forward(p, append([]byte(nil), buf[:n]...))
		}
	}()
}

// forward sends a frame from port in to where its destination MAC was
// last seen, or to every other port for broadcast, multicast and unknown
// destinations, through the faults.
func (s *Switch) forward(in *port, frame []byte) {
	if len(frame) < 14 {
		return
	}
	var dst, src [6]byte
	copy(dst[:], frame[0:6])
	copy(src[:], frame[6:12])
	s.mu.Lock()
	if in.cut || s.closed {
		s.mu.Unlock()
		return
	}
	if src[0]&1 == 0 {
		s.macs[src] = in
	}
	for _, tap := range s.taps {
		tap(frame)
	}
	var outs []*port
	if out, ok := s.macs[dst]; ok && dst[0]&1 == 0 {
		outs = []*port{out}
	} else {
		for _, p := range s.ports {
			outs = append(outs, p)
		}
	}
	var deliver []*port
	var delays []time.Duration
	for _, out := range outs {
		if out == in || out.cut || !s.sameGroup(in.name, out.name) {
			continue
		}
		deliver = append(deliver, out)
		delays = append(delays, in.delay+out.delay)
	}
	s.mu.Unlock()
	for i, out := range deliver {
		out := out
		if delays[i] > 0 {
			time.AfterFunc(delays[i], func() { out.write(frame) })
			continue
		}
		out.write(frame)
	}
}

func (p *port) write(frame []byte) {
	select {
	case p.out <- frame:
	default: // the queue is full: dropped
	}
}

func (s *Switch) sameGroup(a, b string) bool {
	if s.partition == nil {
		return true
	}
	ga, oka := s.partition[a]
	gb, okb := s.partition[b]
	return oka && okb && ga == gb
}

// Cut pulls (cut=true) or plugs back the cable of a port.
func (s *Switch) Cut(name string, cut bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.ports[name]
	if !ok {
		return fmt.Errorf("switch %s: no port %q", s.Name, name)
	}
	p.cut = cut
	return nil
}

// Delay makes frames to and from a port wait d (0: none).
func (s *Switch) Delay(name string, d time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.ports[name]
	if !ok {
		return fmt.Errorf("switch %s: no port %q", s.Name, name)
	}
	p.delay = d
	return nil
}

// Partition splits the ports into groups that cannot reach each other; a
// port in no group reaches nothing. Partition(nil) heals.
func (s *Switch) Partition(groups [][]string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if groups == nil {
		s.partition = nil
		return nil
	}
	m := map[string]int{}
	for i, g := range groups {
		for _, name := range g {
			if _, ok := s.ports[name]; !ok {
				return fmt.Errorf("switch %s: no port %q", s.Name, name)
			}
			if _, dup := m[name]; dup {
				return fmt.Errorf("switch %s: port %q is in two groups", s.Name, name)
			}
			m[name] = i
		}
	}
	s.partition = m
	return nil
}

// Close stops the switch.
func (s *Switch) Close() error {
	s.mu.Lock()
	s.closed = true
	ports := s.ports
	s.mu.Unlock()
	var errs []error
	for _, p := range ports {
		if p.ln != nil {
			p.ln.Close()
		}
		close(p.done)
		p.wmu.Lock()
		if err := p.close(); err != nil && !errors.Is(err, net.ErrClosed) && !errors.Is(err, os.ErrClosed) {
			errs = append(errs, err)
		}
		p.wmu.Unlock()
	}
	return errors.Join(errs...)
}

// ARPClaim is a frame seen on the switch in which a host claims an IPv4
// address: an ARP reply, or a gratuitous ARP, whose sender is that address.
type ARPClaim struct {
	At  time.Time
	MAC [6]byte
}

// WatchARP records every claim for ip seen from now on, until stop; the
// dual-ownership check of the VIP scenarios reads them.
func (s *Switch) WatchARP(ip [4]byte) (claims func() []ARPClaim, stop func()) {
	var mu sync.Mutex
	var out []ARPClaim
	s.mu.Lock()
	id := s.nextTap
	s.nextTap++
	if s.taps == nil {
		s.taps = map[int]func([]byte){}
	}
	s.taps[id] = func(frame []byte) {
		if c, ok := arpClaim(frame, ip); ok {
			mu.Lock()
			out = append(out, c)
			mu.Unlock()
		}
	}
	s.mu.Unlock()
	return func() []ARPClaim {
			mu.Lock()
			defer mu.Unlock()
			return append([]ARPClaim(nil), out...)
		}, func() {
			s.mu.Lock()
			delete(s.taps, id)
			s.mu.Unlock()
		}
}

// arpClaim decodes an Ethernet ARP frame (no VLAN tag) whose sender
// protocol address is ip and whose operation is a reply, or a request
// that is gratuitous (target address = sender address).
func arpClaim(f []byte, ip [4]byte) (ARPClaim, bool) {
	if len(f) < 42 || f[12] != 0x08 || f[13] != 0x06 {
		return ARPClaim{}, false
	}
	a := f[14:]
	op := uint16(a[6])<<8 | uint16(a[7])
	var spa, tpa [4]byte
	copy(spa[:], a[14:18])
	copy(tpa[:], a[24:28])
	if spa != ip || !(op == 2 || op == 1 && tpa == spa) {
		return ARPClaim{}, false
	}
	var c ARPClaim
	c.At = time.Now()
	copy(c.MAC[:], a[8:14])
	return c, true
}

// Inject delivers a frame to a port as if it came from the wire,
// whatever the faults (a probe of a node cut off from the rest).
func (s *Switch) Inject(name string, frame []byte) error {
	s.mu.Lock()
	p, ok := s.ports[name]
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("switch %s: no port %q", s.Name, name)
	}
	p.write(frame)
	return nil
}

// ARPRequest builds a broadcast who-has for target from a made-up host
// (02:00:00:00:00:fe, 10.77.0.253) that no VM is.
func ARPRequest(target [4]byte) []byte {
	src := []byte{0x02, 0, 0, 0, 0, 0xfe}
	f := []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	f = append(f, src...)
	f = append(f, 0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1)
	f = append(f, src...)
	f = append(f, 10, 77, 0, 253)
	f = append(f, 0, 0, 0, 0, 0, 0)
	f = append(f, target[:]...)
	return f
}
