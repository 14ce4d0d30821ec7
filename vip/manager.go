package vip

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tachy-ha/tachy/bpf"
)

// Spec is one floating address, as the vip agent's parameters (and
// IPaddr2's) give it.
type Spec struct {
	IP   netip.Addr
	Bits int    // prefix length; -1: that of the interface's subnet holding IP
	Nic  string // interface; "": the one whose subnet holds IP
	// Probe: before taking an IPv4 address, ask the segment for this
	// long whether another host answers for it, and refuse if one does
	// (InUse). The fast path does not probe: its lease logic already
	// knows the old holder has stopped.
	Probe time.Duration
}

// ParseSpec reads the agent parameters ip, cidr_netmask and nic.
func ParseSpec(params map[string]string) (Spec, error) {
	s := Spec{Bits: -1, Nic: strings.TrimSpace(params["nic"])}
	raw := strings.TrimSpace(params["ip"])
	if raw == "" {
		return s, errors.New("parameter ip is required")
	}
	ip, err := netip.ParseAddr(raw)
	if err != nil {
		return s, fmt.Errorf("ip %q is not an IP address", raw)
	}
	if ip.Zone() != "" {
		return s, fmt.Errorf("ip %q: no zones", raw)
	}
	s.IP = ip.Unmap()
	if !s.IP.IsGlobalUnicast() && !s.IP.IsPrivate() {
		return s, fmt.Errorf("ip %s is not a unicast address", s.IP)
	}
	if m := strings.TrimSpace(params["cidr_netmask"]); m != "" {
		n, err := strconv.Atoi(m)
		if err != nil {
			// IPaddr2 also takes a dotted netmask.
			mask := net.ParseIP(m).To4()
			if mask == nil || !s.IP.Is4() {
				return s, fmt.Errorf("cidr_netmask %q is neither a prefix length nor an IPv4 netmask", m)
			}
			ones, bits := net.IPMask(mask).Size()
			if bits == 0 {
				return s, fmt.Errorf("cidr_netmask %q is not a contiguous netmask", m)
			}
			n = ones
		}
		if n < 1 || n > s.IP.BitLen() {
			return s, fmt.Errorf("cidr_netmask %d out of range 1..%d for %s", n, s.IP.BitLen(), s.IP)
		}
		s.Bits = n
	}
	if s.Nic != "" && (len(s.Nic) > 15 || strings.ContainsAny(s.Nic, "/ \t")) {
		return s, fmt.Errorf("nic %q is not an interface name", s.Nic)
	}
	return s, nil
}

// held is a VIP this node holds.
type held struct {
	spec   Spec
	prefix netip.Prefix
	ifi    *net.Interface
	ann    *Announcer
	// standby (prepared take-overs only): the address is configured
	// already, and the responder drops ARP and IPv4 for it until a start
	// gives it the lease.
	standby bool
	// gated: an IPv4 VIP in the responder's map, which stops the stack
	// from answering for it past the lease end.
	gated bool
}

// Manager holds this node's VIPs: it adds and removes them, announces them,
// puts IPv4 ones in the XDP ARP responder (where one could be attached) and
// keeps them there only as long as the node's quorum lease lasts. The vip
// agent and the fast failover path share one Manager, so either one sees
// what the other did.
type Manager struct {
	// Responder: load and attach the XDP ARP responder to each VIP's
	// interface (generic mode, which works on any interface). Without it
	// (or when it cannot load), the stack answers ARP.
	Responder bool
	// Logf reports what went wrong on the side (announcement repeats, a
	// responder that could not attach); nil: silent.
	Logf func(format string, args ...any)
	// StateFile, if set, lists the VIPs held (rewritten on every change),
	// so that a restarted process can release what a crashed one held:
	// ReleaseStale.
	StateFile string

	mu sync.Mutex
	// prepMu orders Prepare and Stop. Prepare configures a standby
	// address outside mu (netlink may wait for the RTNL lock); a Stop of
	// the same VIP in that window (the release of a lapsed lease, recorded
	// while the plans are prepared again) took the address off before
	// Prepare recorded it as configured, and the take-over that followed
	// answered ARP for an address the stack did not have.
	prepMu sync.Mutex
	// afterPrepareAdd, in tests, runs after Prepare configured a standby
	// address and before it records it.
	afterPrepareAdd func(netip.Addr)
	addrs           *Addresses
	resp            *bpf.ARPResponder
	respErr         error
	attached        map[int]io.Closer
	held            map[netip.Addr]*held
	// prepared: take-overs made ready ahead (Prepare)
	prepared map[netip.Addr]*held
	// noProbe: addresses whose next Start skips the probe (the fast
	// path's take-overs), until when
	noProbe map[netip.Addr]time.Time
	// leaseEnd is the end of the quorum lease (CLOCK_MONOTONIC ns) the
	// responder enforces; 0: none set (no lease enforced).
	leaseEnd int64
	// leaseMoved, when a WaitLease waits, is closed at the next SetLease.
	leaseMoved chan struct{}
}

