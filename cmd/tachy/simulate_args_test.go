package main

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/alecthomas/kong"
)

var errExit = errors.New("kong exited")

// parse is p.Parse, with kong's exit (after --help) as an error.
func parse(p *kong.Kong, args []string) (ctx *kong.Context, err error) {
	defer func() {
		if r := recover(); r != nil {
			if r != errExit {
				panic(r)
			}
			err = errExit
		}
	}()
	return p.Parse(args)
}

// quickSimulate reads what kong reads, or declines.
func TestQuickSimulate(t *testing.T) {
	const f = "testdata/two-nodes-prefer-node2.xml"
	for _, line := range []string{
		"simulate -x " + f,
		"simulate --xml " + f,
		"simulate --xml=" + f,
		"simulate -x " + f + " --json",
		"simulate --json -x " + f + " --now 1700000000",
		"simulate -x " + f + " --now=2026-11-25T12:00:00Z -F node1 --node-fail node2 --node-fail=node3",
		// Declined: kong reads them (or refuses them).
		"simulate",
		"simulate -x",
		"simulate -x testdata",
		"simulate -x testdata/missing.xml",
		"simulate -x -",
		"simulate -x " + f + " -x " + f,
		"simulate -x " + f + " --json --json",
		"simulate -x " + f + " --json=false",
		"simulate -x " + f + " -F a,b",
		"simulate -x " + f + " --now",
		"simulate -x " + f + " --now 1 --now 2",
		"simulate -x " + f + " --help",
		"simulate -x " + f + " --log-level debug",
		"simulate -x " + f + " extra",
		"simulate -x" + f,
		"simulate -- -x " + f,
		"version",
	} {
		args := strings.Fields(line)
		quick, ok := quickSimulate(args)
		var g globals
		var out strings.Builder
		p, err := newParser(&g, args, kong.Writers(&out, &out), kong.Exit(func(int) { panic(errExit) }))
		if err != nil {
			t.Fatal(err)
		}
		ctx, err := parse(p, args)
		if !ok {
			continue
		}
		if err != nil {
			t.Errorf("%q: read by quickSimulate, refused by kong: %v", line, err)
			continue
		}
		want, isSim := ctx.Selected().Target.Addr().Interface().(*simulateCmd)
		if !isSim {
			t.Errorf("%q: read by quickSimulate, kong selected %s", line, ctx.Command())
			continue
		}
		if !reflect.DeepEqual(quick, want) {
			t.Errorf("%q: quickSimulate read %+v, kong %+v", line, quick, want)
		}
		if g != (globals{Socket: g.Socket, LabDir: g.LabDir, LogLevel: "info", LogFormat: "text"}) {
			t.Errorf("%q: kong set globals %+v", line, g)
		}
	}
	// The lines expected to take the fast path do.
	for _, line := range []string{"simulate -x " + f, "simulate --xml=" + f + " --json -F node1"} {
		if _, ok := quickSimulate(strings.Fields(line)); !ok {
			t.Errorf("%q: declined", line)
		}
	}
}
