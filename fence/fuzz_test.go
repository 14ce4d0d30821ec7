package fence

import (
	"bufio"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Device parameters from the CIB (host lists, host maps, delays, levels)
// never make Plan panic, and a delay is never negative.
func FuzzPlan(f *testing.F) {
	f.Add("n1:4;n2:7", "n1 n2", "2s", "10s", "^n[0-9]$", "n1")
	f.Add("=;:", ",,", "1min", "-5", "(", "")
	f.Fuzz(func(t *testing.T, hostMap, hostList, base, maxDelay, pattern, target string) {
		devs := []DeviceConfig{{ID: "d", Params: map[string]string{"pcmk_host_map": hostMap, "pcmk_host_list": hostList,
			"pcmk_delay_base": base, "pcmk_delay_max": maxDelay}}}
		levels := []Level{{ID: "l", Index: 1, TargetPattern: pattern, Devices: []string{"d"}}}
		as, err := Plan(target, nil, devs, levels, func() float64 { return 0.999 })
		if err != nil {
			return
		}
		for _, a := range as {
			for _, s := range a.Steps {
				if s.Delay < 0 {
					t.Fatalf("negative delay %v", s.Delay)
				}
			}
		}
	})
}

// Whatever a QMP server sends, the client returns (an answer or an error)
// without panicking or waiting past its deadline.
func FuzzQMPReply(f *testing.F) {
	f.Add(`{"QMP":{}}`, `{"return":{}}`)
	f.Add(`{"QMP":{}}`, `{"event":"RESET"}`+"\n"+`{"error":{"class":"x","desc":"y"}}`)
	f.Add(`not json`, ``)
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, greeting, reply string) {
		sock := filepath.Join(dir, "q.sock")
		os.Remove(sock)
		ln, err := net.Listen("unix", sock)
		if err != nil {
			t.Skip(err)
		}
		defer ln.Close()
		go func() {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
			c.Write([]byte(strings.ReplaceAll(greeting, "\n", " ") + "\n"))
			r := bufio.NewReader(c)
			for range 2 {
				if _, err := r.ReadBytes('\n'); err != nil {
					return
				}
				c.Write([]byte(reply + "\n"))
			}
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		start := time.Now()
		(&QMP{Address: "unix:" + sock}).Execute(ctx, "", "query-status")
		if time.Since(start) > 5*time.Second {
			t.Fatal("the client waited past its deadline")
		}
	})
}
