package config

// The syntax layer: a strict subset of TOML, read into tables of key/value
// entries that remember their line numbers. It knows the table names (so
// that an unknown or repeated table is reported where it appears) but not
// the keys; schema.go gives the entries their meaning.
//
// Supported: # comments, blank lines, [table] and [[node]] headers, bare
// keys, basic strings "..." with the escapes \" \\ \n \t \uXXXX, literal
// strings '...', decimal integers (sign and underscores as in TOML),
// true/false, and arrays of strings or of integers that may span lines
// (comments and a trailing comma allowed). Everything else TOML has (dotted
// and quoted keys, floats, dates, inline tables, multi-line strings, nested
// arrays) is rejected with a message saying so.

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

type kind int

const (
	kString kind = iota + 1
	kInt
	kBool
	kArray
)

func (k kind) String() string {
	switch k {
	case kString:
		return "a string"
	case kInt:
		return "an integer"
	case kBool:
		return "a boolean"
	case kArray:
		return "an array"
	}
	return "nothing"
}

// value is one parsed value and the line it starts on.
type value struct {
	line int
	kind kind
	str  string
	num  int64
	b    bool
	arr  []value
}

// describe names a value in an error message: `the string "x"`.
func (v value) describe() string {
	switch v.kind {
	case kString:
		return "the string " + show(v.str)
	case kInt:
		return "the integer " + strconv.FormatInt(v.num, 10)
	case kBool:
		return "the boolean " + strconv.FormatBool(v.b)
	case kArray:
		return "an array"
	}
	return "nothing"
}

type entry struct {
	key  string
	line int
	val  value
}

type table struct {
	name    string // "" is the top level, before any header
	line    int    // line of the header
	array   bool   // [[name]]
	ignore  bool   // reported already (unknown or repeated): its keys are skipped
	entries []*entry
	seen    map[string]*entry
}

type document struct {
	tables []*table
	lines  int      // lines in the file
	soft   []*Error // problems found while the parse went on (duplicates, unknown tables)
}

// tableKind says which headers are known: false for [name], true for [[name]].
var tableKind = map[string]bool{
	"cluster":   false,
	"local":     false,
	"cib":       false,
	"heartbeat": false,
	"quorum":    false,
	"node":      true,
}

const allowedTables = "[cluster], [local], [cib], [heartbeat], [quorum] and one [[node]] per node"

type parser struct {
	file  string
	src   []byte
	pos   int
	line  int
	doc   *document
	cur   *table
	named map[string]*table // first [name] of each plain table
}

// parseDocument reads the syntax. A syntax error stops it and is returned;
// problems it can step over are collected in document.soft.
func parseDocument(file string, src []byte) (*document, *Error) {
	p := &parser{file: file, src: src, line: 1, doc: &document{}, named: map[string]*table{}}
	p.cur = &table{line: 1, seen: map[string]*entry{}}
	p.doc.tables = append(p.doc.tables, p.cur)
	if !utf8.Valid(src) {
		line := 1
		for i := 0; i < len(src); {
			r, n := utf8.DecodeRune(src[i:])
			if r == utf8.RuneError && n <= 1 {
				break
			}
			if r == '\n' {
				line++
			}
			i += n
		}
		return nil, p.errAt(line, "", "the file is not valid UTF-8; save it as UTF-8 text")
	}
	if len(src) >= 3 && src[0] == 0xEF && src[1] == 0xBB && src[2] == 0xBF {
		p.pos = 3 // byte order mark
	}
	for {
		p.skipBlank()
		if p.eof() {
			break
		}
		var err *Error
		switch c := p.src[p.pos]; {
		case c == '\n' || c == '\r':
			err = p.newline()
		case c == '#':
			p.comment()
		case c == '[':
			err = p.header()
		case isKeyChar(c):
			err = p.keyValue()
		case c == '"' || c == '\'':
			err = p.errf(p.where(""), "quoted keys are not supported; keys are made of A-Z a-z 0-9 _ -")
		default:
			err = p.errf(p.where(""), "unexpected %s; a line holds key = value, a [table] header or a # comment", p.peekDesc())
		}
		if err != nil {
			return p.doc, err
		}
	}
	p.doc.lines = p.line
	if p.line > 1 && len(src) > 0 && src[len(src)-1] == '\n' {
		p.doc.lines-- // the file ends with a newline: no line after it
	}
	return p.doc, nil
}

func isKeyChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

func (p *parser) eof() bool { return p.pos >= len(p.src) }

func (p *parser) peek() byte {
	if p.eof() {
		return 0
	}
	return p.src[p.pos]
}

// peekDesc describes the next character for an error message.
func (p *parser) peekDesc() string {
	if p.eof() {
		return "end of file"
	}
	r, _ := utf8.DecodeRune(p.src[p.pos:])
	switch r {
	case '\n', '\r':
		return "end of line"
	}
	return "character " + strconv.QuoteRune(r)
}

func (p *parser) errAt(line int, where, format string, a ...any) *Error {
	return &Error{File: p.file, Line: line, Key: where, Msg: fmt.Sprintf(format, a...)}
}

func (p *parser) errf(where, format string, a ...any) *Error {
	return p.errAt(p.line, where, format, a...)
}

// where names the current table, or key in it, for an error message.
func (p *parser) where(key string) string {
	switch {
	case key != "" && p.cur.name != "":
		return p.cur.name + "." + key
	case key != "":
		return key
	case p.cur.name == "":
		return ""
	case p.cur.array:
		return "[[" + p.cur.name + "]]"
	}
	return "[" + p.cur.name + "]"
}

func (p *parser) skipBlank() {
	for !p.eof() && (p.src[p.pos] == ' ' || p.src[p.pos] == '\t') {
		p.pos++
	}
}

// comment skips a # comment up to (not including) the end of the line.
func (p *parser) comment() {
	for !p.eof() && p.src[p.pos] != '\n' && p.src[p.pos] != '\r' {
		p.pos++
	}
}

func (p *parser) newline() *Error {
	switch {
	case p.peek() == '\n':
		p.pos++
	case p.peek() == '\r' && p.pos+1 < len(p.src) && p.src[p.pos+1] == '\n':
		p.pos += 2
	default:
		return p.errf(p.where(""), "carriage return without a line feed; lines end with \\n or \\r\\n")
	}
	p.line++
	return nil
}

// endOfLine accepts blanks, an optional comment and the end of the line.
func (p *parser) endOfLine(where, after string) *Error {
	p.skipBlank()
	if p.peek() == '#' {
		p.comment()
	}
	if p.eof() {
		return nil
	}
	if c := p.peek(); c == '\n' || c == '\r' {
		return p.newline()
	}
	return p.errf(where, "unexpected %s after %s; put each key on its own line, and start comments with #", p.peekDesc(), after)
}

func (p *parser) bareKey() string {
	start := p.pos
	for !p.eof() && isKeyChar(p.src[p.pos]) {
		p.pos++
	}
	return string(p.src[start:p.pos])
}

func (p *parser) header() *Error {
	line := p.line
	p.pos++ // [
	array := false
	if p.peek() == '[' {
		array = true
		p.pos++
	}
	p.skipBlank()
	if c := p.peek(); c == '"' || c == '\'' {
		return p.errf("", "quoted table names are not supported; allowed tables: %s", allowedTables)
	}
	name := p.bareKey()
	if name == "" {
		return p.errf("", "expected a table name after [, found %s; allowed tables: %s", p.peekDesc(), allowedTables)
	}
	shown := "[" + clip(name) + "]"
	if array {
		shown = "[[" + clip(name) + "]]"
	}
	p.skipBlank()
	if p.peek() == '.' {
		return p.errf(shown, "nested tables ([a.b]) are not supported; allowed tables: %s", allowedTables)
	}
	closing := "]"
	if array {
		closing = "]]"
	}
	if !strings.HasPrefix(string(p.src[p.pos:min(p.pos+2, len(p.src))]), closing) {
		return p.errf(shown, "expected %s to close the table header, found %s", closing, p.peekDesc())
	}
	p.pos += len(closing)

	t := &table{name: name, line: line, array: array, seen: map[string]*entry{}}
	p.doc.tables = append(p.doc.tables, t)
	p.cur = t
	if err := p.endOfLine(shown, "the table header"); err != nil {
		return err
	}
	wantArray, known := tableKind[name]
	switch {
	case !known:
		t.ignore = true
		p.soft(line, shown, "unknown table; allowed tables: %s", allowedTables)
	case array && !wantArray:
		t.ignore = true
		p.soft(line, shown, "%s is a single table, not an array of tables; write [%s]", name, name)
	case !array && wantArray:
		t.ignore = true
		p.soft(line, shown, "%s is an array of tables; write [[%s]], once for each %s", name, name, name)
	case !array:
		if first, dup := p.named[name]; dup {
			t.ignore = true
			p.soft(line, shown, "duplicate table (first on line %d); each table may appear once", first.line)
		} else {
			p.named[name] = t
		}
	}
	return nil
}

