package config

import (
	"fmt"
	"sort"
	"strings"
)

// Error is one problem in a configuration file. Its text has the form
//
//	FILE:LINE: WHERE: PROBLEM; WHAT IS ALLOWED
//
// where WHERE is "section.key" (for example "heartbeat.interval"), a table
// header such as "[cluster]", or empty for problems that belong to no table.
type Error struct {
	File string
	Line int
	Key  string // "section.key", "[table]" or ""
	Msg  string // the problem and what is allowed instead
}

func (e *Error) Error() string {
	if e.Key == "" {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s:%d: %s: %s", e.File, e.Line, e.Key, e.Msg)
}

// Errors is every problem found in a file, in line order. Parse returns it
// when there is more than one; errors.As finds each *Error inside.
type Errors []*Error

// maxErrors bounds how many problems one Parse reports.
const maxErrors = 20

func (l Errors) Error() string {
	var b strings.Builder
	for i, e := range l {
		if i == maxErrors {
			fmt.Fprintf(&b, "\n%s: ... and %d more problems", e.File, len(l)-maxErrors)
			break
		}
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// Unwrap lets errors.As and errors.Is look at each problem.
func (l Errors) Unwrap() []error {
	out := make([]error, len(l))
	for i, e := range l {
		out[i] = e
	}
	return out
}

// asError turns a list of problems into the error Parse returns: nil, the
// single *Error, or Errors sorted by line.
func asError(errs []*Error) error {
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	l := append(Errors(nil), errs...)
	sort.SliceStable(l, func(i, j int) bool { return l[i].Line < l[j].Line })
	return l
}
