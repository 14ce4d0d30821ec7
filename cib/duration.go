package cib

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// ParseMsec parses a duration as Pacemaker's crm_get_msec does: optional
// leading white space, digits, optional white space, then a unit matched by
// prefix, case-insensitively (ms/msec, us/usec, s/sec, m/min, h/hr; none
// means seconds). It returns milliseconds, or an error where crm_get_msec
// returns -1.
func ParseMsec(s string) (int64, error) {
	t := strings.TrimLeft(s, " \t\n\r\f\v")
	n := 0
	for n < len(t) && (t[n] >= '0' && t[n] <= '9' || t[n] == '.') {
		n++
	}
	if n == 0 {
		return 0, fmt.Errorf("%q is not a duration", s)
	}
	num, units := t[:n], strings.TrimLeft(t[n:], " \t\n\r\f\v")
	lu := strings.ToLower(units)
	var mult, div int64
	switch {
	case strings.HasPrefix(lu, "ms"):
		mult, div = 1, 1
	case strings.HasPrefix(lu, "us"):
		mult, div = 1, 1000
	case strings.HasPrefix(lu, "s"):
		mult, div = 1000, 1
	case strings.HasPrefix(lu, "m"):
		mult, div = 60*1000, 1
	case strings.HasPrefix(lu, "h"):
		mult, div = 60*60*1000, 1
	case lu == "" || lu[0] == '\n' || lu[0] == '\r':
		mult, div = 1000, 1
	default:
		return 0, fmt.Errorf("%q is not a duration (unknown unit %q)", s, units)
	}
	// The number is scanned as an integer: "1.5s" is 1 second.
	if i := strings.IndexByte(num, '.'); i >= 0 {
		num = num[:i]
	}
	if num == "" {
		return 0, fmt.Errorf("%q is not a duration", s)
	}
	v, err := strconv.ParseInt(num, 10, 64)
	if err != nil || v > math.MaxInt64/mult {
		return math.MaxInt64, nil // crm_get_msec caps at LLONG_MAX
	}
	return v * mult / div, nil
}

// ParseISODuration parses an ISO 8601 duration as Pacemaker 2.1.5's
// crm_time_parse_duration does, which is lax about unit order ("P10S" is
// ten seconds), and returns its length in seconds as crm_time_get_seconds
// counts it (a year is 365 days, a month 30).
func ParseISODuration(s string) (int64, error) {
	if len(s) < 2 || s[0] != 'P' || s[1] == ' ' {
		return 0, fmt.Errorf("%q is not an ISO 8601 duration", s)
	}
	var years, months, days, secs int64
	isTime := false
	for i := 1; i < len(s) && s[i] != '/' && s[i] != ' ' && s[i] != '\t' && s[i] != '\n'; i++ {
		if s[i] == 'T' {
			isTime = true
			continue
		}
		j := i
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		if j == i || j-i > 9 || j == len(s) {
			return 0, fmt.Errorf("%q is not an ISO 8601 duration", s)
		}
		v, _ := strconv.ParseInt(s[i:j], 10, 64)
		switch s[j] {
		case 'Y':
			years = v
		case 'M':
			if isTime {
				secs += v * 60
			} else {
				months = v
			}
		case 'W':
			days += v * 7
		case 'D':
			days += v
		case 'H':
			secs += v * 3600
		case 'S':
			secs += v
		default:
			return 0, fmt.Errorf("%q is not an ISO 8601 duration", s)
		}
		i = j
	}
	return years*365*86400 + months*30*86400 + days*86400 + secs, nil
}

// ParseInterval parses an operation interval as crm_parse_interval_spec
// does ("10s", "1min", "1h", "10" (seconds), "PT10S"). Where Pacemaker
// warns and uses 0, ParseInterval returns an error.
func ParseInterval(s string) (time.Duration, error) {
	var ms int64
	if strings.HasPrefix(s, "P") {
		secs, err := ParseISODuration(s)
		if err != nil {
			return 0, err
		}
		ms = secs * 1000
	} else {
		v, err := ParseMsec(s)
		if err != nil {
			return 0, err
		}
		ms = v
	}
	if ms >= math.MaxUint32 {
		ms = math.MaxUint32 // Pacemaker holds intervals in a guint
	}
	return time.Duration(ms) * time.Millisecond, nil
}

// formatInterval writes an interval so that ParseInterval gives it back.
func formatInterval(d time.Duration) string {
	ms := d.Milliseconds()
	switch {
	case ms == 0:
		return "0"
	case ms%1000 == 0:
		return strconv.FormatInt(ms/1000, 10) + "s"
	}
	return strconv.FormatInt(ms, 10) + "ms"
}

func msDuration(ms int64) time.Duration { return time.Duration(ms) * time.Millisecond }
