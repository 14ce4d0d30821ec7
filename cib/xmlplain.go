package cib

import (
	"strings"
	"unicode/utf8"
)

// parsePlain reads the XML that CIBs are in practice: elements, attributes
// in quotes, the five predefined entities and character references,
// comments, an optional <?xml version="1.0"?> declaration, ASCII names
// without colons. It is a fast path for parseTreeXML, which reads with
// encoding/xml, and must give the same tree (the same names, attributes
// and lines): it only accepts what encoding/xml accepts in strict mode and
// parseTreeXML then accepts, and returns ok false on anything else
// (malformed input, CDATA, DOCTYPE, other processing instructions,
// namespaces, duplicate attributes, too deep nesting, non-ASCII names,
// carriage returns in values), which the caller hands to parseTreeXML for
// the result or the error it reports. encoding/xml makes a string per name
// and value and reads a byte at a time; starting `tachy simulate` on a
// typical input, that was most of the time spent on the input itself.
// FuzzParsePlain checks the two agree.
func parsePlain(data []byte) (root *node, ok bool) {
	s := string(data)
	p := plainParser{s: s, line: 1}
	// Upper bounds: every element starts with '<', every attribute has '='.
	p.nodes = make([]node, 0, strings.Count(s, "<"))
	p.attrs = make([]Attr, 0, strings.Count(s, "="))
	var stack []*node
	i := 0
	for i < len(s) {
		if s[i] != '<' {
			j, ok := p.text(i, len(stack) == 0)
			if !ok {
				return nil, false
			}
			i = j
			continue
		}
		if i+1 >= len(s) {
			return nil, false
		}
		switch s[i+1] {
		case '/':
			name, j, ok := p.name(i + 2)
			if !ok {
				return nil, false
			}
			j = p.space(j)
			if j >= len(s) || s[j] != '>' || len(stack) == 0 || stack[len(stack)-1].name != name {
				return nil, false
			}
			stack = stack[:len(stack)-1]
			i = j + 1
		case '?':
			j, ok := p.declaration(i)
			if !ok {
				return nil, false
			}
			i = j
		case '!':
			// Only comments. encoding/xml ends one at the first "--",
			// which must be followed by '>'.
			if !strings.HasPrefix(s[i:], "<!--") {
				return nil, false
			}
			k := strings.Index(s[i+4:], "--")
			if k < 0 || i+4+k+2 >= len(s) || s[i+4+k+2] != '>' {
				return nil, false
			}
			i = i + 4 + k + 3
		default:
			n, j, empty, ok := p.element(i + 1)
			if !ok || (root != nil && len(stack) == 0) || len(stack) >= MaxDepth {
				return nil, false
			}
			if len(stack) > 0 {
				parent := stack[len(stack)-1]
				parent.children = append(parent.children, n)
			} else {
				root = n
			}
			if !empty {
				stack = append(stack, n)
			}
			i = j
		}
	}
	if len(stack) != 0 || root == nil {
		return nil, false
	}
	return root, true
}

type plainParser struct {
	s     string
	nodes []node // allocated from, in blocks
	attrs []Attr // every element's attributes, one after another
	// line is the line number at linePos, counted as encoding/xml does
	// (InputPos after the start tag's '>').
	line, linePos int
}

// lineAt returns the line of offset pos (pos never decreases).
func (p *plainParser) lineAt(pos int) int {
	p.line += strings.Count(p.s[p.linePos:pos], "\n")
	p.linePos = pos
	return p.line
}

func (p *plainParser) space(i int) int {
	for i < len(p.s) {
		switch p.s[i] {
		case ' ', '\r', '\n', '\t':
			i++
		default:
			return i
		}
	}
	return i
}

// name reads an XML name at i: ASCII, no colon.
func (p *plainParser) name(i int) (string, int, bool) {
	s := p.s
	j := i
	for j < len(s) {
		c := s[j]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '_' || j > i && ('0' <= c && c <= '9' || c == '-' || c == '.') {
			j++
			continue
		}
		if c == ':' || c >= utf8.RuneSelf || '0' <= c && c <= '9' || c == '-' || c == '.' {
			return "", 0, false // a namespace, a non-ASCII name, a bad first character
		}
		break
	}
	if j == i {
		return "", 0, false
	}
	return s[i:j], j, true
}

// element reads a start tag from its name at i to past its '>'.
func (p *plainParser) element(i int) (*node, int, bool, bool) {
	s := p.s
	name, j, ok := p.name(i)
	if !ok {
		return nil, 0, false, false
	}
	first := len(p.attrs)
	empty := false
	for {
		j = p.space(j)
		if j >= len(s) {
			return nil, 0, false, false
		}
		if s[j] == '/' {
			if j+1 >= len(s) || s[j+1] != '>' {
				return nil, 0, false, false
			}
			empty = true
			j += 2
			break
		}
		if s[j] == '>' {
			j++
			break
		}
		an, k, ok := p.name(j)
		if !ok || an == "xmlns" {
			return nil, 0, false, false
		}
		for _, a := range p.attrs[first:] {
			if a.Name == an {
				return nil, 0, false, false
			}
		}
		k = p.space(k)
		if k >= len(s) || s[k] != '=' {
			return nil, 0, false, false
		}
		k = p.space(k + 1)
		if k >= len(s) || s[k] != '"' && s[k] != '\'' {
			return nil, 0, false, false
		}
		v, k, ok := p.value(k+1, s[k])
		if !ok {
			return nil, 0, false, false
		}
		p.attrs = append(p.attrs, Attr{Name: an, Value: v})
		j = k
	}
	if len(p.nodes) == cap(p.nodes) {
		p.nodes = make([]node, 0, 64)
	}
	p.nodes = append(p.nodes, node{name: name, line: p.lineAt(j)})
	n := &p.nodes[len(p.nodes)-1]
	if len(p.attrs) > first {
		n.attrs = p.attrs[first:len(p.attrs):len(p.attrs)]
	}
	return n, j, empty, true
}

