package pe

import (
	"testing"
)

func TestAddScores(t *testing.T) {
	cases := []struct{ a, b, want int }{
		{1, 2, 3},
		{inf, -inf, -inf}, // a ban always wins
		{-inf, inf, -inf},
		{inf, 5, inf},
		{999999, 5, inf}, // finite sums clamp
		{-999999, -5, -inf},
		{-100, 40, -60},
	}
	for _, c := range cases {
		if got := addScores(c.a, c.b); got != c.want {
			t.Errorf("addScores(%d, %d) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}

func TestLaxInt(t *testing.T) {
	cases := map[string]int{"2.0": 2, "10": 10, " -3x": -3, "": 0, "junk": 0, "+7": 7}
	for in, want := range cases {
		if got := laxInt(in); got != want {
			t.Errorf("laxInt(%q) = %d, want %d", in, got, want)
		}
	}
}

func TestCompareAttr(t *testing.T) {
	cases := []struct {
		op, v       string
		have        bool
		want, typ   string
		expectMatch bool
	}{
		{"eq", "node1", true, "node1", "", true},
		{"eq", "node1", true, "NODE1", "string", true},
		{"ne", "node1", true, "node2", "", true},
		{"ne", "", false, "x", "", true},
		{"eq", "", false, "x", "", false},
		{"defined", "", false, "", "", false},
		{"not_defined", "", false, "", "", true},
		{"gt", "10", true, "9", "", true}, // numbers compare as numbers
		{"gt", "10", true, "9", "string", false},
		{"lt", "1.2", true, "1.10", "version", true},
		{"gte", "3", true, "3", "integer", true},
	}
	for _, c := range cases {
		if got := compareAttr(c.op, c.v, c.have, c.want, c.typ); got != c.expectMatch {
			t.Errorf("compareAttr(%s, %q, %v, %q, %q) = %v", c.op, c.v, c.have, c.want, c.typ, got)
		}
	}
}

func TestSortNodes(t *testing.T) {
	a := &Node{Name: "a", Online: true}
	b := &Node{Name: "b", Online: true}
	c := &Node{Name: "c", Online: true}
	off := &Node{Name: "0ff"} // offline: counts as -INFINITY whatever its weight
	w := weights{a: 10, b: 10, c: 20, off: 100}
	got := sortNodes(w, nil)
	want := []*Node{c, a, b, off}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("order %d = %s, want %s", i, got[i].Name, want[i].Name)
		}
	}
	// The preferred (current) node wins a tie before the name does.
	if got := sortNodes(weights{a: 10, b: 10}, b); got[0] != b {
		t.Errorf("preferred node not first: %s", got[0].Name)
	}
	// Fewer assigned resources wins a tie before the preferred node.
	b.numResources = 1
	if got := sortNodes(weights{a: 10, b: 10}, b); got[0] != a {
		t.Errorf("less loaded node not first: %s", got[0].Name)
	}
}
