package lrmd

import (
	"bufio"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"os"
	"strings"
)

var errNotInstalled = errors.New("agent not installed")

// Metadata returns an agent's parsed meta-data, running its meta-data
// action the first time and caching the result (successes only). LSB
// scripts get meta-data made from their LSB header, as Pacemaker makes it.
func (e *Executor) Metadata(ctx context.Context, a Agent) (*Metadata, error) {
	if err := a.check(); err != nil {
		return nil, err
	}
	return e.metadata(ctx, a, true)
}

// ForgetMetadata drops an agent's cached meta-data (after an upgrade).
func (e *Executor) ForgetMetadata(a Agent) {
	e.metaMu.Lock()
	delete(e.meta, a.String())
	e.metaMu.Unlock()
}

func (e *Executor) metadata(ctx context.Context, a Agent, takeSlot bool) (*Metadata, error) {
	key := a.String()
	e.metaMu.Lock()
	md := e.meta[key]
	e.metaMu.Unlock()
	if md != nil {
		return md, nil
	}
	if takeSlot {
		select {
		case e.sem <- struct{}{}:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		defer func() { <-e.sem }()
	}
	op := &Op{Resource: a.Type, Agent: a, Action: "meta-data", Timeout: e.cfg.MetadataTimeout}
	o := e.dispatch(ctx, op, op.allParams())
	switch {
	case o.status == StatusNotInstalled:
		return nil, fmt.Errorf("%s: %w: %s", a, errNotInstalled, o.reason)
	case o.status != StatusDone || o.rc != OK:
		why := o.reason
		if why == "" {
			why = firstLine(o.stderr)
		}
		return nil, fmt.Errorf("%s meta-data: %s, %s: %s", a, o.rc, o.status, why)
	}
	md, err := ParseMetadata([]byte(o.stdout))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", a, err)
	}
	e.metaMu.Lock()
	e.meta[key] = md
	e.metaMu.Unlock()
	return md, nil
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}

// Validate checks an operation's parameters against its agent's
// meta-data, as the executor does before every start.
func (e *Executor) Validate(ctx context.Context, op Op) (warnings []string, err error) {
	md, err := e.Metadata(ctx, op.Agent)
	if err != nil {
		return nil, err
	}
	return md.Validate(op.Agent, op.Params)
}

// lsbMetadata builds meta-data for an init script from its LSB comment
// block, as Pacemaker's services__get_lsb_metadata does: no parameters,
// the LSB actions, and the header's fields.
func lsbMetadata(name, path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	fields := map[string]string{}
	keys := []string{"Provides", "Required-Start", "Required-Stop", "Should-Start",
		"Should-Stop", "Default-Start", "Default-Stop", "Short-Description", "Description"}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 4096), 1<<20)
	in := false
	lastKey := ""
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "### BEGIN INIT INFO") {
			in = true
			continue
		}
		if !in {
			continue
		}
		if strings.HasPrefix(line, "### END INIT INFO") || !strings.HasPrefix(line, "#") {
			break
		}
		if lastKey == "Description" && (strings.HasPrefix(line, "#  ") || strings.HasPrefix(line, "#\t")) {
			fields["Description"] += "\n" + strings.TrimSpace(line[1:])
			continue
		}
		lastKey = ""
		for _, k := range keys {
			if p := "# " + k + ":"; strings.HasPrefix(line, p) {
				if _, dup := fields[k]; !dup {
					fields[k] = strings.TrimSpace(line[len(p):])
					lastKey = k
				}
				break
			}
		}
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	esc := func(s string) string {
		var b strings.Builder
		_ = xml.EscapeText(&b, []byte(s))
		return b.String()
	}
	or := func(k, def string) string {
		if v, ok := fields[k]; ok {
			return esc(v)
		}
		return esc(def)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "<?xml version='1.0'?>\n<resource-agent name='%s' version='0.1'>\n  <version>1.0</version>\n", esc(name))
	fmt.Fprintf(&b, "  <longdesc lang='en'>\n%s\n  </longdesc>\n  <shortdesc lang='en'>%s</shortdesc>\n", or("Description", name), or("Short-Description", name))
	b.WriteString("  <parameters/>\n  <actions>\n" +
		"    <action name='meta-data'    timeout='5' />\n" +
		"    <action name='start'        timeout='15' />\n" +
		"    <action name='stop'         timeout='15' />\n" +
		"    <action name='status'       timeout='15' />\n" +
		"    <action name='restart'      timeout='15' />\n" +
		"    <action name='force-reload' timeout='15' />\n" +
		"    <action name='monitor'      timeout='15' interval='15' />\n" +
		"  </actions>\n  <special tag='LSB'>\n")
	for _, k := range keys[:7] {
		fmt.Fprintf(&b, "    <%s>%s</%s>\n", k, or(k, ""), k)
	}
	b.WriteString("  </special>\n</resource-agent>\n")
	return b.String(), nil
}
