package pe

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/tachy-ha/tachy/cib"
)

// Bundles (pe__unpack_bundle, pcmk_sched_bundle.c). A bundle with
// replicas=N expands into N replicas, each a container primitive
// (BUNDLE-docker-i, ocf:heartbeat:docker, podman or rkt), an optional IP
// address (BUNDLE-ip-ADDR, ocf:heartbeat:IPaddr2, from the network's
// ip-range-start) and, when the bundle wraps a primitive, a connection
// (BUNDLE-i, ocf:pacemaker:remote) making the guest node BUNDLE-i on which
// instance i of the inner clone (BUNDLE-clone, or BUNDLE-master when
// promotable) runs.
//
// The bundle is scheduled as a clone whose instances are its containers
// (placed as clone instances are, replicas-per-host to a node); the IPs,
// connections and the inner clone are resources of their own that belong
// to it (bundleOf), assigned by the bundle after its containers.

type bundleData struct {
	kind, image string // docker, podman or rkt; the image shown
	replicas    []*replica
	promotedMax int
	inner       *Resource // the inner clone, nil without a primitive
}

type replica struct {
	ip, container, remote, child *Resource
	node                         *Node // the guest node BUNDLE-i
	ipaddr                       string
}

// bundleAttr reads an attribute of the bundle's container element.
func bundleAttr(e *cib.XMLElement, name string) (string, bool) {
	if e == nil {
		return "", false
	}
	return e.Attr(name)
}

