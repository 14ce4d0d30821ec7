// Package ackwriter is the QEMU lab's durability probe: a writer that
// appends numbered, checksummed records to a file, fsyncs each one and
// only then reports it acknowledged. After a failover the file on the new
// primary must hold every acknowledged record: Scan finds the longest
// valid prefix, and Run resumes after it.
package ackwriter

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"strconv"
	"time"
)

// RecordSize is the size of one record: "seq=%016d " and filler, then
// "%08x\n", the CRC-32 of what precedes it.
const RecordSize = 64

const bodySize = RecordSize - 9

// Record returns record seq.
func Record(seq uint64) []byte {
	b := make([]byte, 0, RecordSize)
	b = fmt.Appendf(b, "seq=%016d ", seq)
	for len(b) < bodySize {
		b = append(b, 'a'+byte((seq+uint64(len(b)))%26))
	}
	return fmt.Appendf(b, "%08x\n", crc32.ChecksumIEEE(b))
}

// parse returns the sequence number of a valid record.
func parse(r []byte) (uint64, bool) {
	if len(r) != RecordSize || r[RecordSize-1] != '\n' || string(r[:4]) != "seq=" || r[20] != ' ' {
		return 0, false
	}
	sum, err := strconv.ParseUint(string(r[bodySize:RecordSize-1]), 16, 32)
	if err != nil || uint32(sum) != crc32.ChecksumIEEE(r[:bodySize]) {
		return 0, false
	}
	seq, err := strconv.ParseUint(string(r[4:20]), 10, 64)
	return seq, err == nil
}

// Result is what Scan found.
type Result struct {
	Last      uint64 `json:"last"`        // sequence number of the last record of the valid prefix (0: none)
	Valid     int64  `json:"valid_bytes"` // bytes of the valid prefix
	TailBytes int64  `json:"tail_bytes"`  // bytes after it: records written but never acknowledged
}

// Scan reads a log: the valid prefix is the longest run of valid records
// numbered 1, 2, 3...; whatever follows is a torn tail.
func Scan(r io.Reader) (Result, error) {
	var res Result
	buf := make([]byte, RecordSize)
	torn := false
	for {
		n, err := io.ReadFull(r, buf)
		if n > 0 {
			if !torn {
				if seq, ok := parse(buf[:n]); ok && seq == res.Last+1 {
					res.Last, res.Valid = seq, res.Valid+RecordSize
					continue
				}
				torn = true
			}
			res.TailBytes += int64(n)
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return res, nil
		}
		if err != nil {
			return res, err
		}
	}
}

// Run appends records to path every interval until ctx ends, starting after
// the valid prefix (a torn tail is cut off first); it writes "resumed
// after N" once, then "acked N" after each record's fsync returned. An
// I/O error ends it.
func Run(ctx context.Context, path string, interval time.Duration, out io.Writer) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	res, err := Scan(f)
	if err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	if res.TailBytes > 0 {
		if err := f.Truncate(res.Valid); err != nil {
			return err
		}
	}
	if err := f.Sync(); err != nil {
		return err
	}
	fmt.Fprintf(out, "writer: resumed after %d (dropped a tail of %d bytes)\n", res.Last, res.TailBytes)
	seq, off := res.Last, res.Valid
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		seq++
		if _, err := f.WriteAt(Record(seq), off); err != nil {
			return fmt.Errorf("writing record %d: %w", seq, err)
		}
		if err := f.Sync(); err != nil {
			return fmt.Errorf("fsync of record %d: %w", seq, err)
		}
		off += RecordSize
		fmt.Fprintf(out, "writer: acked %d\n", seq)
	}
}
