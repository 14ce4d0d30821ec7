package cib

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Limits on input, so that a hostile or corrupt file cannot exhaust memory
// or the stack. A real CIB with thousands of operations in its history is a
// few megabytes and a dozen levels deep.
const (
	MaxInputBytes = 64 << 20
	MaxDepth      = 64
)

// Attr is one XML attribute, kept in document order so raw elements
// round-trip as written.
type Attr struct {
	Name, Value string
}

// XMLElement is a part of the CIB that the model does not interpret (alerts,
// ACLs, fencing topology, tags, bundle container details): kept verbatim so
// that nothing is lost when a Pacemaker CIB moves over.
type XMLElement struct {
	Name     string
	Attrs    []Attr
	Children []*XMLElement
}

// Attr returns the value of the named attribute.
func (e *XMLElement) Attr(name string) (string, bool) {
	for _, a := range e.Attrs {
		if a.Name == name {
			return a.Value, true
		}
	}
	return "", false
}

// node is the parsed form of any element, with its source line for errors.
type node struct {
	name     string
	attrs    []Attr
	children []*node
	line     int
}

func (n *node) attr(name string) (string, bool) {
	for _, a := range n.attrs {
		if a.name() == name {
			return a.Value, true
		}
	}
	return "", false
}

func (a Attr) name() string { return a.Name }

// parseTree reads one XML document into a node tree. It rejects namespaces,
// duplicate attributes, over-deep nesting and oversized input.
func parseTree(r io.Reader) (*node, error) {
	lr := &io.LimitedReader{R: r, N: MaxInputBytes + 1}
	data, err := io.ReadAll(lr)
	if err != nil {
		return nil, fmt.Errorf("reading CIB: %w", err)
	}
	if len(data) > MaxInputBytes {
		return nil, fmt.Errorf("CIB is larger than %d bytes", MaxInputBytes)
	}
	if root, ok := parsePlain(data); ok {
		return root, nil
	}
	return parseTreeXML(data)
}

// parseTreeXML is parseTree with encoding/xml: for what parsePlain does not
// read, and for the errors.
func parseTreeXML(data []byte) (*node, error) {
	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = true
	var stack []*node
	var root *node
	for {
		line, _ := d.InputPos()
		tok, err := d.RawToken()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var se *xml.SyntaxError
			if errors.As(err, &se) {
				return nil, fmt.Errorf("malformed XML at line %d: %s", se.Line, se.Msg)
			}
			return nil, fmt.Errorf("malformed XML near line %d: %v", line, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			sl, _ := d.InputPos()
			if t.Name.Space != "" {
				return nil, fmt.Errorf("line %d: element <%s:%s>: namespaces are not supported", sl, t.Name.Space, t.Name.Local)
			}
			if root != nil && len(stack) == 0 {
				return nil, fmt.Errorf("malformed XML at line %d: more than one root element", sl)
			}
			if len(stack) >= MaxDepth {
				return nil, fmt.Errorf("line %d: elements nested deeper than %d", sl, MaxDepth)
			}
			n := &node{name: t.Name.Local, line: sl}
			seen := make(map[string]bool, len(t.Attr))
			for _, a := range t.Attr {
				if a.Name.Space != "" || a.Name.Local == "xmlns" {
					return nil, fmt.Errorf("line %d: element <%s>: namespaced attribute %q is not supported", sl, n.name, xmlName(a.Name))
				}
				if seen[a.Name.Local] {
					return nil, fmt.Errorf("line %d: element <%s>: duplicate attribute %q", sl, n.name, a.Name.Local)
				}
				seen[a.Name.Local] = true
				n.attrs = append(n.attrs, Attr{Name: a.Name.Local, Value: a.Value})
			}
			if len(stack) > 0 {
				p := stack[len(stack)-1]
				p.children = append(p.children, n)
			} else {
				root = n
			}
			stack = append(stack, n)
		case xml.EndElement:
			if len(stack) == 0 || t.Name.Space != "" || stack[len(stack)-1].name != t.Name.Local {
				return nil, fmt.Errorf("malformed XML at line %d: unexpected </%s>", line, xmlName(t.Name))
			}
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) == 0 && strings.TrimSpace(string(t)) != "" {
				return nil, fmt.Errorf("malformed XML at line %d: text outside the root element", line)
			}
		case xml.Directive:
			// A DOCTYPE could declare entities; the CIB never needs one.
			return nil, fmt.Errorf("malformed XML at line %d: directives (<!...>) are not supported", line)
		}
	}
	if len(stack) != 0 {
		return nil, fmt.Errorf("malformed XML: element <%s> (line %d) is not closed", stack[len(stack)-1].name, stack[len(stack)-1].line)
	}
	if root == nil {
		return nil, errors.New("malformed XML: no root element")
	}
	return root, nil
}

func xmlName(n xml.Name) string {
	if n.Space == "" {
		return n.Local
	}
	return n.Space + ":" + n.Local
}

func (n *node) raw() *XMLElement {
	e := &XMLElement{Name: n.name}
	if len(n.attrs) > 0 {
		e.Attrs = append([]Attr(nil), n.attrs...)
	}
	for _, c := range n.children {
		e.Children = append(e.Children, c.raw())
	}
	return e
}

func fromRaw(e *XMLElement) *node {
	n := &node{name: e.Name, attrs: e.Attrs}
	for _, c := range e.Children {
		n.children = append(n.children, fromRaw(c))
	}
	return n
}

// writeTree writes n as indented XML.
func writeTree(w io.Writer, n *node) error {
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := writeNode(enc, n, 0); err != nil {
		return err
	}
	if err := enc.Flush(); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

func writeNode(enc *xml.Encoder, n *node, depth int) error {
	if depth >= MaxDepth {
		return fmt.Errorf("element <%s>: nested deeper than %d", n.name, MaxDepth)
	}
	if !validName(n.name) {
		return fmt.Errorf("element name %q is not a valid XML name", n.name)
	}
	start := xml.StartElement{Name: xml.Name{Local: n.name}}
	for _, a := range n.attrs {
		if !validName(a.Name) {
			return fmt.Errorf("element <%s>: attribute name %q is not a valid XML name", n.name, a.Name)
		}
		start.Attr = append(start.Attr, xml.Attr{Name: xml.Name{Local: a.Name}, Value: a.Value})
	}
	if err := enc.EncodeToken(start); err != nil {
		return fmt.Errorf("element <%s>: %w", n.name, err)
	}
	for _, c := range n.children {
		if err := writeNode(enc, c, depth+1); err != nil {
			return err
		}
	}
	return enc.EncodeToken(start.End())
}

// validName accepts the names the importer can read back: no colons
// (namespaces are rejected), XML name characters only.
func validName(s string) bool {
	if s == "" || s == "xmlns" {
		return false
	}
	for i, r := range s {
		switch {
		case r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= 0x80:
		case i > 0 && (r == '-' || r == '.' || r >= '0' && r <= '9'):
		default:
			return false
		}
	}
	return true
}
