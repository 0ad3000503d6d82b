package sites

import (
	"bytes"
	"strings"
	"unicode"
	"unicode/utf8"
)

// envBinding is one binding of a dotenv file, found by the rules of
// python-dotenv's parser (dotenv/parser.py, which Django projects load
// their env files with, reading them with universal newlines): optional leading whitespace (blank lines
// included), an optional `export` and blanks, a key (unquoted, or in
// single quotes), blanks, then optionally `=`, blanks and a value —
// unquoted to the end of the line (a ` #` comment and trailing blanks cut
// off), or in single or double quotes, where it may span lines — then an
// optional comment and the end of the line. A line that does not fit is
// an error binding that ends at the line's end. Offsets index the bytes
// given to parseEnv.
type envBinding struct {
	// start and end delimit the binding (python-dotenv's "original"):
	// leading whitespace and the line break at the end included.
	start, end int
	// lineStart is where the line holding the key begins: after the last
	// line break in the leading whitespace.
	lineStart int
	// hasKey is false for a comment or the whitespace at the end of the
	// file (key is then "").
	hasKey           bool
	key              string
	keyStart, keyEnd int
	// hasValue is true when an `=` follows the key; value is the value
	// as python-dotenv gives it, raw is data[valStart:valEnd] (quotes
	// included, an unquoted value's comment and trailing blanks not).
	hasValue         bool
	value            string
	valStart, valEnd int
	// quote is the value's quote character, or 0.
	quote byte
	// err marks a line python-dotenv cannot parse (it skips it).
	err bool
}

// pySpace reports whether r is whitespace for Python's str.isspace and
// for \s in its re module (Unicode strings).
func pySpace(r rune) bool {
	return r >= 0x1c && r <= 0x1f || unicode.IsSpace(r)
}

// spaceAt returns the length of the whitespace character at d[i] (0 when
// there is none). hOnly leaves out the line breaks '\r' and '\n'.
func spaceAt(d []byte, i int, hOnly bool) int {
	if i >= len(d) {
		return 0
	}
	c := d[i]
	if c < utf8.RuneSelf {
		switch {
		case c == '\r' || c == '\n':
			if hOnly {
				return 0
			}
			return 1
		case c == ' ' || c >= '\t' && c <= '\f' || c >= 0x1c && c <= 0x1f:
			return 1
		}
		return 0
	}
	r, n := utf8.DecodeRune(d[i:])
	if r == utf8.RuneError || !pySpace(r) {
		return 0
	}
	return n
}

func skipSpace(d []byte, i int, hOnly bool) int {
	for {
		n := spaceAt(d, i, hOnly)
		if n == 0 {
			return i
		}
		i += n
	}
}

// parseEnv splits d into bindings. Every byte belongs to exactly one
// binding, in order.
func parseEnv(d []byte) []envBinding {
	var out []envBinding
	for pos := 0; pos < len(d); {
		b := parseBinding(d, pos)
		out = append(out, b)
		pos = b.end
	}
	return out
}

