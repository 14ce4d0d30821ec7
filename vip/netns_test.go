package vip

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tachy-ha/tachy/internal/netnstest"
)

// The VIP is added to hb0 in this test's own network namespace; its peer
// hb1 sits in a second namespace, the "neighbour", whose kernel must take
// the announcements: it holds a stale entry for the VIP pointing at another
// MAC, and only a well-formed announcement (right layout, checksum, hop
// limit, override flag) makes it point at hb0.
func TestTakeoverInNamespaces(t *testing.T) {
	netnstest.Enter(t)
	peer := fmt.Sprintf("tachy-viptest-%d", os.Getpid())
	run := func(args ...string) string { t.Helper(); return netnstest.Run(t, args...) }
	run("ip", "netns", "add", peer)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", peer).Run() })
	run("ip", "link", "add", "hb0", "type", "veth", "peer", "name", "hb1")
	run("ip", "link", "set", "hb1", "netns", peer)
	run("ip", "addr", "add", "10.99.0.1/24", "dev", "hb0")
	run("ip", "link", "set", "hb0", "up")
	in := func(args ...string) string { return run(append([]string{"ip", "netns", "exec", peer}, args...)...) }
	in("ip", "addr", "add", "10.99.0.2/24", "dev", "hb1")
	in("ip", "addr", "add", "fd99::2/64", "dev", "hb1", "nodad")
	in("ip", "link", "set", "hb1", "up")
	// An entry refreshed less than locktime ago ignores ARP; the test sets
	// its stale entry just before announcing.
	in("sysctl", "-qw", "net.ipv4.neigh.hb1.locktime=0")

	hb0, err := net.InterfaceByName("hb0")
	if err != nil {
		t.Fatal(err)
	}
	addrs, err := OpenAddresses()
	if err != nil {
		t.Fatal(err)
	}
	defer addrs.Close()

	for _, vip := range []netip.Prefix{netip.MustParsePrefix("10.99.0.100/24"), netip.MustParsePrefix("fd99::100/64")} {
		// No t.Run: a subtest runs on another goroutine, outside this
		// thread's namespace.
		func() {
			ip := vip.Addr()
			// Adding is idempotent, and an IPv6 VIP is usable at once.
			for range 2 {
				if err := addrs.Add(hb0.Index, vip); err != nil {
					t.Fatal(err)
				}
			}
			if !hasAddr(t, "hb0", ip) {
				t.Fatalf("%s not on hb0 after Add", vip)
			}
			if err := bindTo(ip); err != nil {
				t.Fatalf("bind to the VIP right after Add: %v (tentative?)", err)
			}

			family := "-4"
			if ip.Is6() {
				family = "-6"
			}
			in("ip", family, "neigh", "replace", ip.String(), "lladdr", "02:00:00:00:00:99", "dev", "hb1", "nud", "stale")
			a, err := NewAnnouncer(hb0, ip)
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			want := hb0.HardwareAddr.String()
			var got string
			for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
				if err := a.Announce(); err != nil {
					t.Fatal(err)
				}
				got = in("ip", family, "neigh", "show", ip.String(), "dev", "hb1")
				if strings.Contains(got, want) {
					break
				}
			}
			if !strings.Contains(got, want) {
				t.Fatalf("the neighbour's entry for %s is %q after announcing; want lladdr %s", ip, strings.TrimSpace(got), want)
			}

			// Removing is idempotent too.
			for range 2 {
				if err := addrs.Remove(hb0.Index, vip); err != nil {
					t.Fatal(err)
				}
			}
			if hasAddr(t, "hb0", ip) {
				t.Fatalf("%s still on hb0 after Remove", vip)
			}
		}()
	}

	if err := addrs.Add(hb0.Index, netip.Prefix{}); err == nil {
		t.Error("Add of an invalid prefix succeeded")
	}
	if err := addrs.Add(9999, netip.MustParsePrefix("10.99.0.200/24")); err == nil || !strings.Contains(err.Error(), "interface 9999") {
		t.Errorf("Add on a missing interface: %v", err)
	}
}

func hasAddr(t *testing.T, ifname string, ip netip.Addr) bool {
	t.Helper()
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		t.Fatal(err)
	}
	as, err := ifi.Addrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range as {
		if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr() == ip {
			return true
		}
	}
	return false
}

func bindTo(ip netip.Addr) error {
	var (
		domain = unix.AF_INET6
		sa     unix.Sockaddr
	)
	if ip.Is4() {
		domain, sa = unix.AF_INET, &unix.SockaddrInet4{Addr: ip.As4()}
	} else {
		sa = &unix.SockaddrInet6{Addr: ip.As16()}
	}
	fd, err := unix.Socket(domain, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Bind(fd, sa)
}
