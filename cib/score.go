package cib

import (
	"fmt"
	"strconv"
	"strings"
)

// Score is a Pacemaker preference: an integer clamped to [-INFINITY,
// +INFINITY] where the infinities are absorbing, so that a ban (-INFINITY)
// can never be outvoted by any number of preferences.
type Score int

// Infinity is Pacemaker's CRM_SCORE_INFINITY.
const (
	Infinity      Score = 1000000
	MinusInfinity Score = -Infinity
)

// HealthScores are the values Pacemaker 2.1.5 substitutes for the score
// names "red", "yellow" and "green" (cluster options node-health-red etc.).
type HealthScores struct {
	Red, Yellow, Green Score
}

// DefaultHealthScores are the defaults of the node-health-* options.
var DefaultHealthScores = HealthScores{Red: MinusInfinity, Yellow: 0, Green: 0}

// ParseScore parses a score as Pacemaker's char2score does, with the
// default health scores. Unlike char2score, which turns junk into 0 with a
// warning, it rejects text that is not a score (the schema rejects it too).
func ParseScore(s string) (Score, error) {
	return ParseScoreHealth(s, DefaultHealthScores)
}

// ParseScoreHealth is ParseScore with the given values for red, yellow and
// green.
func ParseScoreHealth(s string, h HealthScores) (Score, error) {
	switch s {
	case "-INFINITY":
		return MinusInfinity, nil
	case "INFINITY", "+INFINITY":
		return Infinity, nil
	}
	switch strings.ToLower(s) {
	case "red":
		return h.Red, nil
	case "yellow":
		return h.Yellow, nil
	case "green":
		return h.Green, nil
	}
	t := strings.TrimLeft(s, " \t\n\r\f\v") // strtoll skips leading space
	digits := strings.TrimPrefix(strings.TrimPrefix(t, "+"), "-")
	if digits == "" || strings.TrimLeft(digits, "0123456789") != "" {
		return 0, fmt.Errorf("%q is not a score", s)
	}
	v, err := strconv.ParseInt(t, 10, 64)
	if err != nil {
		// Only overflow is left: strtoll clips to LLONG_MIN/MAX, which
		// char2score then clamps to the infinities.
		if strings.HasPrefix(t, "-") {
			return MinusInfinity, nil
		}
		return Infinity, nil
	}
	return clampScore(v), nil
}

func clampScore(v int64) Score {
	if v >= int64(Infinity) {
		return Infinity
	}
	if v <= int64(MinusInfinity) {
		return MinusInfinity
	}
	return Score(v)
}

// Add is pcmk__add_scores: -INFINITY wins over everything, then +INFINITY,
// and finite sums are clamped to the infinities.
func (s Score) Add(o Score) Score {
	switch {
	case s <= MinusInfinity || o <= MinusInfinity:
		return MinusInfinity
	case s >= Infinity || o >= Infinity:
		return Infinity
	}
	return clampScore(int64(s) + int64(o))
}

// IsInfinite reports whether s is +INFINITY or -INFINITY.
func (s Score) IsInfinite() bool { return s >= Infinity || s <= MinusInfinity }

// String formats s as Pacemaker writes scores (INFINITY, -INFINITY, or an
// integer).
func (s Score) String() string {
	switch {
	case s >= Infinity:
		return "INFINITY"
	case s <= MinusInfinity:
		return "-INFINITY"
	}
	return strconv.Itoa(int(s))
}
