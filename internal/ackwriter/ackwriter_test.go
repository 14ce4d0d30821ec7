package ackwriter

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestScan(t *testing.T) {
	var log []byte
	for i := uint64(1); i <= 5; i++ {
		log = append(log, Record(i)...)
	}
	res, err := Scan(bytes.NewReader(log))
	if err != nil || res != (Result{Last: 5, Valid: 5 * RecordSize}) {
		t.Fatalf("%+v %v", res, err)
	}
	// A torn tail: half a record, or zeroes, or a gap in the numbers.
	for name, tail := range map[string][]byte{
		"half":   Record(6)[:30],
		"zeroes": make([]byte, 4096),
		"gap":    Record(7),
	} {
		res, _ := Scan(bytes.NewReader(append(append([]byte{}, log...), tail...)))
		if res.Last != 5 || res.TailBytes != int64(len(tail)) {
			t.Errorf("%s: %+v", name, res)
		}
	}
	// A corrupted record in the middle ends the valid prefix there.
	bad := append([]byte{}, log...)
	bad[2*RecordSize+7] ^= 1
	if res, _ := Scan(bytes.NewReader(bad)); res.Last != 2 {
		t.Errorf("corrupt third record: %+v", res)
	}
}

func TestRunResumes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := Run(ctx, path, time.Millisecond, &out); err != nil {
		t.Fatal(err)
	}
	acked := strings.Count(out.String(), "writer: acked ")
	if acked == 0 || !strings.HasPrefix(out.String(), "writer: resumed after 0 ") {
		t.Fatalf("output: %q", out.String())
	}
	// A torn tail is cut off and numbering continues after the prefix.
	f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	f.Write([]byte("garbage"))
	f.Close()
	out.Reset()
	ctx, cancel = context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := Run(ctx, path, time.Millisecond, &out); err != nil {
		t.Fatal(err)
	}
	want := "writer: resumed after " + strconv.Itoa(acked) + " (dropped a tail of 7 bytes)"
	if !strings.HasPrefix(out.String(), want) {
		t.Fatalf("got %q, want prefix %q", out.String(), want)
	}
	b, _ := os.ReadFile(path)
	res, _ := Scan(bytes.NewReader(b))
	if res.TailBytes != 0 || res.Last <= uint64(acked) {
		t.Fatalf("after resume: %+v", res)
	}
}

// FuzzScan: any bytes scan without error, the prefix and the tail add up,
// and the prefix rescans to itself.
func FuzzScan(f *testing.F) {
	f.Add(append(Record(1), Record(2)...))
	f.Add(append(Record(1), 0, 0, 1))
	f.Fuzz(func(t *testing.T, b []byte) {
		res, err := Scan(bytes.NewReader(b))
		if err != nil || res.Valid+res.TailBytes != int64(len(b)) || res.Valid != int64(res.Last)*RecordSize {
			t.Fatalf("%+v %v for %d bytes", res, err, len(b))
		}
		if again, _ := Scan(bytes.NewReader(b[:res.Valid])); again != (Result{Last: res.Last, Valid: res.Valid}) {
			t.Fatalf("prefix rescans to %+v", again)
		}
	})
}
