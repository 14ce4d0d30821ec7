package image

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"unicode/utf16"
)

// The bootable disk image: a GPT disk with an EFI system partition that
// holds the appliance as one Unified Kernel Image (systemd's EFI stub with
// the kernel, the initramfs and the command line in it, so the firmware
// boots it directly as \EFI\BOOT\BOOTX64.EFI: no boot loader to
// configure), and the persistent data partition (ext4, partition name
// "tachy-data"), which tachy init mounts on /var/lib/tachy, the daemon's
// state_dir: the replicated CIB, the volumes' metadata and this node's
// identity (boot-params) survive a reboot there.

// DataPartitionName is the GPT partition name init looks for.
const DataPartitionName = "tachy-data"

// BootParamsFile, on the data partition, holds more kernel-command-line
// words (tachy.node=..., tachy.addr=...): the node's identity, so that
// one image serves every node and the firmware passes no command line.
const BootParamsFile = "boot-params"

// DiskCmdline is the kernel command line inside the disk image: the
// serial and the screen console, and the data partition.
const DiskCmdline = "console=tty0 console=ttyS0 panic=-1 quiet tachy.data=" + DataPartitionName

// DefaultStub is where Debian's systemd-boot-efi puts the EFI stub.
const DefaultStub = "/usr/lib/systemd/boot/efi/linuxx64.efi.stub"

// DiskOptions describe a disk image.
type DiskOptions struct {
	Vmlinuz, Initrd string // from Build
	// Cmdline is the kernel command line inside the image (the console,
	// panic=-1; identity goes in BootParams).
	Cmdline string
	Stub    string // the EFI stub; default DefaultStub
	// BootParams, when set, are written to the data partition's
	// boot-params file (e.g. "tachy.node=n1 tachy.addr=eth0=10.0.0.1/24").
	BootParams string
	DataSize   int64  // bytes; default 256 MiB
	Out        string // the disk image (raw)
}

const (
	sector   = 512
	espSize  = 64 << 20
	firstLBA = 2048 // partitions start at 1 MiB
)

