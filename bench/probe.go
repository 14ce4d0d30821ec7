package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"time"

	"github.com/mdlayher/packet"
	"golang.org/x/sys/unix"

	"github.com/tachy-ha/tachy/lab"
	"github.com/tachy-ha/tachy/vip"
)

// A Prober runs in the lab's client namespace and asks the VIP something
// every interval: an ICMP echo (IPv4 or IPv6), a UDP echo and a TCP connect
// (when ports are given), and, for IPv4, an ARP question whose answers an
// OwnerCounter counts (two MACs answering one question: dual ownership).
// It also records the neighbour advertisements seen for an IPv6 VIP. The
// client-observed outage of a failover is the longest gap between answered
// probes of one kind around it.
type Prober struct {
	VIP      netip.Addr
	Interval time.Duration
	UDPPort  int // 0: no UDP probe
	TCPPort  int // 0: no TCP probe

	start  time.Time
	mu     sync.Mutex
	kinds  map[string]*probeLog
	owner  *vip.OwnerCounter
	nas    []NA
	macOf  map[string]int       // MAC -> answers (for reports)
	lastBy map[string]time.Time // MAC -> its latest ARP answer

	icmp, udp int // sockets (fds)
	arp, nd   *packet.Conn
	ifi       *net.Interface
	stop      chan struct{}
	wg        sync.WaitGroup
}

// NA is a neighbour advertisement seen by the client.
type NA struct {
	At  time.Time
	MAC string
}

// probeLog records one kind of probe: when each was sent, and whether it was
// answered.
type probeLog struct {
	sent     []time.Time
	answered []bool
}

func (l *probeLog) ask(t time.Time) int {
	l.sent = append(l.sent, t)
	l.answered = append(l.answered, false)
	return len(l.sent) - 1
}

func (l *probeLog) answer(i int) {
	if i >= 0 && i < len(l.answered) {
		l.answered[i] = true
	}
}

// maxGap is the longest time between two answered probes sent within
// [from, to] (or from the last answered before from, to the first after
// to), which is what a client sees as the outage; -1 if nothing after from
// was answered.
func (l *probeLog) maxGap(from, to time.Time) time.Duration {
	i := sort.Search(len(l.sent), func(i int) bool { return !l.sent[i].Before(from) })
	last := -1
	for j := i - 1; j >= 0; j-- {
		if l.answered[j] {
			last = j
			break
		}
	}
	var gap time.Duration
	answeredAfter := false
	for j := i; j < len(l.sent); j++ {
		if !l.answered[j] {
			continue
		}
		if last >= 0 {
			gap = max(gap, l.sent[j].Sub(l.sent[last]))
		}
		last = j
		answeredAfter = true
		if l.sent[j].After(to) {
			break
		}
	}
	if !answeredAfter {
		return -1
	}
	return gap
}

