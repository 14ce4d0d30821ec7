package pe

import (
	"strconv"
	"strings"

	"github.com/tachy-ha/tachy/cib"
)

// ruleCtx is what a rule is evaluated against: a node's attributes (nil
// for rules outside location constraints).
type ruleCtx struct {
	attrs map[string]string
}

func (ws *workingSet) baseCtx() *ruleCtx { return &ruleCtx{} }

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
		x, err1 := strconv.ParseFloat(strings.TrimSpace(a), 64)
		y, err2 := strconv.ParseFloat(strings.TrimSpace(b), 64)
		if err1 != nil || err2 != nil {
			return 0, false
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
