package lrmd

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestSplitCommand(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"/bin/tachy lab writer --dir /mnt/data", []string{"/bin/tachy", "lab", "writer", "--dir", "/mnt/data"}},
		{`  a  "b c"  d"e f"g `, []string{"a", "b c", "de fg"}},
		{`"" x`, []string{"", "x"}},
		{`"a \"q\" \\"`, []string{`a "q" \`}},
		{"", nil},
	} {
		got, err := SplitCommand(tc.in)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q: %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	if _, err := SplitCommand(`a "b`); err == nil {
		t.Error("unterminated quote accepted")
	}
}

func FuzzSplitCommand(f *testing.F) {
	f.Add(`a "b c" \"d`)
	f.Fuzz(func(t *testing.T, s string) {
		words, err := SplitCommand(s)
		if err != nil {
			return
		}
		if !strings.Contains(s, `"`) {
			if want := strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == '\t' }); !reflect.DeepEqual(words, want) && !(len(words) == 0 && len(want) == 0) {
				t.Fatalf("%q: %q, want %q", s, words, want)
			}
		}
	})
}

func TestProcessAgent(t *testing.T) {
	run := t.TempDir()
	out := filepath.Join(run, "out.log")
	p := map[string]string{"command": `sh -c "echo started; trap '' TERM; exec sleep 60"`, "output": out, "stop_wait": "300ms"}
	do := func(action string) BuiltinResult {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		return runProcess(ctx, run, BuiltinRequest{Resource: "svc", Action: action, Params: p})
	}
	if r := do("monitor"); r.RC != NotRunning {
		t.Fatalf("monitor before start: %+v", r)
	}
	if r := do("start"); r.RC != OK {
		t.Fatalf("start: %+v", r)
	}
	pid, ok := runningProcess(filepath.Join(run, "process-svc.pid"))
	if !ok {
		t.Fatal("no live pid file after start")
	}
	if r := do("start"); r.RC != OK {
		t.Fatalf("second start: %+v", r)
	}
	if again, _ := runningProcess(filepath.Join(run, "process-svc.pid")); again != pid {
		t.Fatalf("second start ran another process (%d, was %d)", again, pid)
	}
	if r := do("monitor"); r.RC != OK {
		t.Fatalf("monitor: %+v", r)
	}
	// It ignores SIGTERM: stop must end it with SIGKILL after stop_wait.
	if r := do("stop"); r.RC != OK {
		t.Fatalf("stop: %+v", r)
	}
	if r := do("monitor"); r.RC != NotRunning {
		t.Fatalf("monitor after stop: %+v", r)
	}
	if b, _ := os.ReadFile(out); !strings.Contains(string(b), "started") {
		t.Fatalf("output file: %q", b)
	}
	// A command that exits at once fails its start; a missing one is not installed.
	p = map[string]string{"command": "false"}
	if r := do("start"); r.RC != ErrGeneric || !strings.Contains(r.ExitReason, "exited at once") {
		t.Fatalf("start of false: %+v", r)
	}
	p = map[string]string{"command": "/nonexistent/cmd"}
	if r := do("start"); r.RC != ErrInstalled {
		t.Fatalf("start of a missing command: %+v", r)
	}
	p = map[string]string{"command": `a "b`}
	if r := do("start"); r.RC != ErrConfigured {
		t.Fatalf("bad command: %+v", r)
	}
}
