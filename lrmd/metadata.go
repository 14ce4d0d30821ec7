package lrmd

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Metadata is what an agent's meta-data action describes (the OCF
// resource-agent API's <resource-agent> document).
type Metadata struct {
	Name       string
	Version    string // the agent's version attribute
	OCFVersion string // the <version> element: the OCF API version it follows
	ShortDesc  string
	LongDesc   string
	Parameters []Parameter
	Actions    []ActionSpec
}

// Parameter is one <parameter> of the meta-data.
type Parameter struct {
	Name        string
	Required    bool
	Unique      bool
	UniqueGroup string
	Reloadable  bool
	Deprecated  bool
	// Type is the content type: string, integer, boolean, select,
	// timeout, ... (empty if the agent gave no <content>).
	Type       string
	Default    string
	HasDefault bool
	Options    []string // the <option value=...> of a select
	ShortDesc  string
}

// ActionSpec is one <action> the agent advertises, with its suggested
// timeout and interval (0 when absent or unparsable; the raw text is kept).
type ActionSpec struct {
	Name                    string
	Timeout, Interval       time.Duration
	TimeoutRaw, IntervalRaw string
	Depth                   string
	Role                    string
}

// MaxMetadataBytes bounds the meta-data document an agent may print.
const MaxMetadataBytes = 1 << 20

type xmlAgent struct {
	XMLName    xml.Name  `xml:"resource-agent"`
	Name       string    `xml:"name,attr"`
	Version    string    `xml:"version,attr"`
	OCFVersion string    `xml:"version"`
	ShortDesc  []xmlDesc `xml:"shortdesc"`
	LongDesc   []xmlDesc `xml:"longdesc"`
	Parameters struct {
		Params []xmlParam `xml:"parameter"`
	} `xml:"parameters"`
	Actions struct {
		Actions []xmlAction `xml:"action"`
	} `xml:"actions"`
}

type xmlDesc struct {
	Lang string `xml:"lang,attr"`
	Text string `xml:",chardata"`
}

type xmlParam struct {
	Name        string    `xml:"name,attr"`
	Required    string    `xml:"required,attr"`
	Unique      string    `xml:"unique,attr"`
	UniqueGroup string    `xml:"unique-group,attr"`
	Reloadable  string    `xml:"reloadable,attr"`
	Deprecated  *struct{} `xml:"deprecated"`
	ShortDesc   []xmlDesc `xml:"shortdesc"`
	Content     *struct {
		Type    string  `xml:"type,attr"`
		Default *string `xml:"default,attr"`
		Options []struct {
			Value string `xml:"value,attr"`
		} `xml:"option"`
	} `xml:"content"`
}

type xmlAction struct {
	Name     string `xml:"name,attr"`
	Timeout  string `xml:"timeout,attr"`
	Interval string `xml:"interval,attr"`
	Depth    string `xml:"depth,attr"`
	Role     string `xml:"role,attr"`
}

// ParseMetadata parses an OCF meta-data document. It requires a
// <resource-agent> root and parameter names that are unique and non-empty;
// everything else is optional, as agents in the wild are loose about it.
func ParseMetadata(data []byte) (*Metadata, error) {
	if len(data) > MaxMetadataBytes {
		return nil, fmt.Errorf("meta-data: %d bytes, more than %d", len(data), MaxMetadataBytes)
	}
	var x xmlAgent
	d := xml.NewDecoder(bytes.NewReader(data))
	d.CharsetReader = charsetReader
	if err := d.Decode(&x); err != nil {
		return nil, fmt.Errorf("meta-data: %w", err)
	}
	m := &Metadata{
		Name: x.Name, Version: x.Version, OCFVersion: strings.TrimSpace(x.OCFVersion),
		ShortDesc: pickDesc(x.ShortDesc), LongDesc: pickDesc(x.LongDesc),
	}
	seen := map[string]bool{}
	for _, p := range x.Parameters.Params {
		if p.Name == "" {
			return nil, errors.New("meta-data: a parameter has no name")
		}
		if seen[p.Name] {
			return nil, fmt.Errorf("meta-data: parameter %q is listed twice", p.Name)
		}
		seen[p.Name] = true
		mp := Parameter{
			Name: p.Name, Required: isTrue(p.Required), Unique: isTrue(p.Unique),
			UniqueGroup: p.UniqueGroup, Reloadable: isTrue(p.Reloadable),
			Deprecated: p.Deprecated != nil, ShortDesc: pickDesc(p.ShortDesc),
		}
		if c := p.Content; c != nil {
			mp.Type = c.Type
			if c.Default != nil {
				mp.Default, mp.HasDefault = *c.Default, true
			}
			for _, o := range c.Options {
				mp.Options = append(mp.Options, o.Value)
			}
		}
		m.Parameters = append(m.Parameters, mp)
	}
	for _, a := range x.Actions.Actions {
		if a.Name == "" {
			continue
		}
		as := ActionSpec{Name: a.Name, TimeoutRaw: a.Timeout, IntervalRaw: a.Interval, Depth: a.Depth, Role: a.Role}
		as.Timeout, _ = parseAgentDuration(a.Timeout)
		as.Interval, _ = parseAgentDuration(a.Interval)
		m.Actions = append(m.Actions, as)
	}
	return m, nil
}

