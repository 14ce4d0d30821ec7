// Package bpf holds tachy's eBPF programs and small typed Go APIs over them.
//
// The compiled objects and their bpf2go loaders (*_bpfel.go, *_bpfel.o) are
// committed, so building tachy needs no clang; `make bpf` regenerates them
// after a change to a .c file (it needs clang, llvm-strip and libbpf-dev).
package bpf

// -target bpfel: one object for every little-endian architecture (amd64,
// arm64); the program does not depend on the architecture beyond byte order.
//go:generate go tool bpf2go -tags linux -target bpfel -type hb_event -type hb_config -type hb_iface heartbeat heartbeat.c -- -I/usr/include/bpf -I. -O2 -g -Wall -Werror
//go:generate go tool bpf2go -tags linux -target bpfel -type arp_vip arpresp arpresp.c -- -I/usr/include/bpf -I. -O2 -g -Wall -Werror