// parseBinding is python-dotenv's parse_binding from pos.
func parseBinding(d []byte, pos int) envBinding {
	b := envBinding{start: pos}
	p := skipSpace(d, pos, false)
	b.lineStart = pos
	if i := bytes.LastIndexAny(d[pos:p], "\r\n"); i >= 0 {
		b.lineStart = pos + i + 1
	}
	if p >= len(d) {
		b.end = p
		return b
	}
	fail := func(at int) envBinding {
		// _rest_of_line: [^\r\n]*(?:\r|\n|\r\n)? — a '\r' matches first.
		e := at
		for e < len(d) && d[e] != '\r' && d[e] != '\n' {
			e++
		}
		if e < len(d) {
			e++
		}
		return envBinding{start: b.start, end: e, lineStart: b.lineStart, err: true}
	}
	// _export: (?:export[^\S\r\n]+)?
	if bytes.HasPrefix(d[p:], []byte("export")) {
		if q := skipSpace(d, p+6, true); q > p+6 {
			p = q
		}
	}
	// parse_key
	switch {
	case d[p] == '#':
	case d[p] == '\'':
		e := bytes.IndexByte(d[p+1:], '\'')
		if e <= 0 { // no closing quote, or an empty key
			return fail(p)
		}
		b.hasKey, b.key, b.keyStart, b.keyEnd = true, string(d[p+1:p+1+e]), p, p+e+2
		p = b.keyEnd
	default:
		e := p
		for e < len(d) && d[e] != '=' && d[e] != '#' && spaceAt(d, e, false) == 0 {
			_, n := utf8.DecodeRune(d[e:])
			e += n
		}
		if e == p {
			return fail(p)
		}
		b.hasKey, b.key, b.keyStart, b.keyEnd = true, string(d[p:e]), p, e
		p = e
	}
	p = skipSpace(d, p, true)
	if p < len(d) && d[p] == '=' {
		b.hasValue = true
		p = skipSpace(d, p+1, true)
		b.valStart, b.valEnd = p, p
		switch {
		case p < len(d) && (d[p] == '\'' || d[p] == '"'):
			q := d[p]
			e, ok := closingQuote(d, p)
			if !ok {
				return fail(p)
			}
			b.quote, b.valEnd = q, e+1
			b.value = unescape(universalNewlines(d[p+1:e]), q)
			p = e + 1
		case p >= len(d) || d[p] == '\r' || d[p] == '\n':
		default:
			e := p
			for e < len(d) && d[e] != '\r' && d[e] != '\n' {
				e++
			}
			b.value, b.valEnd = unquotedValue(d, p, e)
			p = e
		}
	}
	// _comment: (?:[^\S\r\n]*#[^\r\n]*)?
	if q := skipSpace(d, p, true); q < len(d) && d[q] == '#' {
		for q < len(d) && d[q] != '\r' && d[q] != '\n' {
			q++
		}
		p = q
	}
	// _end_of_line: [^\S\r\n]*(?:\r\n|\n|\r|$)
	q := skipSpace(d, p, true)
	switch {
	case q == len(d):
	case bytes.HasPrefix(d[q:], []byte("\r\n")):
		q += 2
	case d[q] == '\n' || d[q] == '\r':
		q++
	default:
		return fail(p)
	}
	b.end = q
	return b
}

// closingQuote finds the quote that closes the one at d[p], the way the
// regular expression '((?:\\'|[^'])*)' (or its double-quote twin) of
// python-dotenv does: a backslash before the quote escapes it, and when
// no unescaped quote follows, the regex backtracks to the last escaped
// one and takes it as the end.
func closingQuote(d []byte, p int) (int, bool) {
	q := d[p]
	last := -1
	for i := p + 1; i < len(d); i++ {
		switch {
		case d[i] == '\\' && i+1 < len(d) && d[i+1] == q:
			last = i + 1
			i++
		case d[i] == q:
			return i, true
		}
	}
	return last, last >= 0
}

// universalNewlines turns "\r\n" and a lone "\r" into "\n", as Python's
// text files do when python-dotenv reads them: a quoted value spread over
// CRLF lines has "\n" between them.
func universalNewlines(b []byte) string {
	if bytes.IndexByte(b, '\r') < 0 {
		return string(b)
	}
	s := strings.ReplaceAll(string(b), "\r\n", "\n")
	return strings.ReplaceAll(s, "\r", "\n")
}

// unescape decodes a quoted value as python-dotenv does: in single quotes
// \\ and \' only; in double quotes also \" and \a \b \f \n \r \t \v.
func unescape(s string, q byte) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		c := s[i+1]
		var r byte
		switch {
		case c == '\\' || c == '\'':
			r = c
		case q == '"' && c == '"':
			r = c
		case q == '"':
			r = map[byte]byte{'a': 7, 'b': 8, 'f': 12, 'n': '\n', 'r': '\r', 't': '\t', 'v': 11}[c]
		}
		if r == 0 {
			b.WriteByte('\\')
			continue
		}
		b.WriteByte(r)
		i++
	}
	return b.String()
}

// unquotedValue is python-dotenv's parse_unquoted_value of d[p:e] (one
// line): the text up to the first blank run followed by '#', without
// trailing blanks. end is where that text ends in d.
func unquotedValue(d []byte, p, e int) (string, int) {
	cut := e
	for i := p; i < e; {
		n := spaceAt(d[:e], i, false)
		if n == 0 {
			_, n = utf8.DecodeRune(d[i:e])
			i += n
			continue
		}
		run := skipSpace(d[:e], i, false)
		if run < e && d[run] == '#' {
			cut = i
			break
		}
		i = run
	}
	// rstrip(): trailing whitespace of any kind.
	for cut > p {
		r, n := utf8.DecodeLastRune(d[p:cut])
		if r == utf8.RuneError || !pySpace(r) {
			break
		}
		cut -= n
	}
	return string(d[p:cut]), cut
}
