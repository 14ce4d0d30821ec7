package pe

import (
	"strconv"
	"strings"
	"time"

	"github.com/tachy-ha/tachy/cib"
)

// ruleCtx is what a rule is evaluated against: a node's attributes (nil
// for rules outside location constraints).
type ruleCtx struct {
	attrs map[string]string
	now   time.Time
}

func (ws *workingSet) baseCtx() *ruleCtx { return &ruleCtx{now: ws.now} }

func (ws *workingSet) nodeCtx(n *Node) *ruleCtx { return &ruleCtx{attrs: n.Attrs, now: ws.now} }

// evalRule reports whether r passes, and its score when it does (the score
// attribute's value on the node where the rule names one).
func (c *ruleCtx) evalRule(r *cib.Rule) (bool, Score) {
	or := strings.EqualFold(r.BooleanOp, "or")
	pass := !or
	if len(r.Conditions) == 0 {
		pass = true
	}
	for _, cond := range r.Conditions {
		ok := c.evalCondition(cond)
		if or && ok {
			pass = true
			break
		}
		if !or && !ok {
			pass = false
			break
		}
	}
	score := Score(0)
	if r.Score != nil {
		score = *r.Score
	} else if r.ScoreAttribute != "" && c.attrs != nil {
		if v, ok := c.attrs[r.ScoreAttribute]; ok {
			score, _ = cib.ParseScore(v)
		} else {
			// A node without the attribute gets -INFINITY
			// (generate_location_rule).
			score = cib.MinusInfinity
		}
	}
	return pass, score
}

func (c *ruleCtx) evalCondition(cond cib.Condition) bool {
	switch e := cond.(type) {
	case *cib.Rule:
		ok, _ := c.evalRule(e)
		return ok
	case *cib.Expression:
		return c.evalExpression(e)
	case *cib.DateExpression:
		return c.evalDate(e)
	}
	// Date, op and resource expressions are not evaluated yet.
	return false
}

func (c *ruleCtx) evalExpression(e *cib.Expression) bool {
	if c.attrs == nil {
		return false
	}
	v, have := c.attrs[e.Attribute]
	return compareAttr(e.Operation, v, have, e.Value, e.Type)
}

// compareAttr is pe_test_attr_expression's comparison.
func compareAttr(op, v string, have bool, want, typ string) bool {
	switch op {
	case "defined":
		return have
	case "not_defined":
		return !have
	}
	cmp, ok := 0, true
	if have {
		cmp, ok = compareTyped(v, want, typ)
	}
	switch op {
	case "eq":
		return have && ok && cmp == 0
	case "ne":
		return !have || !ok || cmp != 0
	}
	if !have || !ok {
		return false
	}
	switch op {
	case "lt":
		return cmp < 0
	case "lte":
		return cmp <= 0
	case "gt":
		return cmp > 0
	case "gte":
		return cmp >= 0
	}
	return false
}

func compareTyped(a, b, typ string) (int, bool) {
	if typ == "" {
		// Pacemaker guesses: numbers compare as numbers.
		if _, err := strconv.ParseFloat(b, 64); err == nil {
			if strings.Contains(b, ".") {
				typ = "number"
			} else {
				typ = "integer"
			}
		} else {
			typ = "string"
		}
	}
	switch typ {
	case "integer", "number":
		// crm_parse_ll / strtod semantics: a leading number, the rest
		// ignored; if either side has none, compare as strings.
		x, ok1 := leadingNumber(a, typ == "integer")
		y, ok2 := leadingNumber(b, typ == "integer")
		if !ok1 || !ok2 {
			break
		}
		switch {
		case x < y:
			return -1, true
		case x > y:
			return 1, true
		}
		return 0, true
	case "version":
		return compareVersion(a, b), true
	}
	return strings.Compare(strings.ToLower(a), strings.ToLower(b)), true
}

func compareVersion(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) || i < len(bs); i++ {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	return 0
}

// parseISODate parses the ISO 8601 forms CIBs use: "2019-09-23 18:00:00
// -05:00", "2019-09-23T18:00:00Z", "2019-09-23" and ordinal "2005-001".
func parseISODate(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	layouts := []string{
		"2006-01-02 15:04:05 -07:00", "2006-01-02 15:04:05 -0700", "2006-01-02 15:04:05Z07:00",
		"2006-01-02 15:04:05Z", "2006-01-02 15:04:05", "2006-01-02T15:04:05Z07:00",
		"2006-01-02T15:04:05", "2006-01-02 15:04", "2006-01-02", "2006-002",
	}
	for _, l := range layouts {
		if t, err := time.Parse(l, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// evalDate is pe__eval_date_expr for in_range, gt, lt and date_spec.
func (c *ruleCtx) evalDate(e *cib.DateExpression) bool {
	now := c.now
	switch e.Operation {
	case "", "in_range":
		var start, end time.Time
		var haveStart, haveEnd bool
		if e.Start != "" {
			start, haveStart = parseISODate(e.Start)
		}
		if e.End != "" {
			end, haveEnd = parseISODate(e.End)
		} else if haveStart && e.Duration != nil {
			end, haveEnd = addDuration(start, e.Duration)
		}
		if !haveStart && !haveEnd {
			return false
		}
		if haveStart && now.Before(start) {
			return false
		}
		if haveEnd && now.After(end) {
			return false
		}
		return true
	case "gt":
		start, ok := parseISODate(e.Start)
		return ok && now.After(start)
	case "lt":
		end, ok := parseISODate(e.End)
		return ok && now.Before(end)
	case "date_spec":
		if e.DateSpec == nil {
			return false
		}
		return matchDateSpec(e.DateSpec, now)
	}
	return false
}

func addDuration(t time.Time, d *cib.XMLElement) (time.Time, bool) {
	get := func(k string) int {
		v, _ := d.Attr(k)
		return laxInt(v)
	}
	return t.AddDate(get("years"), get("months"), get("weeks")*7+get("days")).
		Add(time.Duration(get("hours"))*time.Hour + time.Duration(get("minutes"))*time.Minute + time.Duration(get("seconds"))*time.Second), true
}

// matchDateSpec checks each given field ("12" or "9-17") against now.
func matchDateSpec(spec *cib.XMLElement, now time.Time) bool {
	_, week := now.ISOWeek()
	wd := int(now.Weekday())
	if wd == 0 {
		wd = 7
	}
	fields := map[string]int{
		"seconds": now.Second(), "minutes": now.Minute(), "hours": now.Hour(),
		"monthdays": now.Day(), "weekdays": wd, "yeardays": now.YearDay(),
		"months": int(now.Month()), "weeks": week, "years": now.Year(),
	}
	for k, v := range fields {
		r, ok := spec.Attr(k)
		if !ok {
			continue
		}
		lo, hi := r, r
		if i := strings.Index(r, "-"); i > 0 {
			lo, hi = r[:i], r[i+1:]
		}
		if v < laxInt(lo) || v > laxInt(hi) {
			return false
		}
	}
	return true
}

// leadingNumber parses the number at the start of s (an integer part only
// when integer is set), reporting false when there is none.
func leadingNumber(s string, integer bool) (float64, bool) {
	s = strings.TrimLeft(s, " \t\n")
	i := 0
	if i < len(s) && (s[i] == '-' || s[i] == '+') {
		i++
	}
	j := i
	for j < len(s) && s[j] >= '0' && s[j] <= '9' {
		j++
	}
	if !integer && j < len(s) && s[j] == '.' {
		j++
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
	}
	if j == i || (j == i+1 && s[i] == '.') {
		return 0, false
	}
	v, err := strconv.ParseFloat(s[:j], 64)
	return v, err == nil
}
