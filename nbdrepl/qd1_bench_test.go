package nbdrepl

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// qd1SecondaryEnv makes the test binary a secondary in its own process
// (BenchmarkReplQD1's "process" cases): it prints its address and serves
// until stdin closes.
const qd1SecondaryEnv = "NBDREPL_BENCH_SECONDARY"

func TestMain(m *testing.M) {
	if os.Getenv(qd1SecondaryEnv) != "" {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println(ln.Addr())
		sec := &Secondary{Backend: NewMemBackend(64 << 20), Volume: "vol0", Secret: testSecret}
		ctx, cancel := context.WithCancel(context.Background())
		go func() { bufio.NewReader(os.Stdin).ReadString('\n'); cancel(); ln.Close() }()
		sec.Serve(ctx, ln)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// BenchmarkReplQD1: one 4 KiB write at a time through a Replicated volume
// (memory backends, one secondary over loopback TCP, in this process or in
// another): ns/op is the write latency a queue-depth-1 client sees, less
// the NBD hop.
func BenchmarkReplQD1(b *testing.B) {
	for _, where := range []string{"inproc", "process"} {
		for _, proto := range []Protocol{ProtocolA, ProtocolB, ProtocolC} {
			b.Run(where+"/"+proto.String(), func(b *testing.B) {
				const size = 64 << 20
				var r *Replicated
				if where == "inproc" {
					r, _, _ = replSetup(b, proto, size, 1)
				} else {
					r = newPrimary(b, NewMemBackend(size), proto)
					attach(b, r, &testSec{addr: startSecondaryProcess(b)}, "s0")
				}
				buf := make([]byte, 4096)
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if _, err := r.WriteAt(buf, int64(i%1000)*4096); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// startSecondaryProcess runs a secondary in a child process and returns
// its address.
func startSecondaryProcess(b *testing.B) string {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), qd1SecondaryEnv+"=1")
	in, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { in.Close(); cmd.Wait() })
	addr, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		b.Fatal(err)
	}
	return strings.TrimSpace(addr)
}