// StartProber opens the sockets in the client namespace and starts probing.
func StartProber(ctx context.Context, l *lab.Lab, p *Prober) error {
	p.VIP = p.VIP.Unmap()
	p.kinds = map[string]*probeLog{"icmp": {}}
	if p.UDPPort != 0 {
		p.kinds["udp"] = &probeLog{}
	}
	if p.TCPPort != 0 {
		p.kinds["tcp"] = &probeLog{}
	}
	p.macOf = map[string]int{}
	p.lastBy = map[string]time.Time{}
	if p.VIP.Is4() {
		p.owner = vip.NewOwnerCounter(p.VIP)
	}
	p.stop = make(chan struct{})
	err := lab.InNamespace(lab.ClientNamespace, func() error {
		ifi, err := net.InterfaceByName("svc")
		if err != nil {
			return err
		}
		p.ifi = ifi
		if p.VIP.Is4() {
			if p.icmp, err = unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_ICMP); err != nil {
				return err
			}
			if p.arp, err = packet.Listen(ifi, packet.Raw, unix.ETH_P_ARP, nil); err != nil {
				return err
			}
		} else {
			if p.icmp, err = unix.Socket(unix.AF_INET6, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_ICMPV6); err != nil {
				return err
			}
			if p.nd, err = packet.Listen(ifi, packet.Raw, unix.ETH_P_IPV6, nil); err != nil {
				return err
			}
		}
		tv := unix.Timeval{Usec: 100000}
		if err := unix.SetsockoptTimeval(p.icmp, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			return err
		}
		if p.UDPPort != 0 {
			fam := unix.AF_INET
			if p.VIP.Is6() {
				fam = unix.AF_INET6
			}
			if p.udp, err = unix.Socket(fam, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0); err != nil {
				return err
			}
			if err := unix.SetsockoptTimeval(p.udp, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		p.Close()
		return fmt.Errorf("prober: %w", err)
	}
	p.start = time.Now()
	p.wg.Add(1)
	go func() { defer p.wg.Done(); p.readICMP() }()
	if p.arp != nil {
		p.wg.Add(1)
		go func() { defer p.wg.Done(); p.readARP() }()
	}
	if p.nd != nil {
		p.wg.Add(1)
		go func() { defer p.wg.Done(); p.readND() }()
	}
	if p.udp != 0 {
		p.wg.Add(1)
		go func() { defer p.wg.Done(); p.readUDP() }()
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		// The sender stays in the client namespace (its TCP sockets are
		// made there); its thread is not given back to the runtime.
		runtime.LockOSThread()
		f, err := os.Open(filepath.Join("/run/netns", lab.ClientNamespace))
		if err != nil {
			return
		}
		err = unix.Setns(int(f.Fd()), unix.CLONE_NEWNET)
		f.Close()
		if err != nil {
			return
		}
		p.send(ctx)
	}()
	return nil
}

func (p *Prober) sockaddr(port int) unix.Sockaddr {
	if p.VIP.Is4() {
		return &unix.SockaddrInet4{Addr: p.VIP.As4(), Port: port}
	}
	return &unix.SockaddrInet6{Addr: p.VIP.As16(), Port: port}
}

// askerIP is the sender address of ARP question n: each question its own
// (in 10.77.2.150..249), so that a reply says which one it answers.
func askerIP(n int) netip.Addr { return netip.AddrFrom4([4]byte{10, 77, 2, byte(150 + n%100)}) }

func (p *Prober) send(ctx context.Context) {
	buf := make([]byte, 16)
	next := time.Now()
	bcast := &packet.Addr{HardwareAddr: net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.stop:
			return
		default:
		}
		now := time.Now()
		p.mu.Lock()
		i := p.kinds["icmp"].ask(now)
		var q int
		if p.owner != nil {
			q = p.owner.Ask(now)
		}
		var u, tc int
		if p.udp != 0 {
			u = p.kinds["udp"].ask(now)
		}
		if p.TCPPort != 0 {
			tc = p.kinds["tcp"].ask(now)
		}
		p.mu.Unlock()
		// ICMP echo: type 8 (v4) / 128 (v6), id and sequence from i.
		typ := byte(8)
		if p.VIP.Is6() {
			typ = 128
		}
		buf[0], buf[1], buf[2], buf[3] = typ, 0, 0, 0
		binary.BigEndian.PutUint32(buf[4:], uint32(i))
		binary.BigEndian.PutUint64(buf[8:], 0x7461636879)
		if p.VIP.Is4() {
			binary.BigEndian.PutUint16(buf[2:], inetChecksum(buf))
		}
		_ = unix.Sendto(p.icmp, buf, unix.MSG_DONTWAIT, p.sockaddr(0))
		if p.owner != nil {
			if question, err := vip.ARPRequest(p.ifi.HardwareAddr, askerIP(q), p.VIP); err == nil {
				p.arp.WriteTo(question, bcast)
			}
		}
		if p.udp != 0 {
			var b [4]byte
			binary.BigEndian.PutUint32(b[:], uint32(u))
			_ = unix.Sendto(p.udp, b[:], unix.MSG_DONTWAIT, p.sockaddr(p.UDPPort))
		}
		if p.TCPPort != 0 {
			p.connect(tc)
		}
		next = next.Add(p.Interval)
		if d := time.Until(next); d > 0 {
			time.Sleep(d)
		} else {
			next = time.Now()
		}
	}
}

// connect starts a TCP connection to the VIP from the sender's thread (in
// the client namespace); a goroutine waits up to 200 ms for it.
func (p *Prober) connect(i int) {
	fam := unix.AF_INET
	if p.VIP.Is6() {
		fam = unix.AF_INET6
	}
	fd, err := unix.Socket(fam, unix.SOCK_STREAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return
	}
	// No linger: close sends RST, leaving no TIME_WAIT behind.
	unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
	if err := unix.Connect(fd, p.sockaddr(p.TCPPort)); err != nil && !errors.Is(err, unix.EINPROGRESS) {
		unix.Close(fd)
		return
	}
	go func() {
		defer unix.Close(fd)
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
		if n, err := unix.Poll(pfd, 200); err != nil || n != 1 {
			return
		}
		if v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR); err != nil || v != 0 {
			return
		}
		p.mu.Lock()
		p.kinds["tcp"].answer(i)
		p.mu.Unlock()
	}()
}

