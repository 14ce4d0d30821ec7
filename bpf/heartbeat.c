//go:build ignore

// SPDX-License-Identifier: (MIT OR GPL-2.0)
//
// XDP heartbeat receiver of tachy.
//
// The program recognises tachy heartbeat frames (UDP to the configured port,
// payload as described in heartbeat/frame.go), checks them, records arrival
// time and sequence per (peer, link) in the `peers` map and drops them before
// the network stack sees them. A BPF timer per (peer, link) notices missing
// heartbeats, so user space is woken through the `events` ring buffer only
// when a link changes state.
//
// The rules are exactly those of heartbeat.Detector (the user-space receive
// path); change both together.
//
// Kernel requirements (the appliance runs 6.1): ring buffer (5.8), bpf_timer
// in hash map values (5.15), bpf_spin_lock (5.1), bpf_xdp_load_bytes (5.18).
// No kfuncs, no BPF_F_TIMER_ABS.

#include "tachy.h"

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "SipHash word loads assume a little-endian BPF target (bpfel)"
#endif

struct bpf_spin_lock {
	__u32 val;
};

struct bpf_timer {
	__u64 __opaque[2];
} __attribute__((aligned(8)));

#define BPF_F_MMAPABLE (1U << 10)
#define CLOCK_MONOTONIC 1
#define EBUSY 16

#define ETH_HLEN 14
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define IPPROTO_UDP 17

// Wire format, see heartbeat/frame.go.
#define HB_MAGIC 0x54434859
#define HB_VERSION 1
#define HB_TYPE 1
#define HB_LEN 48
#define HB_MAC_WORDS 5 // bytes 0..39 are authenticated

// Event types, shared with heartbeat.EventType.
#define EV_LINK_UP 1
#define EV_LINK_DOWN 2
#define EV_LINK_RESTART 3

// Link states.
#define ST_UNKNOWN 0
#define ST_UP 1
#define ST_DOWN 2

// Indexes into `stats`. 0..8 are the verdicts of heartbeat.Stats; the rest
// say that the kernel side itself failed and user space should know.
enum {
	STAT_ACCEPTED = 0,
	STAT_BAD_MAC = 1,
	STAT_REPLAY = 2,
	STAT_STALE = 3,
	STAT_UNKNOWN_PEER = 4,
	STAT_WRONG_CLUSTER = 5,
	STAT_MALFORMED = 6,
	STAT_WRONG_LINK = 7,
	STAT_SELF = 8,
	STAT_EVENTS_LOST = 9,  // ring buffer full: a state change was not reported
	STAT_TIMER_ERRORS = 10, // bpf_timer_init/start failed: a link could stay up
	STAT_MAX = 16,
};

struct hb_config {
	__u64 key0;
	__u64 key1;
	__u64 timeout_ns;     // a link is down after this long without a counted frame
	__u64 max_skew_ns;    // 0 disables the freshness check
	__s64 real_offset_ns; // CLOCK_REALTIME - CLOCK_MONOTONIC, refreshed by user space
	__u32 cluster_id;
	__u32 local_node_id;
	__u16 port; // host byte order; 0 means not configured: pass everything
	__u8 pad[6];
};

struct hb_event {
	__u64 ts_ns; // CLOCK_MONOTONIC: arrival (up, restart) or expiry (down)
	__u64 incarnation;
	__u64 seq;
	__u32 node_id;
	__u32 gen; // orders the events of one (node, link)
	__u8 link;
	__u8 type;
	__u8 pad[6];
};

struct peer_key {
	__u32 node_id;
	__u32 link;
};

// Passing &v->timer to a helper is pointer arithmetic into a special field,
// which the verifier refuses without CAP_PERFMON (Spectre v1 hardening: "R8
// pointer arithmetic of map value goes out of range, prohibited for !root",
// 6.1 as well as later): loading needs CAP_PERFMON besides CAP_BPF and
// CAP_NET_ADMIN, as root has. Only one of lock and timer can sit at offset 0.
struct peer_val {
	struct bpf_spin_lock lock;
	__u32 gen;
	__u64 incarnation;
	__u64 seq;
	__u64 last_seen_ns;
	__u64 frames;
	__u8 state;
	__u8 timer_ready;
	__u8 pad[6];
	struct bpf_timer timer;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	// Memory-mapped so that user space can refresh real_offset_ns with a
	// single aligned 8-byte store, never a torn value, without a syscall.
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct hb_config);
} config SEC(".maps");

