//go:build ignore

// SPDX-License-Identifier: (MIT OR GPL-2.0)
//
// XDP ARP responder of tachy's floating IPs.
//
// For every IPv4 address in the `vips` map, the program answers ARP requests
// itself, in the driver, with the MAC the map names, and sends the reply back
// out of the interface it came in on (XDP_TX). Taking over a VIP is then one
// map update: no address has to be configured before the node answers for
// it, and releasing it is one map delete. Everything else passes to the
// stack untouched, except IPv4 packets to a VIP whose lease has ended.
//
// Kernel requirements: XDP with XDP_TX (4.8). On veth, XDP_TX in native mode
// needs NAPI on the peer: attach in generic mode there (the lab does).

#include "tachy.h"

// The MAC to answer with for one VIP, and the end of the holder's quorum
// lease (CLOCK_MONOTONIC ns; 0: no lease, answer always). Past the lease the
// program drops requests for the VIP instead of answering them or passing
// them on: a paused or cut-off holder whose user space cannot run any more
// stops answering on time, and neither does its stack (the address may still
// be configured), so the node that takes the VIP over is the only one heard.
struct arp_vip {
	__u8 mac[6];
	__u16 pad;
	__u64 expires_ns;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32); // the VIP, in network byte order
	__type(value, struct arp_vip);
} vips SEC(".maps");

// Indexes into `arp_stats`.
enum {
	ARP_REPLIED = 0,  // requests for a VIP, answered
	ARP_ANNOUNCE = 1, // announcements (sender = target) for a VIP: passed on
	ARP_EXPIRED = 2,  // requests for a VIP whose lease ended: dropped
	IP_EXPIRED = 3,   // IPv4 packets to a VIP whose lease ended: dropped
	ARP_NUM_STATS = 4,
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, ARP_NUM_STATS);
	__type(key, __u32);
	__type(value, __u64);
} arp_stats SEC(".maps");

static __always_inline void count(__u32 idx)
{
	__u64 *c = bpf_map_lookup_elem(&arp_stats, &idx);
	if (c)
		*c += 1;
}

#define ETH_HLEN 14
#define ARP_LEN 28

SEC("xdp")
int xdp_arp_responder(struct xdp_md *ctx)
{
	__u8 *p = (void *)(long)ctx->data;
	__u8 *end = (void *)(long)ctx->data_end;
	__u8 *a = p + ETH_HLEN;
	__u8 req_mac[6];
	__u32 sip, tip;
	struct arp_vip *v;

	// IPv4 to a VIP of the map whose lease has ended (or a take-over made
	// ready ahead: the address is configured, the lease not begun): the
	// stack must not take it, so that a node that is not the holder never
	// serves the VIP, whatever a client's stale ARP entry says.
	if (p + ETH_HLEN + 20 <= end && p[12] == 0x08 && p[13] == 0x00) {
		__u32 dip;

		__builtin_memcpy(&dip, p + ETH_HLEN + 16, 4);
		v = bpf_map_lookup_elem(&vips, &dip);
		if (v && v->expires_ns && bpf_ktime_get_ns() >= v->expires_ns) {
			count(IP_EXPIRED);
			return XDP_DROP;
		}
		return XDP_PASS;
	}
	if (a + ARP_LEN > end)
		return XDP_PASS;
	if (p[12] != 0x08 || p[13] != 0x06)
		return XDP_PASS;
	// Ethernet/IPv4, 6-byte and 4-byte addresses, a request.
	if (a[0] != 0 || a[1] != 1 || a[2] != 0x08 || a[3] != 0 || a[4] != 6 || a[5] != 4 ||
	    a[6] != 0 || a[7] != 1)
		return XDP_PASS;
	__builtin_memcpy(&sip, a + 14, 4);
	__builtin_memcpy(&tip, a + 24, 4);
	v = bpf_map_lookup_elem(&vips, &tip);
	if (!v)
		return XDP_PASS;
	if (v->expires_ns && bpf_ktime_get_ns() >= v->expires_ns) {
		count(ARP_EXPIRED);
		return XDP_DROP;
	}
	if (sip == tip) {
		// Another node announcing the VIP: not a question. The stack and
		// the dual-ownership checks want to see it.
		count(ARP_ANNOUNCE);
		return XDP_PASS;
	}

	// Turn the request into the reply in place: to the asker, from the VIP.
	__builtin_memcpy(req_mac, a + 8, 6);
	__builtin_memcpy(p, req_mac, 6);
	__builtin_memcpy(p + 6, v->mac, 6);
	a[7] = 2;
	__builtin_memcpy(a + 18, req_mac, 6);
	__builtin_memcpy(a + 24, &sip, 4);
	__builtin_memcpy(a + 8, v->mac, 6);
	__builtin_memcpy(a + 14, &tip, 4);
	count(ARP_REPLIED);
	return XDP_TX;
}

char __license[] SEC("license") = "Dual MIT/GPL";