func (p *Prober) readICMP() {
	buf := make([]byte, 1500)
	for {
		n, _, err := unix.Recvfrom(p.icmp, buf, 0)
		if p.stopped() {
			return
		}
		if err != nil {
			continue
		}
		b := buf[:n]
		if p.VIP.Is4() {
			if n < 20 {
				continue
			}
			b = b[int(b[0]&0xf)*4:]
		}
		want := byte(0)
		if p.VIP.Is6() {
			want = 129
		}
		if len(b) < 16 || b[0] != want || binary.BigEndian.Uint64(b[8:]) != 0x7461636879 {
			continue
		}
		p.mu.Lock()
		p.kinds["icmp"].answer(int(binary.BigEndian.Uint32(b[4:])))
		p.mu.Unlock()
	}
}

func (p *Prober) readUDP() {
	buf := make([]byte, 64)
	for {
		n, _, err := unix.Recvfrom(p.udp, buf, 0)
		if p.stopped() {
			return
		}
		if err != nil {
			continue
		}
		if n == 4 {
			p.mu.Lock()
			p.kinds["udp"].answer(int(binary.BigEndian.Uint32(buf)))
			p.mu.Unlock()
		}
	}
}

func (p *Prober) readARP() {
	buf := make([]byte, 1500)
	for {
		n, _, err := p.arp.ReadFrom(buf)
		if err != nil {
			return
		}
		a, err := vip.ParseAnnouncement(buf[:n])
		if err != nil || a.Op != "arp-reply" || a.IP != p.VIP {
			continue
		}
		p.mu.Lock()
		// the question this answers: the latest asked from a.To
		if b := a.To.As4(); b[0] == 10 && b[1] == 77 && b[2] == 2 && b[3] >= 150 && b[3] < 250 {
			q := p.owner.Questions - 1
			for q >= 0 && q%100 != int(b[3])-150 {
				q--
			}
			p.owner.Answer(q, a)
			p.macOf[a.MAC.String()]++
			p.lastBy[a.MAC.String()] = time.Now()
		}
		p.mu.Unlock()
	}
}

func (p *Prober) readND() {
	buf := make([]byte, 1500)
	for {
		n, _, err := p.nd.ReadFrom(buf)
		if err != nil {
			return
		}
		a, err := vip.ParseAnnouncement(buf[:n])
		if err != nil || a.Op != "na" || a.IP != p.VIP {
			continue
		}
		p.mu.Lock()
		p.nas = append(p.nas, NA{At: time.Now(), MAC: a.MAC.String()})
		p.mu.Unlock()
	}
}

// Outage is the longest gap between answered probes of kind sent within
// [from, to] (-1: none answered after from).
func (p *Prober) Outage(kind string, from, to time.Time) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	l := p.kinds[kind]
	if l == nil {
		return -1
	}
	return l.maxGap(from, to)
}

// AnsweredSince reports whether the latest probe of kind sent after t was
// answered.
func (p *Prober) AnsweredSince(kind string, t time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	l := p.kinds[kind]
	for j := len(l.sent) - 1; j >= 0 && l.sent[j].After(t); j-- {
		if l.answered[j] {
			return true
		}
	}
	return false
}

// Answering lists the MACs that answered an ARP question for the VIP within
// the last window (IPv4 VIPs).
func (p *Prober) Answering(window time.Duration) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for mac, at := range p.lastBy {
		if time.Since(at) <= window {
			out = append(out, mac)
		}
	}
	sort.Strings(out)
	return out
}

// NAs returns the neighbour advertisements seen for an IPv6 VIP.
func (p *Prober) NAs() []NA {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]NA(nil), p.nas...)
}

// Owners returns the dual-ownership count so far (questions closed), the
// owner changes, and the answers per MAC.
func (p *Prober) Owners() (dual int, changes []vip.Change, perMAC map[string]int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.owner == nil {
		return 0, nil, nil
	}
	perMAC = map[string]int{}
	for k, v := range p.macOf {
		perMAC[k] = v
	}
	return p.owner.Dual, p.owner.Changes(), perMAC
}

// Close stops probing and closes every socket; the owner counter is
// finished.
func (p *Prober) Close() {
	if p.stop != nil {
		select {
		case <-p.stop:
		default:
			close(p.stop)
		}
	}
	time.Sleep(100 * time.Millisecond) // the last answers
	for _, c := range []*packet.Conn{p.arp, p.nd} {
		if c != nil {
			c.Close()
		}
	}
	p.wg.Wait()
	for _, fd := range []int{p.icmp, p.udp} {
		if fd > 0 {
			unix.Close(fd)
		}
	}
	p.mu.Lock()
	if p.owner != nil {
		p.owner.Finish()
	}
	p.mu.Unlock()
}

func (p *Prober) stopped() bool {
	select {
	case <-p.stop:
		return true
	default:
		return false
	}
}

func inetChecksum(b []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}
