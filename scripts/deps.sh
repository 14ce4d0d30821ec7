#!/usr/bin/env bash
# Installs what tachy's tests, lab and demo need on Debian 12, and nothing if
# it is all there already. Run as root. Go itself must be 1.22 or newer; the
# go.mod toolchain line makes it fetch the exact version from the module proxy.
set -euo pipefail
# crm_simulate (pacemaker-cli-utils) is the oracle of pe's differential test;
# QEMU (qemu-system-x86) is what the QMP fencing device is tested against.
want=(ip:iproute2 nft:nftables stress-ng:stress-ng ping:iputils-ping curl:curl pgrep:procps tcpdump:tcpdump nbdinfo:libnbd-bin nbdcopy:libnbd-bin qemu-io:qemu-utils /usr/lib/ocf/resource.d/heartbeat/Dummy:resource-agents /usr/lib/ocf/resource.d/pacemaker/Stateful:pacemaker-resource-agents /usr/sbin/crm_simulate:pacemaker-cli-utils qemu-system-x86_64:qemu-system-x86)
[ "${1:-}" = "--bpf" ] && want+=(clang:clang llvm-strip:llvm bpftool:bpftool /usr/include/bpf/bpf_helpers.h:libbpf-dev)
# The appliance image (make image) and its boot tests: apt-get download and
# dpkg-deb fetch and unpack the kernel, xz/zstd decompress its modules if
# they are compressed, QEMU boots it, cpio checks archives.
# The disk image: objcopy joins systemd's EFI stub, the kernel and the
# initramfs; mtools writes the EFI partition, mkfs.ext4 the data partition;
# OVMF is the UEFI firmware QEMU boots it with.
[ "${1:-}" = "--image" ] && want+=(apt-get:apt dpkg-deb:dpkg xz:xz-utils zstd:zstd cpio:cpio qemu-system-x86_64:qemu-system-x86 objcopy:binutils mformat:mtools mkfs.ext4:e2fsprogs /usr/lib/systemd/boot/efi/linuxx64.efi.stub:systemd-boot-efi /usr/share/OVMF/OVMF_CODE.fd:ovmf)
missing=()
for w in "${want[@]}"; do
  cmd=${w%%:*} pkg=${w#*:}
  if [[ $cmd == /* ]]; then [ -e "$cmd" ] || missing+=("$pkg"); else command -v "$cmd" >/dev/null || missing+=("$pkg"); fi
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "deps: missing ${missing[*]}; run as root (or apt-get install ${missing[*]})" >&2
    exit 1
  fi
  echo "deps: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi
if ! command -v go >/dev/null; then
  if [ -x /usr/local/go/bin/go ]; then
    echo "deps: go is in /usr/local/go/bin; add it to PATH" >&2
  else
    echo "deps: no Go toolchain; install Go 1.22+ from go.dev into /usr/local/go" >&2
  fi
  exit 1
fi
go mod download