// NewManager returns a manager holding nothing.
func NewManager() *Manager {
	return &Manager{attached: map[int]io.Closer{}, held: map[netip.Addr]*held{}, noProbe: map[netip.Addr]time.Time{},
		prepared: map[netip.Addr]*held{}}
}

func (m *Manager) logf(format string, args ...any) {
	if m.Logf != nil {
		m.Logf(format, args...)
	}
}

// resolve finds the interface and prefix of s.
func resolve(s Spec) (*net.Interface, netip.Prefix, error) {
	var ifs []net.Interface
	if s.Nic != "" {
		ifi, err := net.InterfaceByName(s.Nic)
		if err != nil {
			return nil, netip.Prefix{}, fmt.Errorf("nic %s: %w", s.Nic, err)
		}
		ifs = []net.Interface{*ifi}
	} else {
		all, err := net.Interfaces()
		if err != nil {
			return nil, netip.Prefix{}, err
		}
		ifs = all
	}
	for i := range ifs {
		ifi := &ifs[i]
		addrs, err := ifi.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			ip, _ := netip.AddrFromSlice(ipn.IP)
			ones, _ := ipn.Mask.Size()
			p := netip.PrefixFrom(ip.Unmap(), ones).Masked()
			if ip.Unmap() == s.IP || !p.Contains(s.IP) || ones == s.IP.BitLen() {
				continue
			}
			bits := s.Bits
			if bits < 0 {
				bits = ones
			}
			return ifi, netip.PrefixFrom(s.IP, bits), nil
		}
	}
	if s.Nic != "" {
		bits := s.Bits
		if bits < 0 {
			bits = s.IP.BitLen()
		}
		return &ifs[0], netip.PrefixFrom(s.IP, bits), nil
	}
	return nil, netip.Prefix{}, fmt.Errorf("no interface has a subnet holding %s: set nic", s.IP)
}