func (p *parser) soft(line int, where, format string, a ...any) {
	p.doc.soft = append(p.doc.soft, p.errAt(line, where, format, a...))
}

func (p *parser) keyValue() *Error {
	line := p.line
	key := p.bareKey()
	where := p.where(clip(key))
	p.skipBlank()
	switch p.peek() {
	case '=':
		p.pos++
	case '.':
		return p.errf(where, "dotted keys are not supported; write the key inside its [table]")
	default:
		return p.errf(where, "expected = after the key, found %s; write key = value", p.peekDesc())
	}
	p.skipBlank()
	if c := p.peek(); p.eof() || c == '\n' || c == '\r' || c == '#' {
		return p.errf(where, "missing value after =; values are \"strings\", integers, true/false or [arrays]")
	}
	v, err := p.value(where)
	if err != nil {
		return err
	}
	if err := p.endOfLine(where, "the value"); err != nil {
		return err
	}
	t := p.cur
	if t.ignore {
		return nil
	}
	if first, dup := t.seen[key]; dup {
		p.soft(line, where, "duplicate key (first set on line %d); set each key once", first.line)
		return nil
	}
	e := &entry{key: key, line: line, val: v}
	t.seen[key] = e
	t.entries = append(t.entries, e)
	return nil
}

func (p *parser) value(where string) (value, *Error) {
	line := p.line
	switch p.peek() {
	case '"':
		if strings.HasPrefix(string(p.src[p.pos:min(p.pos+3, len(p.src))]), `"""`) {
			return value{}, p.errf(where, `multi-line strings are not supported; use a one-line "string" with \n escapes`)
		}
		s, err := p.basicString(where)
		return value{line: line, kind: kString, str: s}, err
	case '\'':
		if strings.HasPrefix(string(p.src[p.pos:min(p.pos+3, len(p.src))]), `'''`) {
			return value{}, p.errf(where, `multi-line strings are not supported; use a one-line "string" with \n escapes`)
		}
		s, err := p.literalString(where)
		return value{line: line, kind: kString, str: s}, err
	case '[':
		return p.array(where)
	case '{':
		return value{}, p.errf(where, "inline tables ({...}) are not supported; values are \"strings\", integers, true/false or [arrays]")
	}
	return p.word(where)
}

// isWordChar is what may make up an unquoted value (true, 42, and the
// mistakes we want to explain: 1.5, 1ms, info, 2024-01-01).
func isWordChar(c byte) bool {
	switch c {
	case ' ', '\t', '\n', '\r', ',', '[', ']', '{', '}', '#', '"', '\'', '=':
		return false
	}
	return c > ' ' && c != 0x7f
}

func (p *parser) word(where string) (value, *Error) {
	line := p.line
	start := p.pos
	for !p.eof() && isWordChar(p.src[p.pos]) {
		p.pos++
	}
	w := string(p.src[start:p.pos])
	if w == "" {
		p.pos = start
		return value{}, p.errf(where, "expected a value, found %s; values are \"strings\", integers, true/false or [arrays]", p.peekDesc())
	}
	switch w {
	case "true", "false":
		return value{line: line, kind: kBool, b: w == "true"}, nil
	}
	n, problem := parseInt(w)
	if problem == "" {
		return value{line: line, kind: kInt, num: n}, nil
	}
	return value{}, p.errf(where, "%s", problem)
}