// charsetReader accepts the encodings agents declare besides UTF-8.
func charsetReader(label string, input io.Reader) (io.Reader, error) {
	switch strings.ToLower(label) {
	case "utf8", "us-ascii", "ascii":
		return input, nil
	case "iso-8859-1", "iso8859-1", "latin1", "latin-1":
		b, err := io.ReadAll(io.LimitReader(input, MaxMetadataBytes+1))
		if err != nil {
			return nil, err
		}
		out := make([]byte, 0, len(b))
		for _, c := range b {
			out = utf8.AppendRune(out, rune(c))
		}
		return bytes.NewReader(out), nil
	}
	return nil, fmt.Errorf("unsupported encoding %q", label)
}

// pickDesc prefers the English description.
func pickDesc(ds []xmlDesc) string {
	for _, d := range ds {
		if d.Lang == "" || d.Lang == "en" {
			return strings.TrimSpace(d.Text)
		}
	}
	if len(ds) > 0 {
		return strings.TrimSpace(ds[0].Text)
	}
	return ""
}

// isTrue reads a boolean as Pacemaker's crm_is_true does.
func isTrue(s string) bool {
	b, ok := parseBool(s)
	return ok && b
}

// parseBool is crm_str_to_boolean: yes/no, true/false, on/off, y/n, 1/0,
// case-insensitive.
func parseBool(s string) (value, ok bool) {
	switch strings.ToLower(s) {
	case "true", "on", "yes", "y", "1":
		return true, true
	case "false", "off", "no", "n", "0":
		return false, true
	}
	return false, false
}

// parseAgentDuration reads a meta-data timeout or interval as Pacemaker's
// crm_get_msec does: a number, optionally followed by a unit (ms, msec,
// us, usec, s, sec, m, min, h, hr); no unit means seconds.
func parseAgentDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, errors.New("empty")
	}
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, fmt.Errorf("%q: no number", s)
	}
	n, err := strconv.ParseInt(s[:i], 10, 64)
	if err != nil {
		return 0, err
	}
	unit := time.Second
	switch strings.ToLower(strings.TrimSpace(s[i:])) {
	case "", "s", "sec":
	case "ms", "msec":
		unit = time.Millisecond
	case "us", "usec":
		unit = time.Microsecond
	case "m", "min":
		unit = time.Minute
	case "h", "hr":
		unit = time.Hour
	default:
		return 0, fmt.Errorf("%q: unknown unit", s)
	}
	if n > int64(1<<62)/int64(unit) {
		return 0, fmt.Errorf("%q: too large", s)
	}
	return time.Duration(n) * unit, nil
}

// Param returns the named parameter, or nil.
func (m *Metadata) Param(name string) *Parameter {
	for i := range m.Parameters {
		if m.Parameters[i].Name == name {
			return &m.Parameters[i]
		}
	}
	return nil
}

// Action returns the first advertised action of that name, or nil.
func (m *Metadata) Action(name string) *ActionSpec {
	for i := range m.Actions {
		if m.Actions[i].Name == name {
			return &m.Actions[i]
		}
	}
	return nil
}

// ValidationError is a parameter problem that stops an operation before
// the agent runs.
type ValidationError struct {
	Agent    Agent
	Problems []string
}

func (e *ValidationError) Error() string {
	return e.Agent.String() + ": " + strings.Join(e.Problems, "; ")
}

// Validate checks instance attributes against the meta-data. Parameters the
// agent does not list are warnings (agents accept some they do not list,
// e.g. resource-agents' trace_ra). A required parameter that is missing or
// empty (and has no default), and a value that is not an integer or a
// boolean where the agent declares one, are errors, returned as a
// *ValidationError naming the parameter and the agent. A value outside a
// select's options is a warning.
func (m *Metadata) Validate(agent Agent, params map[string]string) (warnings []string, err error) {
	names := make([]string, 0, len(params))
	for k := range params {
		names = append(names, k)
	}
	sort.Strings(names)
	byName := make(map[string]*Parameter, len(m.Parameters))
	for i := range m.Parameters {
		if _, dup := byName[m.Parameters[i].Name]; !dup {
			byName[m.Parameters[i].Name] = &m.Parameters[i]
		}
	}
	var problems []string
	for _, k := range names {
		v := params[k]
		p := byName[k]
		if p == nil {
			warnings = append(warnings, fmt.Sprintf("parameter %q is not in %s's meta-data", k, agent))
			continue
		}
		if strings.TrimSpace(v) == "" {
			continue
		}
		switch strings.ToLower(p.Type) {
		case "integer":
			if _, e := strconv.ParseInt(strings.TrimSpace(v), 10, 64); e != nil {
				problems = append(problems, fmt.Sprintf("parameter %q of %s must be an integer, not %q", k, agent, v))
			}
		case "boolean":
			if _, ok := parseBool(strings.TrimSpace(v)); !ok {
				problems = append(problems, fmt.Sprintf("parameter %q of %s must be a boolean, not %q", k, agent, v))
			}
		case "select":
			if len(p.Options) > 0 && !contains(p.Options, v) {
				warnings = append(warnings, fmt.Sprintf("parameter %q of %s is %q, not one of %s", k, agent, v, strings.Join(p.Options, ", ")))
			}
		}
		if p.Deprecated {
			warnings = append(warnings, fmt.Sprintf("parameter %q of %s is deprecated", k, agent))
		}
	}
	for _, p := range m.Parameters {
		if !p.Required || (p.HasDefault && p.Default != "") {
			continue
		}
		if strings.TrimSpace(params[p.Name]) == "" {
			problems = append(problems, fmt.Sprintf("required parameter %q of %s is missing", p.Name, agent))
		}
	}
	if len(problems) > 0 {
		return warnings, &ValidationError{Agent: agent, Problems: problems}
	}
	return warnings, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
