package lab

// The network: bridges, namespaces and veth pairs, made with iproute2 in a
// few `ip -batch` runs (one per namespace) rather than one command per step.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ipBatch runs `ip [-n ns] -batch -` with the given command lines.
func ipBatch(ctx context.Context, ns string, lines []string) error {
	args := []string{"-batch", "-"}
	if ns != "" {
		args = append([]string{"-n", ns}, args...)
	}
	cmd := exec.CommandContext(ctx, "ip", args...)
	cmd.Stdin = strings.NewReader(strings.Join(lines, "\n") + "\n")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		where := "root namespace"
		if ns != "" {
			where = "namespace " + ns
		}
		return fmt.Errorf("ip -batch in the %s: %v: %s", where, err, strings.TrimSpace(out.String()))
	}
	return nil
}

func run(ctx context.Context, name string, args ...string) error {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// buildNetwork makes the bridges, the node and client namespaces and their
// veth pairs, addresses and routes.
func buildNetwork(ctx context.Context, nodes int) error {
	// 1. Bridges, namespaces and veth pairs, all down.
	var root []string
	for link, br := range Bridges {
		root = append(root, fmt.Sprintf("link add %s address %s type bridge forward_delay 0 stp_state 0 mcast_snooping 0", br, bridgeMAC(link)))
	}
	type port struct {
		i, link int
	}
	var ports []port
	for i := 0; i <= nodes; i++ { // 0 is the client
		root = append(root, "netns add "+nsName(i))
		for link := range numLinks {
			if i == 0 && link != Service {
				continue
			}
			ports = append(ports, port{i, link})
			root = append(root, fmt.Sprintf("link add %s address %s type veth peer name %s address %s netns %s",
				hostIface(i, link), mac(i, link, true), nodeIfaces[link], mac(i, link, false), nsName(i)))
		}
	}
	if err := ipBatch(ctx, "", root); err != nil {
		return err
	}
	// 2. No IPv6 on the bridges and ports: the root namespace takes no part
	// in the lab's traffic, and sends no router solicitations or MLD into it.
	for _, br := range Bridges {
		writeSysctl("net/ipv6/conf/"+br+"/disable_ipv6", "1")
	}
	for _, p := range ports {
		writeSysctl("net/ipv6/conf/"+hostIface(p.i, p.link)+"/disable_ipv6", "1")
	}
	// 3. Ports into their bridges, everything up.
	root = root[:0]
	for _, br := range Bridges {
		root = append(root, "link set "+br+" up")
	}
	for _, p := range ports {
		root = append(root, fmt.Sprintf("link set %s master %s up", hostIface(p.i, p.link), Bridges[p.link]))
	}
	if err := ipBatch(ctx, "", root); err != nil {
		return err
	}
	// 4. Inside each namespace: no forwarding, no DAD, addresses, links up.
	errs := make(chan error, nodes+1)
	for i := 0; i <= nodes; i++ {
		go func() {
			ns := nsName(i)
			if err := inNamespace(ns, func() error {
				for _, kv := range [][2]string{
					{"net/ipv4/ip_forward", "0"},
					{"net/ipv6/conf/all/forwarding", "0"},
					{"net/ipv6/conf/all/accept_dad", "0"},
					{"net/ipv6/conf/default/accept_dad", "0"},
				} {
					if err := writeSysctl(kv[0], kv[1]); err != nil {
						return err
					}
				}
				// The interfaces came in before "default" changed.
				for link := range numLinks {
					if i != 0 || link == Service {
						if err := writeSysctl("net/ipv6/conf/"+nodeIfaces[link]+"/accept_dad", "0"); err != nil {
							return err
						}
					}
				}
				return nil
			}); err != nil {
				errs <- fmt.Errorf("namespace %s: %w", ns, err)
				return
			}
			lines := []string{"link set lo up"}
			for link := range numLinks {
				if i == 0 && link != Service {
					continue
				}
				ifc := nodeIfaces[link]
				lines = append(lines, fmt.Sprintf("addr add %s/24 dev %s", addr4(i, link), ifc))
				if link == Service {
					lines = append(lines, fmt.Sprintf("addr add %s/64 dev %s nodad", addr6(i), ifc))
				}
				lines = append(lines, "link set "+ifc+" up")
			}
			errs <- ipBatch(ctx, ns, lines)
		}()
	}
	var all []error
	for i := 0; i <= nodes; i++ {
		all = append(all, <-errs)
	}
	return errors.Join(all...)
}

// writeSysctl writes /proc/sys/KEY in the calling thread's network
// namespace.
func writeSysctl(key, val string) error {
	return os.WriteFile("/proc/sys/"+key, []byte(val), 0o644)
}

// inNamespace runs fn on an OS thread that has joined the named network
// namespace, and then moves the thread back. If it cannot, the thread stays
// locked to its goroutine, which exits: the runtime then ends the thread
// (or, for the main thread, never uses it again), so no other goroutine
// runs in the wrong namespace.
func inNamespace(ns string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		self, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer self.Close()
		f, err := os.Open(filepath.Join("/run/netns", ns))
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("namespace %s: %w", ns, err)
			return
		}
		err = unix.Setns(int(f.Fd()), unix.CLONE_NEWNET)
		f.Close()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("entering namespace %s: %w", ns, err)
			return
		}
		err = fn()
		if unix.Setns(int(self.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	return <-errc
}

// labNamespaces lists the existing namespaces that belong to a lab:
// tachy-nN and tachy-client.
func labNamespaces() ([]string, error) {
	ents, err := os.ReadDir("/run/netns")
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if isLabNamespace(e.Name()) {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

func isLabNamespace(name string) bool {
	if name == ClientNamespace {
		return true
	}
	if !strings.HasPrefix(name, nsPrefix) {
		return false
	}
	_, err := strconv.Atoi(name[len(nsPrefix):])
	return err == nil
}

// labHostLinks lists the root namespace's interfaces that belong to a lab:
// the bridges and the host-side ports.
func labHostLinks() ([]string, error) {
	ents, err := os.ReadDir("/sys/class/net")
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if isLabLink(e.Name()) {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

func isLabLink(name string) bool {
	for _, br := range Bridges {
		if name == br {
			return true
		}
	}
	if name == clientHostIface {
		return true
	}
	if !strings.HasPrefix(name, "tn") {
		return false
	}
	for _, s := range hostSuffix {
		if n, ok := strings.CutSuffix(name[2:], s); ok {
			if _, err := strconv.Atoi(n); err == nil {
				return true
			}
		}
	}
	return false
}

// deleteNetwork removes the host-side ports (which removes their peers in
// the namespaces at once), the bridges and the namespaces.
func deleteNetwork(nss []string) error {
	ctx := context.Background()
	var errs []error
	links, err := labHostLinks()
	if err != nil {
		errs = append(errs, err)
	}
	var lines []string
	for _, l := range links {
		lines = append(lines, "link del "+l)
	}
	for _, ns := range nss {
		lines = append(lines, "netns del "+ns)
	}
	if len(lines) > 0 {
		// -force goes on past a failed line; the checks below say what is left.
		cmd := exec.CommandContext(ctx, "ip", "-force", "-batch", "-")
		cmd.Stdin = strings.NewReader(strings.Join(lines, "\n") + "\n")
		out, err := cmd.CombinedOutput()
		if err != nil {
			errs = append(errs, fmt.Errorf("ip -batch: %v: %s", err, strings.TrimSpace(string(out))))
		}
	}
	if left, _ := labHostLinks(); len(left) > 0 {
		errs = append(errs, fmt.Errorf("lab interfaces still exist after deleting them: %s", strings.Join(left, " ")))
	}
	if left, _ := labNamespaces(); len(left) > 0 {
		errs = append(errs, fmt.Errorf("lab namespaces still exist after deleting them: %s", strings.Join(left, " ")))
	}
	return errors.Join(errs...)
}

// setLinks sets the host-side ports of node i on the given links up or
// down.
func setLinks(i int, links []int, up bool) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	for _, link := range links {
		name := hostIface(i, link)
		ifr, err := unix.NewIfreq(name)
		if err != nil {
			return err
		}
		if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		flags := ifr.Uint16()
		if up {
			flags |= unix.IFF_UP
		} else {
			flags &^= unix.IFF_UP
		}
		ifr.SetUint16(flags)
		if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
			return fmt.Errorf("setting %s %s: %w", name, map[bool]string{true: "up", false: "down"}[up], err)
		}
	}
	return nil
}

// linkUp reports whether a root-namespace interface is administratively
// up; ok is false when it does not exist.
func linkUp(name string) (up, ok bool) {
	b, err := os.ReadFile("/sys/class/net/" + name + "/flags")
	if err != nil {
		return false, false
	}
	v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 0, 32)
	if err != nil {
		return false, false
	}
	return v&unix.IFF_UP != 0, true
}

// links checks a list of links given to CutLinks or RestoreLinks; none
// means all of the node's links.
func (l *Lab) links(node string, links []int) (int, []int, error) {
	i, err := l.nodeIndex(node)
	if err != nil {
		return 0, nil, err
	}
	if len(links) == 0 {
		if i == 0 {
			return 0, []int{Service}, nil
		}
		return i, []int{Ring0, Ring1, Service}, nil
	}
	for _, link := range links {
		if link < 0 || link >= numLinks {
			return 0, nil, fmt.Errorf("link %d: links are 0 (ring0), 1 (ring1) and 2 (svc)", link)
		}
		if i == 0 && link != Service {
			return 0, nil, fmt.Errorf("link %d: the client has only link 2 (svc)", link)
		}
	}
	return i, links, nil
}

// CutLinks sets the host-side ports of node's links down, as if their
// cables were pulled: the node's interfaces lose carrier and nothing passes
// in either direction. Links are Ring0 (0), Ring1 (1) and Service (2); no
// links means all of them.
func (l *Lab) CutLinks(node string, links ...int) error {
	i, links, err := l.links(node, links)
	if err != nil {
		return err
	}
	return setLinks(i, links, false)
}

// RestoreLinks sets the host-side ports of node's links up again (all of
// them if none are given).
func (l *Lab) RestoreLinks(node string, links ...int) error {
	i, links, err := l.links(node, links)
	if err != nil {
		return err
	}
	return setLinks(i, links, true)
}
