package main

import (
	"os"
	"strings"

	"github.com/alecthomas/kong"
)

// quickSimulate reads the usual command lines of `tachy simulate` without
// kong: a script runs it once per input, as Pacemaker's tests run
// crm_simulate, and building kong's model by reflection was a tenth of
// its run time on a typical input. It accepts only -x/--xml FILE (an
// existing file), --now TIME, --json and -F/--node-fail NODE, each at most
// as kong would read them, and declines (ok false) anything else (help,
// global flags, a missing or unusual value), which main then hands to
// kong; TestQuickSimulate checks both read the same.
func quickSimulate(args []string) (c *simulateCmd, ok bool) {
	if len(args) < 2 || args[0] != "simulate" {
		return nil, false
	}
	c = &simulateCmd{}
	var xml, now bool
	for i := 1; i < len(args); i++ {
		a := args[i]
		name, v, inline := a, "", false
		if strings.HasPrefix(a, "--") {
			name, v, inline = strings.Cut(a, "=")
		}
		switch name {
		case "-x", "--xml", "--now", "-F", "--node-fail":
			if !inline {
				if i+1 >= len(args) {
					return nil, false
				}
				i++
				v = args[i]
			}
			// Kong reads values starting with '-' as flags and splits
			// lists at commas.
			if v == "" || v[0] == '-' || strings.ContainsRune(v, ',') {
				return nil, false
			}
		case "--json":
			if inline || c.JSON {
				return nil, false
			}
			c.JSON = true
			continue
		default:
			return nil, false
		}
		switch name {
		case "-x", "--xml":
			if xml {
				return nil, false
			}
			xml, c.XML = true, kong.ExpandPath(v)
		case "--now":
			if now {
				return nil, false
			}
			now, c.Now = true, v
		default:
			c.NodeFail = append(c.NodeFail, v)
		}
	}
	if !xml {
		return nil, false
	}
	if st, err := os.Stat(c.XML); err != nil || st.IsDir() {
		return nil, false // kong's error
	}
	return c, true
}