// Start takes s over: the address goes on the interface, the responder
// answers for it, and the first announcement goes out before Start
// returns (two more follow, 2 and 20 ms later, for receivers that missed
// it). With a lease set, Start refuses once the lease has ended: a node
// without quorum must not take addresses.
func (m *Manager) Start(s Spec) error {
	began := time.Now()
	var steps []string
	step := func(name string) { steps = append(steps, fmt.Sprintf("%s %v", name, time.Since(began))) }
	defer func() {
		if time.Since(began) > 2*time.Millisecond {
			m.logf("vip %s: slow start: %s", s.IP, strings.Join(steps, ", "))
		}
	}()
	m.mu.Lock()
	ready := m.prepared[s.IP]
	step("lock")
	if ready != nil && (ready.spec.Nic != s.Nic || ready.spec.Bits != s.Bits) {
		ready = nil
	}
	m.mu.Unlock()
	var (
		ifi *net.Interface
		p   netip.Prefix
		err error
	)
	if ready != nil {
		ifi, p = ready.ifi, ready.prefix
	} else if ifi, p, err = resolve(s); err != nil {
		return err
	}
	m.mu.Lock()
	holding := m.held[s.IP] != nil
	skip := time.Now().Before(m.noProbe[s.IP])
	delete(m.noProbe, s.IP)
	m.mu.Unlock()
	if s.Probe > 0 && s.IP.Is4() && !holding && !skip {
		mac, err := InUse(ifi, s.IP, s.Probe)
		if err != nil {
			return err
		}
		if mac != nil {
			return fmt.Errorf("%s is in use: %s answers for it", s.IP, mac)
		}
		began, steps = time.Now(), nil // the probe's wait is not slowness
	}
	step("resolved")
	m.mu.Lock()
	defer m.mu.Unlock()
	step("locked")
	if m.leaseEnd != 0 && monotonicNow() >= m.leaseEnd {
		return ErrNoLease
	}
	if m.addrs == nil {
		if m.addrs, err = OpenAddresses(); err != nil {
			return err
		}
	}
	h := m.held[s.IP]
	standby := false
	if h == nil || h.ifi.Index != ifi.Index {
		var ann *Announcer
		if r := m.prepared[s.IP]; r != nil {
			delete(m.prepared, s.IP)
			if r.ifi.Index == ifi.Index && r.spec.Bits == s.Bits && r.spec.Nic == s.Nic {
				ann, standby = r.ann, r.standby
			} else {
				m.dropPrepared(r)
			}
		}
		if ann == nil {
			if ann, err = NewAnnouncer(ifi, s.IP); err != nil {
				return err
			}
		}
		if h != nil {
			m.release(h)
		}
		h = &held{spec: s, prefix: p, ifi: ifi, ann: ann}
	}
	step(fmt.Sprintf("announcer(standby %v)", standby))
	if !standby {
		if err := m.addrs.Add(ifi.Index, p); err != nil {
			h.ann.Close()
			return err
		}
	}
	// else: configured ahead (Prepare). The take-over is the responder's
	// map update below: a netlink request waits for the RTNL lock, which
	// any network change on the machine may hold for milliseconds.
	step("added")
	m.held[s.IP] = h
	m.save()
	step("saved")
	if s.IP.Is4() && m.Responder {
		m.answer(h)
	}
	step("responder")
	if err := h.ann.Announce(); err != nil {
		m.logf("vip %s: %v", s.IP, err)
	}
	step("announced")
	go func(a *Announcer) {
		for i, d := range []time.Duration{2 * time.Millisecond, 18 * time.Millisecond} {
			time.Sleep(d)
			if i == 0 && standby {
				m.ensureConfigured(s.IP, a)
			}
			m.mu.Lock()
			still := m.held[s.IP] != nil && m.held[s.IP].ann == a
			if still {
				a.Announce()
			}
			m.mu.Unlock()
			if !still {
				return
			}
		}
	}(h.ann)
	return nil
}

// ensureConfigured checks, after a take-over that used an address
// configured ahead (standby), that the stack has it, and adds it if not.
// The take-over itself trusts Prepare so as to make no netlink request.
// When that trust was broken (a Stop racing Prepare, before prepMu), the
// responder answered ARP for an address the stack did not have, the
// monitor found it "not on this node" a millisecond later, and the VIP came
// back through the slow path a second after. Whatever else takes the
// address off (an operator, another tool), this brings it back within a
// few milliseconds of the take-over, and says so.
func (m *Manager) ensureConfigured(ip netip.Addr, a *Announcer) {
	m.mu.Lock()
	defer m.mu.Unlock() // a Stop must not come between the check and the add
	h := m.held[ip]
	if h == nil || h.ann != a {
		return
	}
	on, err := addrOn(h.ifi, ip)
	if err != nil || on {
		return
	}
	if err := m.addrs.Add(h.ifi.Index, h.prefix); err != nil {
		m.logf("vip %s: the address configured ahead of the take-over is gone, and adding it failed: %v", ip, err)
		return
	}
	m.logf("vip %s: the address configured ahead of the take-over was gone: added it after the take-over", ip)
}

// SkipProbe makes the next Start of ip, within a second, skip the probe:
// the fast path's take-over, whose lease logic already knows the old
// holder has stopped, does not wait for it.
func (m *Manager) SkipProbe(ip netip.Addr) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.noProbe[ip.Unmap()] = time.Now().Add(time.Second)
}

