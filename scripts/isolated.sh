#!/usr/bin/env bash
# Runs a command in a private network and mount namespace, so that a
# namespace lab inside it (lab tests, make demo) does not see or remove
# another lab on the same machine: lab names (tachy-n1, bridges, the
# nftables table, /run/netns, /run/tachy-lab) are global otherwise.
#   scripts/isolated.sh go test -p 1 ./lab/...
# Processes left in the lab's namespaces are killed when the command ends.
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "isolated.sh: run as root (it creates namespaces)" >&2; exit 1; }
[ $# -gt 0 ] || { echo "usage: scripts/isolated.sh COMMAND [ARG...]" >&2; exit 2; }
mkdir -p /run/netns /run/tachy-lab
exec unshare --mount --net --propagation private -- bash -c '
	mount -t tmpfs tmpfs /run/netns
	mount -t tmpfs tmpfs /run/tachy-lab
	mount -t sysfs sysfs /sys  # /sys/class/net must show this namespace
	ip link set lo up
	# What the command leaves running in its namespaces (a lab left up,
	# as make demo does) ends with it: nothing could reach it afterwards.
	cleanup() { for ns in $(ip netns list | cut -d" " -f1); do ip netns pids "$ns" | xargs -r kill -9; done; }
	trap cleanup EXIT
	"$@"' isolated "$@"