// A heartbeat interface: which link it carries, and its MAC address.
struct hb_iface {
	__u8 mac[6];
	__u8 has_mac; // 0 for interfaces without an Ethernet address (lo)
	__u8 link;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32); // ifindex
	__type(value, struct hb_iface);
} ifaces SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct peer_key);
	__type(value, struct peer_val);
} peers SEC(".maps");

// The latest arrival (bpf_ktime_get_ns) of a counted frame from each node,
// on any link, indexed by node id (ids 1..HEARD_MAX_ID; larger ids are not
// recorded, the fast path does not run with them). Memory-mapped: the fast
// path's view sender reads it every round, without a system call, to grant
// leases only to the nodes heard within its grant window.
#define HEARD_MAX_ID 64

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, HEARD_MAX_ID + 1);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, __u64);
} heard SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

static __always_inline void count(__u32 idx)
{
	__u64 *c = bpf_map_lookup_elem(&stats, &idx);
	if (c)
		*c += 1; // per-CPU counter: no atomic needed
}

// Not inlined: as a function of its own, emit keeps struct hb_event in the
// BTF (its argument type), which is where bpf2go finds it.
// It returns int because a subprogram should set R0 on every kernel version.
static __attribute__((noinline)) int emit(struct hb_event *ev)
{
	if (bpf_ringbuf_output(&events, ev, sizeof(*ev), 0))
		count(STAT_EVENTS_LOST);
	return 0;
}

#define ROTL(x, b) (__u64)(((x) << (b)) | ((x) >> (64 - (b))))

#define SIPROUND                                                               \
	do {                                                                   \
		v0 += v1;                                                      \
		v1 = ROTL(v1, 13);                                             \
		v1 ^= v0;                                                      \
		v0 = ROTL(v0, 32);                                             \
		v2 += v3;                                                      \
		v3 = ROTL(v3, 16);                                             \
		v3 ^= v2;                                                      \
		v0 += v3;                                                      \
		v3 = ROTL(v3, 21);                                             \
		v3 ^= v0;                                                      \
		v2 += v1;                                                      \
		v1 = ROTL(v1, 17);                                             \
		v1 ^= v2;                                                      \
		v2 = ROTL(v2, 32);                                             \
	} while (0)