// Prepare makes take-overs of specs ready ahead, so that one costs a map
// update and a frame: each interface resolved, each announcement's socket
// open, and, for IPv4 with the responder, the address configured already
// with the responder dropping ARP and IPv4 for it (its lease not begun):
// the node does not answer for it, and the take-over needs no netlink
// request. Specs prepared before and not given now are dropped.
func (m *Manager) Prepare(specs []Spec) {
	m.prepMu.Lock()
	defer m.prepMu.Unlock()
	want := map[netip.Addr]Spec{}
	for _, s := range specs {
		want[s.IP] = s
	}
	m.mu.Lock()
	for ip, r := range m.prepared {
		if s, ok := want[ip]; !ok || s.Nic != r.spec.Nic || s.Bits != r.spec.Bits {
			delete(m.prepared, ip)
			m.dropPrepared(r)
		}
	}
	m.save()
	m.mu.Unlock()
	for ip, s := range want {
		m.mu.Lock()
		done := m.prepared[ip] != nil || m.held[ip] != nil
		m.mu.Unlock()
		if done {
			continue
		}
		ifi, p, err := resolve(s)
		if err != nil {
			m.logf("vip %s: cannot prepare a take-over: %v", ip, err)
			continue
		}
		ann, err := NewAnnouncer(ifi, ip)
		if err != nil {
			m.logf("vip %s: cannot prepare a take-over: %v", ip, err)
			continue
		}
		r := &held{spec: s, prefix: p, ifi: ifi, ann: ann}
		m.mu.Lock()
		if m.addrs == nil {
			m.addrs, _ = OpenAddresses()
		}
		standby := ip.Is4() && m.Responder && m.attach(ifi) && m.addrs != nil && m.held[ip] == nil &&
			m.resp.AddUntil(ip, ifi.HardwareAddr, 1) == nil // drop ARP and IPv4 for it from now on
		m.mu.Unlock()
		if standby {
			// Outside the lock: it may wait for the RTNL lock.
			if err := m.addrs.Add(ifi.Index, p); err != nil {
				m.logf("vip %s: cannot configure it ahead of a take-over: %v", ip, err)
				standby = false
			}
			if m.afterPrepareAdd != nil {
				m.afterPrepareAdd(ip)
			}
		}
		m.mu.Lock()
		if m.held[ip] != nil || m.prepared[ip] != nil {
			// Started (or prepared) meanwhile: that one stands.
			ann.Close()
		} else {
			r.standby = standby
			m.prepared[ip] = r
			m.save()
		}
		m.mu.Unlock()
	}
}

// unprepare drops the take-over prepared for ip, if any.
func (m *Manager) unprepare(ip netip.Addr) {
	if r := m.prepared[ip]; r != nil {
		delete(m.prepared, ip)
		m.dropPrepared(r)
	}
}

// dropPrepared closes a prepared take-over, and for a standby one takes the
// address off (first: the responder's entry, which keeps the stack from
// answering, goes after it) unless the VIP is held now.
func (m *Manager) dropPrepared(r *held) {
	r.ann.Close()
	if !r.standby || m.held[r.spec.IP] != nil {
		return
	}
	if m.addrs != nil {
		if err := m.addrs.Remove(r.ifi.Index, r.prefix); err != nil {
			m.logf("vip %s: %v", r.spec.IP, err)
			return // keep the entry: the address must not be answered for
		}
	}
	if m.resp != nil {
		m.resp.Remove(r.spec.IP)
	}
}

// answer puts h in the responder, attaching it to h's interface first.
func (m *Manager) answer(h *held) {
	if !m.attach(h.ifi) {
		return
	}
	if err := m.resp.AddUntil(h.spec.IP, h.ifi.HardwareAddr, m.leaseEnd); err != nil {
		m.logf("vip %s: %v", h.spec.IP, err)
		return
	}
	h.gated = true
}

// attach loads the responder and attaches it to ifi, once; it reports
// whether the responder serves ifi.
func (m *Manager) attach(ifi *net.Interface) bool {
	if m.resp == nil && m.respErr == nil {
		m.resp, m.respErr = bpf.LoadARPResponder()
		if m.respErr != nil {
			m.logf("vip: XDP ARP responder not loaded, the stack answers ARP: %v", m.respErr)
		}
	}
	if m.resp == nil {
		return false
	}
	if _, ok := m.attached[ifi.Index]; !ok {
		c, err := m.resp.AttachPersistent(ifi.Index)
		if err != nil {
			m.logf("vip: XDP ARP responder not attached to %s, the stack answers ARP there: %v", ifi.Name, err)
			m.attached[ifi.Index] = nil
		} else {
			m.attached[ifi.Index] = c
		}
	}
	return m.attached[ifi.Index] != nil
}

