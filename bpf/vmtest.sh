#!/bin/bash
# Runs the bpf tests on Debian bookworm's Linux 6.1, the appliance kernel, in
# a throwaway QEMU VM whose init is the test binary itself (vm_test.go). The
# verifier of 6.1 is stricter than the one of the kernel this runs on; this is
# how to find out before the appliance does. Needs root, apt-get (for
# qemu-system-x86, cpio and the kernel package) and about 20 s without KVM.
#
#   bpf/vmtest.sh [go test flags, e.g. -test.run=TestAttachVeth]
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
if ! command -v qemu-system-x86_64 >/dev/null || ! command -v cpio >/dev/null; then
	apt-get update -qq && apt-get install -y -qq --no-install-recommends qemu-system-x86 cpio >/dev/null
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The newest 6.1 cloud kernel the archive has (small, with BTF, veth as module).
pkg=$(apt-cache search --names-only '^linux-image-6\.1\.0-[0-9]+-cloud-amd64-unsigned$' | cut -d' ' -f1 | sort -V | tail -1)
if [ -z "$pkg" ]; then
	apt-get update -qq
	pkg=$(apt-cache search --names-only '^linux-image-6\.1\.0-[0-9]+-cloud-amd64-unsigned$' | cut -d' ' -f1 | sort -V | tail -1)
fi
[ -n "$pkg" ] || { echo "vmtest: no linux-image-6.1 package in the apt sources" >&2; exit 1; }
(cd "$work" && apt-get download -qq "$pkg" 2>/dev/null && dpkg-deb -x ./*.deb k)
vmlinuz=$(ls "$work"/k/boot/vmlinuz-*)
root="$work/root"
mkdir -p "$root/bin"
CGO_ENABLED=0 go test -c -o "$root/init" ./bpf/
veth=$(find "$work/k/lib/modules" -name 'veth.ko*' | head -1)
case "$veth" in
*.xz) xz -dc "$veth" >"$root/veth.ko" ;;
*.zst) zstd -qdc "$veth" >"$root/veth.ko" ;;
*) cp "$veth" "$root/veth.ko" ;;
esac
# iproute2 for TestAttachVeth, with its libraries.
cp "$(command -v ip)" "$root/bin/ip"
for lib in $(ldd "$(command -v ip)" | grep -o '/[^ ]*'); do
	mkdir -p "$root$(dirname "$lib")"
	cp -L "$lib" "$root$lib"
done
(cd "$root" && find . | cpio -o -H newc 2>/dev/null | gzip -1) >"$work/initrd.gz"
# KVM where it works: /dev/kvm may exist and still fail (nested virtualisation
# without the MSRs QEMU wants), so start a stopped VM with it before trusting it.
accel=tcg
if [ -w /dev/kvm ] && timeout 20 qemu-system-x86_64 -accel kvm -cpu max -m 64 -display none -S -qmp stdio \
	</dev/null >/dev/null 2>&1; then
	accel=kvm
fi
echo "vmtest: $pkg ($accel)"
timeout 600 qemu-system-x86_64 -accel "$accel" -cpu max -smp 2 -m 1024 -nographic -no-reboot \
	-kernel "$vmlinuz" -initrd "$work/initrd.gz" \
	-append "console=ttyS0 panic=-1 quiet -- -test.count=1 $*" | tee "$work/console.log" | grep -v '^\s*$' || true
grep -q '^VMTEST EXIT 0' "$work/console.log"