// parseInt reads a TOML decimal integer, or says what is wrong with w.
func parseInt(word string) (int64, string) {
	w := clip(word) // for the messages
	digits := word
	if digits[0] == '+' || digits[0] == '-' {
		digits = digits[1:]
	}
	numeric := digits != "" && digits[0] >= '0' && digits[0] <= '9'
	switch lw := strings.ToLower(digits); {
	case lw == "inf" || lw == "nan":
		return 0, fmt.Sprintf("%s: floats are not supported; use an integer", w)
	case !numeric:
		return 0, fmt.Sprintf("%s is not a value; text needs quotes, e.g. %s; values are \"strings\", integers, true/false or [arrays]", w, show(word))
	case len(lw) > 1 && lw[0] == '0' && (lw[1] == 'x' || lw[1] == 'o' || lw[1] == 'b'):
		return 0, fmt.Sprintf("%s: hexadecimal, octal and binary integers are not supported; use a decimal integer", w)
	}
	ok := true
	for i := 0; i < len(digits); i++ {
		c := digits[i]
		switch {
		case c >= '0' && c <= '9':
		case c == '_':
			// An underscore must sit between two digits.
			if i == 0 || i == len(digits)-1 || !isDigit(digits[i-1]) || !isDigit(digits[i+1]) {
				return 0, fmt.Sprintf("%s: misplaced underscore; an underscore in a number must be between two digits, as in 1_000", w)
			}
		default:
			ok = false
		}
	}
	if !ok {
		switch {
		case strings.ContainsAny(digits, ".eE") && strings.IndexFunc(digits, func(r rune) bool { return r >= 'a' && r <= 'z' && r != 'e' || r >= 'A' && r <= 'Z' && r != 'E' }) < 0:
			return 0, fmt.Sprintf("%s: floats are not supported; use an integer, or a duration string such as \"500us\"", w)
		case strings.ContainsAny(digits, ":") || strings.Count(digits, "-") == 2:
			return 0, fmt.Sprintf("%s: dates and times are not supported; durations are strings such as \"10s\"", w)
		}
		return 0, fmt.Sprintf("%s is not a value; text needs quotes, e.g. %s; values are \"strings\", integers, true/false or [arrays]", w, show(word))
	}
	if len(digits) > 1 && digits[0] == '0' {
		fixed := strings.TrimLeft(digits, "0_")
		if fixed == "" {
			fixed = "0"
		}
		return 0, fmt.Sprintf("%s: leading zeros are not allowed; write %s", w, clip(word[:len(word)-len(digits)]+fixed))
	}
	n, err := strconv.ParseInt(strings.ReplaceAll(word, "_", ""), 10, 64)
	if err != nil {
		return 0, fmt.Sprintf("%s: integer too large; integers are 64-bit", w)
	}
	return n, ""
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func (p *parser) basicString(where string) (string, *Error) {
	p.pos++ // "
	var b strings.Builder
	for {
		if p.eof() || p.src[p.pos] == '\n' || p.src[p.pos] == '\r' {
			return "", p.errf(where, `unterminated string; close it with " on the same line`)
		}
		c := p.src[p.pos]
		switch {
		case c == '"':
			p.pos++
			return b.String(), nil
		case c == '\\':
			p.pos++
			e := p.peek()
			p.pos++
			switch e {
			case '"', '\\':
				b.WriteByte(e)
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			case 'u':
				if p.pos+4 > len(p.src) {
					return "", p.errf(where, `invalid \u escape; use \u and four hex digits, as in \u00e9`)
				}
				hexd := string(p.src[p.pos : p.pos+4])
				n, err := strconv.ParseUint(hexd, 16, 32)
				if err != nil || strings.ContainsAny(hexd, "+-_") {
					return "", p.errf(where, `invalid escape \u%s; use \u and four hex digits, as in \u00e9`, strings.ToValidUTF8(hexd, "?"))
				}
				r := rune(n)
				if !utf8.ValidRune(r) {
					return "", p.errf(where, `\u%s is not a character (a UTF-16 surrogate); write the character itself`, hexd)
				}
				b.WriteRune(r)
				p.pos += 4
			default:
				p.pos--
				if p.eof() || p.peek() == '\n' || p.peek() == '\r' {
					return "", p.errf(where, `unterminated string; close it with " on the same line`)
				}
				r, _ := utf8.DecodeRune(p.src[p.pos:])
				return "", p.errf(where, `invalid escape \%s; allowed escapes are \" \\ \n \t and \uXXXX (or use a 'literal string')`, string(r))
			}
		case c < ' ' && c != '\t' || c == 0x7f:
			return "", p.errf(where, `control character U+%04X in a string; write it as \u%04X`, c, c)
		default:
			b.WriteByte(c)
			p.pos++
		}
	}
}

func (p *parser) literalString(where string) (string, *Error) {
	p.pos++ // '
	start := p.pos
	for {
		if p.eof() || p.src[p.pos] == '\n' || p.src[p.pos] == '\r' {
			return "", p.errf(where, `unterminated string; close it with ' on the same line`)
		}
		c := p.src[p.pos]
		if c == '\'' {
			s := string(p.src[start:p.pos])
			p.pos++
			return s, nil
		}
		if c < ' ' && c != '\t' || c == 0x7f {
			return "", p.errf(where, `control character U+%04X in a string; use a "basic string" and write it as \u%04X`, c, c)
		}
		p.pos++
	}
}

// skipArraySpace skips blanks, line ends and comments inside an array.
func (p *parser) skipArraySpace() *Error {
	for {
		p.skipBlank()
		switch p.peek() {
		case '#':
			p.comment()
		case '\n', '\r':
			if err := p.newline(); err != nil {
				return err
			}
		default:
			return nil
		}
	}
}

func (p *parser) array(where string) (value, *Error) {
	open := p.line
	arr := value{line: open, kind: kArray}
	p.pos++ // [
	unterminated := func() *Error {
		return p.errAt(open, where, "unterminated array; close it with ]")
	}
	hint := func() string {
		if p.line == open {
			return ""
		}
		return fmt.Sprintf(" (is the array opened on line %d missing its ]?)", open)
	}
	for {
		if err := p.skipArraySpace(); err != nil {
			return value{}, err
		}
		if p.eof() {
			return value{}, unterminated()
		}
		if p.peek() == ']' {
			p.pos++
			return arr, nil
		}
		if p.peek() == '[' {
			return value{}, p.errf(where, "nested arrays are not supported; an array holds strings or integers%s", hint())
		}
		v, err := p.value(where)
		if err != nil {
			return value{}, err
		}
		if v.kind == kBool {
			return value{}, p.errAt(v.line, where, "arrays of booleans are not supported; an array holds strings or integers")
		}
		if len(arr.arr) > 0 && arr.arr[0].kind != v.kind {
			return value{}, p.errAt(v.line, where, "mixed array: %s after %s; an array holds only strings or only integers", v.describe(), arr.arr[0].describe())
		}
		arr.arr = append(arr.arr, v)
		if err := p.skipArraySpace(); err != nil {
			return value{}, err
		}
		switch p.peek() {
		case ',':
			p.pos++
		case ']':
			p.pos++
			return arr, nil
		default:
			if p.eof() {
				return value{}, unterminated()
			}
			return value{}, p.errf(where, "expected , or ] in the array, found %s%s", p.peekDesc(), hint())
		}
	}
}

// maxShown is how much of a value an error message repeats.
const maxShown = 64

// show quotes s for an error message, shortened if it is long.
func show(s string) string {
	if utf8.RuneCountInString(s) <= maxShown {
		return quote(s)
	}
	return quote(string([]rune(s)[:maxShown])) + "..."
}

// clip shortens s for an error message.
func clip(s string) string {
	if utf8.RuneCountInString(s) <= maxShown {
		return s
	}
	return string([]rune(s)[:maxShown]) + "..."
}

// quote writes s as a basic string that this parser reads back as s.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < ' ' || r == 0x7f:
			fmt.Fprintf(&b, `\u%04X`, r)
		case r == utf8.RuneError:
			// Only reached for invalid UTF-8 in s, which Parse never
			// produces; write the replacement character it reads as.
			b.WriteString(`\uFFFD`)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