// Stop releases s; releasing an address not held is not an error. The
// address goes first, the responder's entry after it, so that there is no
// moment when the stack answers for an address whose lease has ended.
func (m *Manager) Stop(s Spec) error {
	m.prepMu.Lock() // not between Prepare's netlink request and its record
	defer m.prepMu.Unlock()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.unprepare(s.IP)
	if h := m.held[s.IP]; h != nil {
		if err := m.release(h); err != nil {
			return err
		}
		return nil
	}
	// Not held by this manager (a restarted daemon, or added by hand):
	// take the address off all the same.
	ifi, p, err := resolve(s)
	if err != nil {
		return nil // no interface holds its subnet: nothing to remove
	}
	if m.addrs == nil {
		if m.addrs, err = OpenAddresses(); err != nil {
			return err
		}
	}
	return m.addrs.Remove(ifi.Index, p)
}

func (m *Manager) release(h *held) error {
	if m.addrs == nil {
		var err error
		if m.addrs, err = OpenAddresses(); err != nil {
			return err
		}
	}
	if err := m.addrs.Remove(h.ifi.Index, h.prefix); err != nil {
		return err
	}
	if m.resp != nil && h.spec.IP.Is4() {
		if err := m.resp.Remove(h.spec.IP); err != nil {
			m.logf("vip %s: %v", h.spec.IP, err)
		}
	}
	h.ann.Close()
	delete(m.held, h.spec.IP)
	m.save()
	return nil
}

// save writes the VIPs held, and those configured ahead of a take-over, to
// StateFile (best effort: a failure is logged).
func (m *Manager) save() {
	if m.StateFile == "" {
		return
	}
	var b strings.Builder
	for _, h := range m.held {
		fmt.Fprintf(&b, "%s %d %s\n", h.spec.IP, h.prefix.Bits(), h.ifi.Name)
	}
	for ip, h := range m.prepared {
		if h.standby && m.held[ip] == nil {
			fmt.Fprintf(&b, "%s %d %s\n", h.spec.IP, h.prefix.Bits(), h.ifi.Name)
		}
	}
	tmp := m.StateFile + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o600); err != nil {
		m.logf("vip: %v", err)
		return
	}
	if err := os.Rename(tmp, m.StateFile); err != nil {
		m.logf("vip: %v", err)
	}
}

// ReleaseStale removes the addresses StateFile lists (held by an earlier
// process that did not release them) and returns them.
func (m *Manager) ReleaseStale() ([]Spec, error) {
	if m.StateFile == "" {
		return nil, nil
	}
	data, err := os.ReadFile(m.StateFile)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Spec
	var errs []error
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var ip, nic string
		var bits int
		if _, err := fmt.Sscanf(line, "%s %d %s", &ip, &bits, &nic); err != nil {
			continue
		}
		a, err := netip.ParseAddr(ip)
		if err != nil {
			continue
		}
		s := Spec{IP: a, Bits: bits, Nic: nic}
		if err := m.Stop(s); err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, s)
	}
	m.mu.Lock()
	m.save()
	m.mu.Unlock()
	return out, errors.Join(errs...)
}

// Running reports whether s's address is on its interface.
func (m *Manager) Running(s Spec) (bool, error) {
	m.mu.Lock()
	h := m.held[s.IP]
	standby := m.prepared[s.IP] != nil && m.prepared[s.IP].standby
	m.mu.Unlock()
	if h == nil && standby {
		return false, nil // configured, but not answered for: not running
	}
	var ifi *net.Interface
	if h != nil {
		ifi = h.ifi
	} else {
		var err error
		if ifi, _, err = resolve(s); err != nil {
			return false, nil
		}
	}
	return addrOn(ifi, s.IP)
}

// addrOn reports whether ip is configured on ifi.
func addrOn(ifi *net.Interface, ip netip.Addr) (bool, error) {
	addrs, err := ifi.Addrs()
	if err != nil {
		return false, err
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok {
			if got, _ := netip.AddrFromSlice(ipn.IP); got.Unmap() == ip {
				return true, nil
			}
		}
	}
	return false, nil
}