// SipHash-2-4 of a 40-byte message given as 5 little-endian words, as
// heartbeat/siphash.go computes it. Straight-line code: no loop for the
// verifier to bound.
static __always_inline __u64 siphash24_40(__u64 k0, __u64 k1, const __u64 *m)
{
	__u64 v0 = k0 ^ 0x736f6d6570736575ULL;
	__u64 v1 = k1 ^ 0x646f72616e646f6dULL;
	__u64 v2 = k0 ^ 0x6c7967656e657261ULL;
	__u64 v3 = k1 ^ 0x7465646279746573ULL;
	__u64 b;

#pragma unroll
	for (int i = 0; i < HB_MAC_WORDS; i++) {
		v3 ^= m[i];
		SIPROUND;
		SIPROUND;
		v0 ^= m[i];
	}
	b = (__u64)(HB_MAC_WORDS * 8) << 56; // length byte, no tail bytes
	v3 ^= b;
	SIPROUND;
	SIPROUND;
	v0 ^= b;
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

// Called when a link's deadline may have passed. It does not trust that the
// deadline has passed: frames move last_seen_ns without re-arming the timer
// (re-arming on every frame would cost an hrtimer operation per heartbeat),
// so the callback re-arms itself for the remaining time instead.
static int hb_expire(void *map, struct peer_key *key, struct peer_val *cbv)
{
	__u32 zero = 0;
	struct hb_config *cfg = bpf_map_lookup_elem(&config, &zero);
	struct hb_event ev = {};
	struct peer_val *v;
	__u64 now, timeout, rearm = 0;
	int down = 0;

	if (!cfg)
		return 0;
	// Look the element up again instead of locking cbv: the 6.1 verifier
	// tracks a spin lock by the register's id, which the callback's value
	// argument lacks ("bpf_spin_unlock without taking a lock"); fixed in
	// 6.2. The cost is one hash lookup per timer expiry.
	v = bpf_map_lookup_elem(&peers, key);
	if (!v)
		return 0; // deleted meanwhile; its timer is cancelled
	timeout = cfg->timeout_ns;
	now = bpf_ktime_get_ns();

	bpf_spin_lock(&v->lock);
	if (v->state == ST_UP) {
		// Signed: a frame on another CPU may have stored a later time
		// than the `now` read above.
		__s64 idle = (__s64)(now - v->last_seen_ns);
		if (idle >= (__s64)timeout) {
			v->state = ST_DOWN;
			v->gen++;
			ev.gen = v->gen;
			ev.incarnation = v->incarnation;
			ev.seq = v->seq;
			down = 1;
		} else {
			rearm = (__u64)((__s64)timeout - idle);
		}
	}
	bpf_spin_unlock(&v->lock);

	if (down) {
		ev.ts_ns = now;
		ev.node_id = key->node_id;
		ev.link = (__u8)key->link;
		ev.type = EV_LINK_DOWN;
		emit(&ev);
	} else if (rearm) {
		if (bpf_timer_start(&v->timer, rearm, 0))
			count(STAT_TIMER_ERRORS);
	}
	return 0;
}

// Starts the link's deadline when the link comes up. The timer is
// initialised on first use only; a concurrent initialisation elsewhere
// returns -EBUSY, which is fine.
static __always_inline void arm_timer(struct peer_val *v, __u64 timeout)
{
	if (!v->timer_ready) {
		long err = bpf_timer_init(&v->timer, &peers, CLOCK_MONOTONIC);
		if (err && err != -EBUSY) {
			count(STAT_TIMER_ERRORS);
			return;
		}
		if (bpf_timer_set_callback(&v->timer, hb_expire)) {
			count(STAT_TIMER_ERRORS);
			return;
		}
		v->timer_ready = 1;
	}
	if (bpf_timer_start(&v->timer, timeout, 0))
		count(STAT_TIMER_ERRORS);
}

// The frame, copied out of the packet into aligned stack memory so that the
// SipHash words are plain 8-byte loads whatever the packet's alignment.
union hb_frame {
	__u64 w[HB_LEN / 8];
	__u32 d[HB_LEN / 4];
	__u8 b[HB_LEN];
};

SEC("xdp")
int xdp_heartbeat(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u32 zero = 0;
	struct hb_config *cfg;
	__u8 *p = data;
	__u8 *l4;
	__u16 proto, udp_len;
	__u32 ifindex;
	struct hb_iface *ifc;
	__u32 off;
	union hb_frame f;

	cfg = bpf_map_lookup_elem(&config, &zero);
	if (!cfg || cfg->port == 0)
		return XDP_PASS;

	if (p + ETH_HLEN > (__u8 *)end)
		return XDP_PASS;
	ifindex = ctx->ingress_ifindex;
	ifc = bpf_map_lookup_elem(&ifaces, &ifindex);
	// A switch floods a unicast frame whose destination it has not learnt
	// (after a port went down, say) to every port. One addressed to another
	// node's MAC is not ours: the stack would drop it as PACKET_OTHERHOST,
	// and counted here it would pass for a replay of the sender's frame to us.
	if (ifc && ifc->has_mac && !(p[0] & 1) &&
	    (p[0] != ifc->mac[0] || p[1] != ifc->mac[1] || p[2] != ifc->mac[2] ||
	     p[3] != ifc->mac[3] || p[4] != ifc->mac[4] || p[5] != ifc->mac[5]))
		return XDP_PASS;
	proto = ((__u16)p[12] << 8) | p[13];

	if (proto == ETH_P_IP) {
		__u8 *ip = p + ETH_HLEN;
		__u32 ihl;
		if (ip + 20 > (__u8 *)end)
			return XDP_PASS;
		if ((ip[0] >> 4) != 4)
			return XDP_PASS;
		ihl = (__u32)(ip[0] & 0x0f) * 4;
		if (ihl < 20)
			return XDP_PASS;
		// A non-first fragment carries no UDP header, and a first
		// fragment not the whole datagram: leave both to the stack.
		if ((((__u16)ip[6] << 8) | ip[7]) & 0x3fff)
			return XDP_PASS;
		if (ip[9] != IPPROTO_UDP)
			return XDP_PASS;
		l4 = ip + ihl;
	} else if (proto == ETH_P_IPV6) {
		__u8 *ip6 = p + ETH_HLEN;
		if (ip6 + 40 > (__u8 *)end)
			return XDP_PASS;
		if ((ip6[0] >> 4) != 6)
			return XDP_PASS;
		if (ip6[6] != IPPROTO_UDP) // no extension headers
			return XDP_PASS;
		l4 = ip6 + 40;
	} else {
		return XDP_PASS;
	}

	if (l4 + 8 > (__u8 *)end)
		return XDP_PASS;
	if ((((__u16)l4[2] << 8) | l4[3]) != cfg->port)
		return XDP_PASS;
	udp_len = ((__u16)l4[4] << 8) | l4[5];
	if (udp_len < 8 + 4)
		return XDP_PASS; // too short to carry the magic: not ours
	off = (__u32)(l4 + 8 - (__u8 *)data);
	if (bpf_xdp_load_bytes(ctx, off, &f, 4))
		return XDP_PASS;
	if (bpf_ntohl(f.d[0]) != HB_MAGIC)
		return XDP_PASS;

	// From here on the frame is ours: it is dropped, and counted once.
	if (udp_len < 8 + HB_LEN || bpf_xdp_load_bytes(ctx, off, &f, HB_LEN) ||
	    f.b[4] != HB_VERSION || f.b[5] != HB_TYPE || f.b[7] != 0) {
		count(STAT_MALFORMED);
		return XDP_DROP;
	}
	if (siphash24_40(cfg->key0, cfg->key1, f.w) != f.w[5]) {
		count(STAT_BAD_MAC);
		return XDP_DROP;
	}

	__u8 link = f.b[6];
	__u32 cluster = bpf_ntohl(f.d[2]);
	__u32 node = bpf_ntohl(f.d[3]);
	__u64 inc = bpf_be64_to_cpu(f.w[2]);
	__u64 seq = bpf_be64_to_cpu(f.w[3]);
	__s64 sent = (__s64)bpf_be64_to_cpu(f.w[4]);

	if (cluster != cfg->cluster_id) {
		count(STAT_WRONG_CLUSTER);
		return XDP_DROP;
	}
	if (node == cfg->local_node_id) {
		count(STAT_SELF);
		return XDP_DROP;
	}
	if (!ifc || ifc->link != link) {
		count(STAT_WRONG_LINK);
		return XDP_DROP;
	}
	struct peer_key key = {.node_id = node, .link = link};
	struct peer_val *v = bpf_map_lookup_elem(&peers, &key);
	if (!v) {
		count(STAT_UNKNOWN_PEER);
		return XDP_DROP;
	}

	__u64 now = bpf_ktime_get_ns();
	__s64 skew = (__s64)cfg->max_skew_ns;
	if (skew != 0) {
		__s64 diff = sent - ((__s64)now + cfg->real_offset_ns);
		if (diff > skew || diff < -skew) {
			count(STAT_STALE);
			return XDP_DROP;
		}
	}

	struct hb_event ev = {};
	int fresh = 0;
	__u8 type = 0;

	bpf_spin_lock(&v->lock);
	if (inc > v->incarnation || (inc == v->incarnation && seq > v->seq)) {
		// Same rule as heartbeat.Detector: a restart is a higher
		// incarnation than a non-zero one seen before.
		int restarted = inc > v->incarnation && v->incarnation != 0;
		fresh = 1;
		v->incarnation = inc;
		v->seq = seq;
		// Never move backwards: another CPU may have stored a later
		// arrival while this one waited for the lock.
		if ((__s64)(now - v->last_seen_ns) > 0)
			v->last_seen_ns = now;
		v->frames++;
		if (v->state != ST_UP) {
			v->state = ST_UP;
			type = EV_LINK_UP;
		} else if (restarted) {
			type = EV_LINK_RESTART;
		}
		if (type) {
			v->gen++;
			ev.gen = v->gen;
		}
	}
	bpf_spin_unlock(&v->lock);

	if (!fresh) {
		count(STAT_REPLAY);
		return XDP_DROP;
	}
	count(STAT_ACCEPTED);
	if (node <= HEARD_MAX_ID) {
		// Not under a lock (the spin lock is per link): two CPUs storing
		// frames of two links at once may leave the earlier of two
		// arrivals microseconds apart, which the grant window (whole
		// heartbeat intervals) does not notice.
		__u32 hk = node;
		__u64 *h = bpf_map_lookup_elem(&heard, &hk);
		if (h && (__s64)(now - *h) > 0)
			*(volatile __u64 *)h = now;
	}
	if (type) {
		ev.ts_ns = now;
		ev.incarnation = inc;
		ev.seq = seq;
		ev.node_id = node;
		ev.link = link;
		ev.type = type;
		emit(&ev);
		if (type == EV_LINK_UP)
			arm_timer(v, cfg->timeout_ns);
	}
	return XDP_DROP;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