func bundlePart(b *cib.Bundle, name string) *cib.XMLElement {
	for _, p := range b.Parts {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// unpackBundle is pe__unpack_bundle. It returns the bundle followed by
// the resources that belong to it, in the order Pacemaker unpacks them.
func (ws *workingSet) unpackBundle(b *cib.Bundle, defaults map[string]string, templates map[string]*cib.Template) []*Resource {
	ce := b.Container()
	if ce == nil {
		return nil
	}
	data := &bundleData{kind: ce.Name}
	data.image, _ = ce.Attr("image")
	for _, k := range []string{"promoted-max", "masters"} {
		if v, ok := ce.Attr(k); ok {
			data.promotedMax = laxInt(v)
			break
		}
	}
	n := data.promotedMax
	if n < 1 {
		n = 1
	}
	if v, ok := ce.Attr("replicas"); ok {
		n = laxInt(v)
	}
	perHost := 1
	if v, ok := ce.Attr("replicas-per-host"); ok {
		perHost = laxInt(v)
		if perHost < 1 {
			perHost = 1
		}
	}
	net := bundlePart(b, "network")
	ipStart, _ := bundleAttr(net, "ip-range-start")

	bundle := &Resource{ID: b.ID, Clone: &cib.Clone{ID: b.ID}, bundle: data}
	bundle.Meta = nvsets(b.MetaAttributes, nil, ws.baseCtx())
	ws.setMeta(bundle, defaults)
	bundle.cloneMax, bundle.cloneNodeMax = n, perHost
	// Containers are found by their own ids, never as anonymous
	// instances.
	bundle.unique = true
	bundle.instCount = map[*Node]int{}
	ws.byID[b.ID] = bundle
	ws.cloneList = append(ws.cloneList, bundle)
	if b.Primitive != nil && b.Primitive.Class == "stonith" {
		ws.opts.haveStonithRsc = true
	}

	if b.Primitive != nil {
		data.inner = ws.bundleInnerClone(b, bundle, data, n, perHost, defaults, templates)
	}

	var members []*Resource
	addr, _ := netip.ParseAddr(ipStart)
	for i := 0; i < n; i++ {
		rep := &replica{}
		if ipStart != "" && addr.IsValid() {
			rep.ipaddr = addr.String()
			addr = addr.Next()
			rep.ip = ws.bundleMember(bundle, &cib.Primitive{
				ID: b.ID + "-ip-" + rep.ipaddr, Class: "ocf", Provider: "heartbeat", Type: "IPaddr2",
				Operations: monitorOps(b.ID+"-ip-"+rep.ipaddr, 60*time.Second, "20s"),
			}, defaults)
			members = append(members, rep.ip)
		}
		cid := b.ID + "-" + data.kind + "-" + strconv.Itoa(i)
		rep.container = ws.newPrimitive(&cib.Primitive{
			ID: cid, Class: "ocf", Provider: "heartbeat", Type: data.kind,
			InstanceAttributes: []*cib.NVSet{containerParams(b, rep, i, n, b.Primitive != nil)},
			Operations:         monitorOps(cid, 60*time.Second, "20s"),
		}, cid, bundle, defaults, templates)
		rep.container.bundleOf = bundle
		bundle.Children = append(bundle.Children, rep.container)
		if data.inner != nil && i < len(data.inner.Children) {
			rep.child = data.inner.Children[i]
			// The container carries the inner primitive's
			// utilization; the instance none.
			rep.container.Util, rep.child.Util = rep.child.Util, map[string]int{}
			rep.remote = ws.bundleConnection(bundle, rep, b.ID+"-"+strconv.Itoa(i), defaults)
			members = append(members, rep.remote)
		}
		data.replicas = append(data.replicas, rep)
	}
	out := append([]*Resource{bundle}, members...)
	if data.inner != nil {
		out = append(out, data.inner)
	}
	return out
}

// containerParams are the container's instance attributes
// (create_container) for docker and podman: the image, the run options
// built from the network, port and storage settings, the mount points
// created per replica, the command and a monitor command.
func containerParams(b *cib.Bundle, rep *replica, i, replicas int, hasChild bool) *cib.NVSet {
	ce := b.Container()
	attr := func(e *cib.XMLElement, k string) string { v, _ := bundleAttr(e, k); return v }
	set := &cib.NVSet{ID: b.ID + "-attributes-" + strconv.Itoa(i)}
	add := func(k, v string) {
		set.Pairs = append(set.Pairs, &cib.NVPair{Name: k, Value: v, HasValue: true})
	}
	net := bundlePart(b, "network")
	type mount struct {
		source, target, options string
		subdir                  bool
	}
	type port struct{ source, target string }
	var mounts []mount
	var ports []port
	for _, pm := range childrenNamed(net, "port-mapping") {
		src, tgt := attr(pm, "port"), ""
		if src == "" {
			src = attr(pm, "range")
		} else {
			tgt = attr(pm, "internal-port")
		}
		if src != "" {
			if tgt == "" {
				tgt = src
			}
			ports = append(ports, port{src, tgt})
		}
	}
	needLog := true
	for _, sm := range childrenNamed(bundlePart(b, "storage"), "storage-mapping") {
		m := mount{source: attr(sm, "source-dir"), target: attr(sm, "target-dir"), options: attr(sm, "options")}
		if m.source == "" {
			m.source, m.subdir = attr(sm, "source-dir-root"), true
		}
		if m.source != "" && m.target != "" {
			mounts = append(mounts, m)
			if m.target == "/var/log" {
				needLog = false
			}
		}
	}
	controlPort := attr(net, "control-port")
	if hasChild {
		p := controlPort
		if p == "" {
			p = "3121"
		}
		ports = append(ports, port{p, p})
		mounts = append(mounts, mount{source: "/etc/pacemaker/authkey", target: "/etc/pacemaker/authkey"})
		if needLog {
			mounts = append(mounts, mount{source: "/var/log/pacemaker/bundles", target: "/var/log", subdir: true})
		}
	}
	add("image", attr(ce, "image"))
	add("allow_pull", "true")
	add("force_kill", "false")
	add("reuse", "false")
	var run, points strings.Builder
	if ce.Name == "docker" {
		run.WriteString(" --restart=no")
	}
	if attr(net, "ip-range-start") != "" {
		fmt.Fprintf(&run, " -h %s-%d", b.ID, i)
	}
	run.WriteString(" -e PCMK_stderr=1")
	network := attr(ce, "network")
	if network != "" {
		fmt.Fprintf(&run, " --net=%s", network)
	}
	if controlPort != "" {
		fmt.Fprintf(&run, " -e PCMK_remote_port=%s", controlPort)
	} else {
		run.WriteString(" -e PCMK_remote_port=3121")
	}
	for _, m := range mounts {
		source := m.source
		if m.subdir {
			source = fmt.Sprintf("%s/%s-%d", m.source, b.ID, i)
			if points.Len() > 0 {
				points.WriteString(",")
			}
			points.WriteString(source)
		}
		fmt.Fprintf(&run, " -v %s:%s", source, m.target)
		if m.options != "" {
			fmt.Fprintf(&run, ":%s", m.options)
		}
	}
	for _, p := range ports {
		if rep.ipaddr != "" {
			fmt.Fprintf(&run, " -p %s:%s:%s", rep.ipaddr, p.source, p.target)
		} else if !strings.EqualFold(network, "host") {
			fmt.Fprintf(&run, " -p %s:%s", p.source, p.target)
		}
	}
	if o := attr(ce, "options"); o != "" {
		fmt.Fprintf(&run, " %s", o)
	}
	// The host entries of every replica (allocate_ip), always appended.
	run.WriteString(" ")
	if start := attr(net, "ip-range-start"); start != "" && !strings.EqualFold(attr(net, "add-host"), "false") {
		addr, _ := netip.ParseAddr(start)
		for j := 0; j < replicas && addr.IsValid(); j++ {
			fmt.Fprintf(&run, " --add-host=%s-%d:%s", b.ID, j, addr)
			addr = addr.Next()
		}
	}
	add("run_opts", run.String())
	add("mount_points", points.String())
	cmd := attr(ce, "run-command")
	if hasChild && cmd == "" {
		cmd = "/usr/sbin/pacemaker-remoted"
	}
	if cmd != "" {
		add("run_cmd", cmd)
	}
	add("monitor_cmd", "/bin/true")
	return set
}

func childrenNamed(e *cib.XMLElement, name string) []*cib.XMLElement {
	if e == nil {
		return nil
	}
	var out []*cib.XMLElement
	for _, c := range e.Children {
		if c.Name == name {
			out = append(out, c)
		}
	}
	return out
}

func monitorOps(id string, interval time.Duration, timeout string) *cib.Operations {
	return &cib.Operations{Ops: []*cib.Op{{ID: id + "-monitor-" + strconv.Itoa(int(interval/time.Second)), Name: "monitor", Interval: interval, Timeout: timeout}}}
}

// bundleMember creates a primitive of the bundle that is not one of its
// containers (an IP or a connection): it inherits the bundle's meta
// attributes but is scheduled on its own.
func (ws *workingSet) bundleMember(bundle *Resource, p *cib.Primitive, defaults map[string]string) *Resource {
	r := ws.newPrimitive(p, p.ID, bundle, defaults, nil)
	r.Parent = nil
	r.bundleOf = bundle
	return r
}

// bundleConnection is create_remote_resource: the connection of replica
// rep and its guest node, on which only the replica's inner instance may
// run.
func (ws *workingSet) bundleConnection(bundle *Resource, rep *replica, id string, defaults map[string]string) *Resource {
	ops := monitorOps(id, 30*time.Second, "30s")
	conn := ws.bundleMember(bundle, &cib.Primitive{ID: id, Class: "ocf", Provider: "pacemaker", Type: "remote", Operations: ops}, defaults)
	if _, ok := conn.Meta["allow-migrate"]; !ok {
		conn.Meta["allow-migrate"] = "true"
	}
	conn.container = rep.container
	n := ws.nodeByName[id]
	if n == nil {
		n = ws.newRemoteNode(id)
	}
	n.remoteKind = true
	n.remoteRsc = conn
	n.Attrs["#kind"] = "container"
	conn.remoteNode = n
	rep.node = n
	rep.child.bundleNode = n
	return conn
}

// bundleInnerClone is the clone pe__unpack_bundle wraps the bundle's
// primitive in: one instance per replica, replicas-per-host to a node,
// promotable with promoted-max.
func (ws *workingSet) bundleInnerClone(b *cib.Bundle, bundle *Resource, data *bundleData, n, perHost int, defaults map[string]string, templates map[string]*cib.Template) *Resource {
	suffix := "clone"
	if data.promotedMax > 0 {
		suffix = "master"
	}
	id := b.ID + "-" + suffix
	meta := &cib.NVSet{ID: id + "-meta"}
	add := func(k, v string) {
		meta.Pairs = append(meta.Pairs, &cib.NVPair{Name: k, Value: v, HasValue: true})
	}
	// The clone inherits the bundle's meta attributes.
	for k, v := range nvsets(b.MetaAttributes, nil, ws.baseCtx()) {
		add(k, v)
	}
	add("ordered", "true")
	add("clone-max", strconv.Itoa(n))
	add("clone-node-max", strconv.Itoa(perHost))
	add("globally-unique", strconv.FormatBool(perHost > 1))
	if data.promotedMax > 0 {
		add("promotable", "true")
		add("promoted-max", strconv.Itoa(data.promotedMax))
	}
	c := &cib.Clone{ID: id, MetaAttributes: []*cib.NVSet{meta}, Promotable: data.promotedMax > 0, Child: b.Primitive}
	cl := ws.unpackClone(c, defaults, templates)
	if cl == nil {
		return nil
	}
	cl.bundleOf = bundle
	if cl.unique {
		// History of the bare primitive id matches no unique
		// instance: it is an orphan (unpack_find_resource).
		delete(ws.unsupported, b.Primitive.ID)
	}
	return cl
}

// bundleReplicaChild is pe__find_bundle_replica for an inner clone: the
// instance of the replica whose guest node is n, to which history found
// there belongs.
func (cl *Resource) bundleReplicaChild(n *Node) *Resource {
	for _, inst := range cl.Children {
		if inst.bundleNode == n {
			return inst
		}
	}
	return nil
}

// assignBundle is pcmk__bundle_allocate: the containers are placed as
// clone instances, then each replica's IP, connection and inner instance
// (on its guest node), then the inner clone.
func (ws *workingSet) assignBundle(b *Resource) {
	ws.assignClone(b)
	data := b.bundle
	for _, rep := range data.replicas {
		if rep.ip != nil {
			ws.assign(rep.ip)
		}
		host := rep.container.AssignedTo
		if rep.remote != nil && host != nil && host.isRemote() && host.remoteRsc != nil {
			// Nested connections run where the host's connection does.
			ws.addColocation("child-remote-with-docker-remote", rep.remote, host.remoteRsc, cib.Infinity, "", "", "", "")
		}
		if rep.remote != nil {
			ws.assign(rep.remote)
			ws.connectionAssigned(rep.remote)
		}
		if rep.child != nil {
			w := ws.weightsOf(rep.child)
			for n := range w {
				switch {
				case n != rep.node:
					w[n] = -inf
				case !ws.thresholdReached(rep.child, n):
					w[n] = inf
				}
			}
			inner := rep.child.Parent
			inner.assigning = true
			ws.assign(rep.child)
			inner.assigning = false
		}
	}
	if inner := data.inner; inner != nil {
		w := ws.weightsOf(inner)
		for n := range w {
			if ws.isBundleNode(b, n) {
				w[n] = 0
			} else {
				w[n] = -inf
			}
		}
		ws.assign(inner)
	}
}

func (ws *workingSet) isBundleNode(b *Resource, n *Node) bool {
	for _, rep := range b.bundle.replicas {
		if rep.node == n {
			return true
		}
	}
	return false
}

// bundleNodeWeights: a bundle's guest nodes run nothing but their
// replica's inner instance (create_remote_resource gives the node
// -INFINITY, and the instance only that node).
func (ws *workingSet) bundleNodeWeights() {
	guests := map[*Node]*Resource{}
	for _, b := range ws.resources {
		if b.bundle == nil {
			continue
		}
		for _, rep := range b.bundle.replicas {
			if rep.node != nil {
				guests[rep.node] = rep.child
			}
		}
	}
	if len(guests) == 0 {
		return
	}
	for _, r := range ws.resources {
		rs := append([]*Resource{r}, r.Children...)
		rs = append(rs, r.primitives()...)
		for _, p := range rs {
			w := ws.weightsOf(p)
			for n, child := range guests {
				switch {
				case p == child:
					w = weights{n: 500}
					ws.alloc[p] = w
				case p.bundle != nil || (p.bundleOf != nil && p.isClone()):
					// The inner clone's table is set when it is assigned.
				default:
					if _, ok := w[n]; ok {
						w[n] = -inf
					}
				}
			}
		}
	}
}

// bundleOrderings is the rest of pcmk__bundle_internal_constraints
// (the containers' orderings are the clone's): the inner clone starts and
// stops within the bundle's start and stop, each IP starts before its
// container and stops after it, and stops within the bundle's stop.
func (ws *workingSet) bundleOrderings(b *Resource) {
	data := b.bundle
	bs, brun, bstop, bstopped := b.find("start", nil), b.find("running", nil), b.find("stop", nil), b.find("stopped", nil)
	if inner := data.inner; inner != nil {
		ws.order(bs, inner.find("start", nil), OrderOptional)
		ws.order(bstop, inner.find("stop", nil), OrderOptional)
		ws.order(inner.find("running", nil), brun, OrderOptional)
		ws.order(inner.find("stopped", nil), bstopped, OrderOptional)
	}
	for _, rep := range data.replicas {
		if rep.ip == nil {
			continue
		}
		for _, st := range orderAction(rep.ip, "stop", false) {
			ws.order(bstop, st, OrderOptional)
		}
		for _, is := range orderAction(rep.ip, "start", false) {
			for _, cs := range orderAction(rep.container, "start", false) {
				ws.order(is, cs, OrderRunnableLeft)
			}
		}
		for _, cs := range orderAction(rep.container, "stop", false) {
			for _, is := range orderAction(rep.ip, "stop", false) {
				ws.order(cs, is, OrderImpliesFirst)
			}
		}
	}
}

// bundleColocations: each IP runs with its container.
func (ws *workingSet) bundleColocations() {
	for _, b := range ws.resources {
		if b.bundle == nil {
			continue
		}
		for _, rep := range b.bundle.replicas {
			if rep.ip != nil {
				ws.addColocation("ip-with-docker", rep.ip, rep.container, cib.Infinity, "", "", "", "")
			}
		}
	}
}

// bundlePrimitives lists a bundle's primitives replica by replica (IP,
// container, connection, inner instance), as pcmk__output_bundle_actions
// summarises them.
func (b *Resource) bundlePrimitives() []*Resource {
	var out []*Resource
	for _, rep := range b.bundle.replicas {
		for _, p := range []*Resource{rep.ip, rep.container, rep.remote} {
			if p != nil {
				out = append(out, p)
			}
		}
		if rep.child != nil {
			out = append(out, rep.child.primitives()...)
		}
	}
	return out
}

// thresholdReached is pcmk__threshold_reached: the resource's fail count
// on n has reached its migration-threshold.
func (ws *workingSet) thresholdReached(p *Resource, n *Node) bool {
	if p.Threshold == 0 || p.failureIgnored {
		return false
	}
	fc := ws.failcount(p, n)
	return fc > 0 && p.Threshold-fc <= 0
}

// promotionTarget: role-specific location constraints naming a bundle
// apply to its inner clone (pcmk__bundle_rsc_location).
func promotionTarget(r *Resource) *Resource {
	if r.bundle != nil && r.bundle.inner != nil {
		return r.bundle.inner
	}
	return r
}

// nodeAttributes is pe_node_attribute_calculated: with
// container-attribute-target=host, a guest node's attributes are those
// of the host its container runs on (none while it is inactive).
func nodeAttributes(r *Resource, n *Node) map[string]string {
	if !strings.EqualFold(r.Meta["container-attribute-target"], "host") || !n.isGuest() {
		return n.Attrs
	}
	if c := n.remoteRsc.container; len(c.RunningOn) > 0 {
		return c.RunningOn[0].Attrs
	}
	return nil
}

// writeBundle is pe__bundle_text: a header with the image, then a line
// per replica naming its guest node (or container) and IP, showing the
// inner instance (or the container) where the container runs.
func (r *Result) writeBundle(b *strings.Builder, st statusCtx, rsc *Resource, indent string) {
	data := rsc.bundle
	kind := "Container bundle"
	if len(data.replicas) > 1 {
		kind += " set"
	}
	var flags []string
	if rsc.Clone != nil && data.inner != nil && data.inner.unique {
		flags = append(flags, "unique")
	}
	if st.unmanaged(rsc) {
		flags = append(flags, "unmanaged")
	}
	b.WriteString(indent + "* " + kind + ": " + rsc.ID + " [" + data.image + "]" + flagText(flags) + ":\n")
	for _, rep := range data.replicas {
		shown := rep.container
		if rep.child != nil {
			shown = rep.child
		}
		name := rep.container.ID
		if rep.remote != nil {
			name = rep.remote.ID
		}
		if rep.ipaddr != "" {
			name += " (" + rep.ipaddr + ")"
		}
		var node *Node
		if running := st.running(rep.container); len(running) > 0 {
			node = running[0]
		}
		b.WriteString(indent + "  * " + primitiveLineAs(st, shown, name, node) + "\n")
	}
}