// BuildDisk writes the disk image. It needs objcopy (binutils), mformat,
// mmd and mcopy (mtools) and mkfs.ext4 (e2fsprogs): scripts/deps.sh
// --image installs them.
func BuildDisk(o DiskOptions) error {
	if o.Stub == "" {
		o.Stub = DefaultStub
	}
	if o.DataSize == 0 {
		o.DataSize = 256 << 20
	}
	if o.DataSize%sector != 0 || o.DataSize < 16<<20 {
		return fmt.Errorf("disk: data partition of %d bytes: use a multiple of 512, at least 16 MiB", o.DataSize)
	}
	if _, err := os.Stat(o.Stub); err != nil {
		return fmt.Errorf("disk: EFI stub: %w (install systemd-boot-efi)", err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(o.Out), ".disk-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	uki := filepath.Join(tmp, "BOOTX64.EFI")
	if err := buildUKI(o, uki, tmp); err != nil {
		return err
	}
	esp := filepath.Join(tmp, "esp.img")
	if err := truncate(esp, espSize); err != nil {
		return err
	}
	for _, c := range [][]string{
		{"mformat", "-i", esp, "-F", "-v", "TACHY-ESP", "::"},
		{"mmd", "-i", esp, "::/EFI", "::/EFI/BOOT"},
		{"mcopy", "-i", esp, uki, "::/EFI/BOOT/BOOTX64.EFI"},
	} {
		if err := tool(c...); err != nil {
			return err
		}
	}
	data := filepath.Join(tmp, "data.img")
	dataDir := filepath.Join(tmp, "data")
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return err
	}
	if o.BootParams != "" {
		if _, err := ParseCmdline(o.BootParams); err != nil {
			return fmt.Errorf("disk: boot params: %w", err)
		}
		if err := os.WriteFile(filepath.Join(dataDir, BootParamsFile), []byte(o.BootParams+"\n"), 0o644); err != nil {
			return err
		}
	}
	if err := truncate(data, o.DataSize); err != nil {
		return err
	}
	if err := tool("mkfs.ext4", "-q", "-F", "-L", DataPartitionName, "-d", dataDir, data); err != nil {
		return err
	}
	return writeGPT(o.Out, []partition{
		{name: "EFI system partition", typ: espType, file: esp},
		{name: DataPartitionName, typ: linuxFSType, file: data},
	})
}

// buildUKI joins the stub, the kernel, the initramfs and the command line
// into one EFI program, as systemd's ukify does: each a section of the
// stub's PE file, at addresses past the stub's own.
func buildUKI(o DiskOptions, out, tmp string) error {
	cmdline := filepath.Join(tmp, "cmdline")
	osrel := filepath.Join(tmp, "os-release")
	if err := os.WriteFile(cmdline, []byte(o.Cmdline+"\x00"), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(osrel, []byte("ID=tachy\nNAME=\"Tachy appliance\"\n"), 0o644); err != nil {
		return err
	}
	st, err := os.Stat(o.Vmlinuz)
	if err != nil {
		return err
	}
	const linuxVMA = 0x2000000
	initrdVMA := (linuxVMA + st.Size() + 0xffffff) &^ 0xffffff
	return tool("objcopy",
		"--add-section", ".osrel="+osrel, "--change-section-vma", ".osrel=0x20000",
		"--add-section", ".cmdline="+cmdline, "--change-section-vma", ".cmdline=0x30000",
		"--add-section", ".linux="+o.Vmlinuz, "--change-section-vma", fmt.Sprintf(".linux=%#x", linuxVMA),
		"--add-section", ".initrd="+o.Initrd, "--change-section-vma", fmt.Sprintf(".initrd=%#x", initrdVMA),
		o.Stub, out)
}

// tool runs a disk-building tool.
func tool(args ...string) error {
	if _, err := exec.LookPath(args[0]); err != nil {
		return fmt.Errorf("disk: %s is not installed (scripts/deps.sh --image installs it)", args[0])
	}
	if err := run("", args[0], args[1:]...); err != nil {
		return fmt.Errorf("disk: %w", err)
	}
	return nil
}

func truncate(p string, size int64) error {
	f, err := os.Create(p)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Truncate(size)
}

type partition struct {
	name string
	typ  [16]byte
	file string // its contents
}

// GPT partition type GUIDs, in their on-disk (mixed-endian) form.
var (
	espType     = guid("C12A7328-F81F-11D2-BA4B-00A0C93EC93B")
	linuxFSType = guid("0FC63DAF-8483-4772-8E79-3D69D8477DE4")
)

// guid encodes a GUID string as GPT stores it: the first three fields
// little-endian.
func guid(s string) [16]byte {
	var g, raw [16]byte
	// A constant in this package: the format is known good.
	_, _ = hex.Decode(raw[:], []byte(strings.ReplaceAll(s, "-", "")))
	copy(g[:], raw[:])
	g[0], g[1], g[2], g[3] = raw[3], raw[2], raw[1], raw[0]
	g[4], g[5] = raw[5], raw[4]
	g[6], g[7] = raw[7], raw[6]
	return g
}

// stableGUID makes a version-4-shaped GUID from a name, so the same inputs
// give the same disk image.
func stableGUID(parts ...string) [16]byte {
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	var g [16]byte
	copy(g[:], sum[:16])
	g[7] = g[7]&0x0f | 0x40
	g[8] = g[8]&0x3f | 0x80
	return g
}

// writeGPT writes a disk with a protective MBR, the GPT and its backup,
// and the partitions' contents, each starting on a 1 MiB boundary.
func writeGPT(out string, parts []partition) error {
	const entries, entrySize = 128, 128
	entrySectors := int64(entries * entrySize / sector)
	type placed struct {
		partition
		first, last int64
	}
	var ps []placed
	lba := int64(firstLBA)
	for _, p := range parts {
		st, err := os.Stat(p.file)
		if err != nil {
			return err
		}
		n := (st.Size() + sector - 1) / sector
		ps = append(ps, placed{p, lba, lba + n - 1})
		lba = (lba + n + 2047) &^ 2047
	}
	lastUsable := lba + 2047
	total := lastUsable + 1 + entrySectors + 1 // backup entries and header
	f, err := os.Create(out + ".tmp")
	if err != nil {
		return err
	}
	defer os.Remove(out + ".tmp")
	defer f.Close()
	if err := f.Truncate(total * sector); err != nil {
		return err
	}
	// The protective MBR: one partition of type 0xEE over the disk.
	mbr := make([]byte, sector)
	pe := mbr[446:]
	pe[1], pe[2], pe[3] = 0, 2, 0 // CHS of LBA 1
	pe[4] = 0xee
	pe[5], pe[6], pe[7] = 0xff, 0xff, 0xff
	binary.LittleEndian.PutUint32(pe[8:], 1)
	binary.LittleEndian.PutUint32(pe[12:], uint32(min(total-1, 0xffffffff)))
	mbr[510], mbr[511] = 0x55, 0xaa
	if _, err := f.WriteAt(mbr, 0); err != nil {
		return err
	}
	table := make([]byte, entries*entrySize)
	for i, p := range ps {
		e := table[i*entrySize:]
		copy(e[0:16], p.typ[:])
		u := stableGUID("tachy-partition", p.name)
		copy(e[16:32], u[:])
		binary.LittleEndian.PutUint64(e[32:], uint64(p.first))
		binary.LittleEndian.PutUint64(e[40:], uint64(p.last))
		for j, c := range utf16.Encode([]rune(p.name)) {
			if j >= 36 {
				break
			}
			binary.LittleEndian.PutUint16(e[56+2*j:], c)
		}
	}
	tableCRC := crc32.ChecksumIEEE(table)
	diskGUID := stableGUID("tachy-disk")
	header := func(current, backup, tableLBA int64) []byte {
		h := make([]byte, sector)
		copy(h, "EFI PART")
		binary.LittleEndian.PutUint32(h[8:], 0x00010000)
		binary.LittleEndian.PutUint32(h[12:], 92)
		binary.LittleEndian.PutUint64(h[24:], uint64(current))
		binary.LittleEndian.PutUint64(h[32:], uint64(backup))
		binary.LittleEndian.PutUint64(h[40:], uint64(2+entrySectors))
		binary.LittleEndian.PutUint64(h[48:], uint64(lastUsable))
		copy(h[56:72], diskGUID[:])
		binary.LittleEndian.PutUint64(h[72:], uint64(tableLBA))
		binary.LittleEndian.PutUint32(h[80:], entries)
		binary.LittleEndian.PutUint32(h[84:], entrySize)
		binary.LittleEndian.PutUint32(h[88:], tableCRC)
		binary.LittleEndian.PutUint32(h[16:], crc32.ChecksumIEEE(h[:92]))
		return h
	}
	backupLBA := total - 1
	writes := []struct {
		at   int64
		data []byte
	}{
		{1, header(1, backupLBA, 2)},
		{2, table},
		{backupLBA - entrySectors, table},
		{backupLBA, header(backupLBA, 1, backupLBA-entrySectors)},
	}
	for _, w := range writes {
		if _, err := f.WriteAt(w.data, w.at*sector); err != nil {
			return err
		}
	}
	for _, p := range ps {
		src, err := os.Open(p.file)
		if err != nil {
			return err
		}
		_, err = io.Copy(io.NewOffsetWriter(f, p.first*sector), src)
		src.Close()
		if err != nil {
			return err
		}
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(out+".tmp", out)
}

// readGPTNames lists the partition names of a disk image written by
// writeGPT, checking both CRCs (for tests).
func readGPTNames(disk string) ([]string, error) {
	b, err := os.ReadFile(disk)
	if err != nil {
		return nil, err
	}
	h := b[sector : 2*sector]
	if !bytes.Equal(h[:8], []byte("EFI PART")) {
		return nil, errors.New("no GPT header")
	}
	hc := make([]byte, 92)
	copy(hc, h[:92])
	want := binary.LittleEndian.Uint32(hc[16:])
	binary.LittleEndian.PutUint32(hc[16:], 0)
	if crc32.ChecksumIEEE(hc) != want {
		return nil, errors.New("GPT header CRC mismatch")
	}
	n, size := binary.LittleEndian.Uint32(h[80:]), binary.LittleEndian.Uint32(h[84:])
	table := b[2*sector : 2*sector+int(n*size)]
	if crc32.ChecksumIEEE(table) != binary.LittleEndian.Uint32(h[88:]) {
		return nil, errors.New("GPT entries CRC mismatch")
	}
	var names []string
	for i := 0; i < int(n); i++ {
		e := table[i*int(size):]
		if bytes.Equal(e[:16], make([]byte, 16)) {
			continue
		}
		var u []uint16
		for j := 0; j < 36; j++ {
			c := binary.LittleEndian.Uint16(e[56+2*j:])
			if c == 0 {
				break
			}
			u = append(u, c)
		}
		names = append(names, string(utf16.Decode(u)))
	}
	return names, nil
}