// Held lists the addresses held, sorted.
func (m *Manager) Held() []netip.Addr {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]netip.Addr, 0, len(m.held))
	for ip := range m.held {
		out = append(out, ip)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Less(out[j]) })
	return out
}

// SetLease moves the end of the quorum lease (CLOCK_MONOTONIC ns) for
// every VIP held, in the responder: past it, the kernel stops answering
// for them even if this process cannot run.
func (m *Manager) SetLease(end int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.leaseEnd = end
	if m.leaseMoved != nil {
		close(m.leaseMoved)
		m.leaseMoved = nil
	}
	if m.resp == nil {
		return
	}
	for _, h := range m.held {
		if h.spec.IP.Is4() && m.attached[h.ifi.Index] != nil {
			if err := m.resp.AddUntil(h.spec.IP, h.ifi.HardwareAddr, end); err != nil {
				m.logf("vip %s: %v", h.spec.IP, err)
			}
		}
	}
}

// ErrNoLease is Start's refusal when this node's quorum lease has ended.
var ErrNoLease = errors.New("this node's quorum lease has ended: it may not take addresses")

// WaitLease waits until this node holds a quorum lease (or none is
// enforced), or ctx ends (ErrNoLease). A lease that ended is built anew
// from the next grants once the VIPs are released, so a node between two
// leases (its peers' frames were late for a moment, or it has just
// started) holds one again within a few heartbeat intervals: a start
// arriving then waits for it rather than failing, which would ban the
// resource from the node.
func (m *Manager) WaitLease(ctx context.Context) error {
	for {
		m.mu.Lock()
		if m.leaseEnd == 0 || monotonicNow() < m.leaseEnd {
			m.mu.Unlock()
			return nil
		}
		if m.leaseMoved == nil {
			m.leaseMoved = make(chan struct{})
		}
		moved := m.leaseMoved
		m.mu.Unlock()
		select {
		case <-ctx.Done():
			return ErrNoLease
		case <-moved:
		}
	}
}

// ReleaseUngated releases the VIPs held that the kernel would go on
// answering for past the quorum lease's end, and returns their specs: IPv6
// ones (the stack answers their neighbour solicitations; the XDP responder
// handles ARP only) and IPv4 ones the responder does not serve (it could
// not load or attach, or their entry could not be written). The others
// stay configured, unanswered: past the lease end the responder drops ARP
// requests and IPv4 packets for them, so the stack never sees them.
func (m *Manager) ReleaseUngated() []Spec {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Spec
	for _, h := range m.held {
		if h.gated && m.resp != nil && m.attached[h.ifi.Index] != nil {
			continue
		}
		if err := m.release(h); err != nil {
			m.logf("vip %s: release: %v", h.spec.IP, err)
			continue
		}
		out = append(out, h.spec)
	}
	return out
}

// ReleaseAll releases every VIP held (the quorum lease ended) and returns
// their specs.
func (m *Manager) ReleaseAll() []Spec {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Spec
	for _, h := range m.held {
		if err := m.release(h); err != nil {
			m.logf("vip %s: release: %v", h.spec.IP, err)
			continue
		}
		out = append(out, h.spec)
	}
	return out
}

// Close releases nothing (addresses outlive the process, as the CIB says
// they run) but closes sockets, and detaches the responder unless VIPs are
// still held: then it stays, and drops requests for them once their lease
// ends, with no process behind it (as it does when the process dies).
func (m *Manager) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, h := range m.held {
		h.ann.Close()
	}
	for _, h := range m.prepared {
		h.ann.Close()
	}
	for _, c := range m.attached {
		if c != nil && len(m.held) == 0 {
			c.Close()
		}
	}
	if m.resp != nil {
		m.resp.Close()
	}
	if m.addrs != nil {
		m.addrs.Close()
	}
	return nil
}

// monotonicNow reads CLOCK_MONOTONIC in ns, the clock of the lease and of
// bpf_ktime_get_ns.
func monotonicNow() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		panic(err)
	}
	return ts.Nano()
}