// value reads an attribute value from i, after its opening quote, to past
// its closing quote.
func (p *plainParser) value(i int, quote byte) (string, int, bool) {
	s := p.s
	plain := true
	j := i
	for {
		if j >= len(s) {
			return "", 0, false
		}
		c := s[j]
		switch {
		case c == quote:
			if plain {
				return s[i:j], j + 1, true
			}
			return p.decode(i, j)
		case c == '&':
			plain = false
			k, ok := p.entity(j, nil)
			if !ok {
				return "", 0, false
			}
			j = k
		case c == '<' || c == '\r' || c < ' ' && c != '\t' && c != '\n':
			return "", 0, false
		case c >= utf8.RuneSelf:
			k, ok := p.rune(j)
			if !ok {
				return "", 0, false
			}
			j = k
		default:
			j++
		}
	}
}

// decode returns s[i:j] with its (already checked) entities replaced.
func (p *plainParser) decode(i, j int) (string, int, bool) {
	var b strings.Builder
	b.Grow(j - i)
	for k := i; k < j; {
		if p.s[k] == '&' {
			k, _ = p.entity(k, &b)
			continue
		}
		b.WriteByte(p.s[k])
		k++
	}
	return b.String(), j + 1, true
}

// entity checks the entity or character reference at i ('&') and returns
// the offset past its ';', writing its text to b if b is not nil. Those
// encoding/xml would reject, or could read differently, are not ok.
func (p *plainParser) entity(i int, b *strings.Builder) (int, bool) {
	s := p.s[i+1:]
	if len(s) > 0 && s[0] == '#' {
		base, k := 10, 1
		if len(s) > 1 && s[1] == 'x' {
			base, k = 16, 2
		}
		var r rune
		start := k
		for ; k < len(s) && k-start < 8; k++ {
			c := s[k]
			var d rune
			switch {
			case '0' <= c && c <= '9':
				d = rune(c - '0')
			case base == 16 && 'a' <= c && c <= 'f':
				d = rune(c-'a') + 10
			case base == 16 && 'A' <= c && c <= 'F':
				d = rune(c-'A') + 10
			default:
				d = -1
			}
			if d < 0 {
				break
			}
			r = r*rune(base) + d
		}
		if k == start || k >= len(s) || s[k] != ';' || !inCharRange(r) {
			return 0, false
		}
		if b != nil {
			b.WriteRune(r)
		}
		return i + 1 + k + 1, true
	}
	for _, e := range [...]struct {
		name string
		c    byte
	}{{"lt;", '<'}, {"gt;", '>'}, {"amp;", '&'}, {"apos;", '\''}, {"quot;", '"'}} {
		if strings.HasPrefix(s, e.name) {
			if b != nil {
				b.WriteByte(e.c)
			}
			return i + 1 + len(e.name), true
		}
	}
	return 0, false
}

// rune checks the UTF-8 sequence at i and returns the offset past it.
func (p *plainParser) rune(i int) (int, bool) {
	r, size := utf8.DecodeRuneInString(p.s[i:])
	if r == utf8.RuneError && size == 1 || !inCharRange(r) {
		return 0, false
	}
	return i + size, true
}

// inCharRange is encoding/xml's isInCharacterRange.
func inCharRange(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D || r >= 0x20 && r <= 0xD7FF ||
		r >= 0xE000 && r <= 0xFFFD || r >= 0x10000 && r <= 0x10FFFF
}

// text checks character data from i up to the next '<' (or the end):
// outside the root element, only white space.
func (p *plainParser) text(i int, outside bool) (int, bool) {
	s := p.s
	for i < len(s) {
		c := s[i]
		switch {
		case c == '<':
			return i, true
		case outside:
			if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
				return 0, false
			}
			i++
		case c == '&':
			k, ok := p.entity(i, nil)
			if !ok {
				return 0, false
			}
			i = k
		case c == ']':
			if strings.HasPrefix(s[i:], "]]>") {
				return 0, false
			}
			i++
		case c < ' ' && c != '\t' && c != '\n' && c != '\r':
			return 0, false
		case c >= utf8.RuneSelf:
			k, ok := p.rune(i)
			if !ok {
				return 0, false
			}
			i = k
		default:
			i++
		}
	}
	return i, true
}

// declaration accepts an XML declaration encoding/xml reads as UTF-8
// version 1.0, in the usual spellings, and returns the offset past it.
func (p *plainParser) declaration(i int) (int, bool) {
	for _, d := range [...]string{`<?xml version="1.0"?>`, `<?xml version="1.0" encoding="UTF-8"?>`, `<?xml version="1.0" encoding="utf-8"?>`} {
		if strings.HasPrefix(p.s[i:], d) {
			return i + len(d), true
		}
	}
	return 0, false
}
