package hosts

import (
	"bytes"
	"fmt"
	"strings"
)

// bom is the UTF-8 byte order mark some hosts files start with.
var bom = []byte{0xEF, 0xBB, 0xBF}

// Loopback addresses every managed name is written for, in this order.
const (
	IPv4 = "127.0.0.1"
	IPv6 = "::1"
)

// BeginMarker and EndMarker are the lines that open and close project's
// block.
func BeginMarker(project string) string { return "# siteplex begin " + project }

// EndMarker is the line that closes project's block.
func EndMarker(project string) string { return "# siteplex end " + project }

// span is one block of the project in the file: data[start:end] is
// replaced when the block is rewritten.
type span struct {
	start, end int
	// lead is the line break before the begin marker that belongs to the
	// block ("" or "\n" or "\r\n"): set when the block is the end of a
	// file without a final newline, so that removing the block gives back
	// the file as it was before the block was appended.
	lead string
	// trail is false when the end marker is the last line and has no line
	// break.
	trail bool
	// line is the 1-based line number of the begin marker.
	line int
	// beginEOL is the begin marker's line break.
	beginEOL string
}

// Doc is a parsed hosts file for one project: the file's bytes, where the
// project's block is and which names it holds. A Doc never changes; Render
// returns new bytes. It is built by Parse and does no I/O.
type Doc struct {
	data    []byte
	project string
	bomLen  int
	eol     string
	spans   []span
	names   []string
	// invalid are names found in the block that are not valid hostnames
	// (hand edits); they are dropped when the block is rewritten.
	invalid []string
}

// MalformedError means the file holds a broken siteplex block for the
// project (a begin marker without its end, an end marker without a begin,
// or another project's marker inside it). siteplex refuses to edit such a
// file rather than guess which lines are its own.
type MalformedError struct {
	Project string
	Line    int // 1-based line number of the offending marker
	Reason  string
}

func (e *MalformedError) Error() string {
	return fmt.Sprintf("line %d: %s; fix the hosts file by hand (siteplex only edits the lines between %q and %q)",
		e.Line, e.Reason, BeginMarker(e.Project), EndMarker(e.Project))
}

// ValidProject reports whether project can be used in block markers: not
// empty, no control characters and no leading or trailing blanks.
func ValidProject(project string) error {
	if project == "" {
		return fmt.Errorf("empty project name")
	}
	if strings.TrimSpace(project) != project {
		return fmt.Errorf("project name %q starts or ends with a blank", project)
	}
	for _, r := range project {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("project name %q contains a control character", project)
		}
	}
	return nil
}

// Parse reads data as a hosts file and finds the blocks of project. It
// keeps every byte; it fails only with a *MalformedError for a broken block
// or an error for an unusable project name. Several well-formed blocks of
// the same project (hand copies) are merged: Render writes one.
func Parse(data []byte, project string) (*Doc, error) {
	if err := ValidProject(project); err != nil {
		return nil, err
	}
	d := &Doc{data: data, project: project}
	if bytes.HasPrefix(data, bom) {
		d.bomLen = len(bom)
	}
	begin, end := BeginMarker(project), EndMarker(project)
	var (
		open     = -1 // index in data of the current begin marker line
		openLine int
		openEOL  string
		// openCounted is counted as it was at the begin marker.
		openCounted string
		seen        map[string]bool // made at the first begin marker
		crlf, lf    int
		lineNo      int
		counted     string // line break of the previous line, when counted
	)
	for pos := d.bomLen; pos < len(data); {
		lineNo++
		nl := bytes.IndexByte(data[pos:], '\n')
		next, brk := len(data), ""
		raw := data[pos:]
		if nl >= 0 {
			next = pos + nl + 1
			raw = data[pos : pos+nl]
			brk = "\n"
			if nl > 0 && data[pos+nl-1] == '\r' {
				brk = "\r\n"
				raw = raw[:len(raw)-1]
			}
		}
		marker := len(raw) > 0 && raw[0] == '#'
		var line string
		if marker {
			line = strings.TrimRight(string(raw), " \t\r")
		}
		switch {
		case open < 0 && marker && line == begin:
			open, openLine, openEOL, openCounted = pos, lineNo, brk, counted
			if seen == nil {
				// About one name per two lines in a siteplex block.
				seen = make(map[string]bool, bytes.Count(data[pos:], []byte{'\n'})/2+1)
			}
		case open < 0 && marker && line == end:
			return nil, &MalformedError{project, lineNo, fmt.Sprintf("%q without %q before it", end, begin)}
		case open < 0:
			switch brk {
			case "\r\n":
				crlf++
			case "\n":
				lf++
			}
			counted = brk
		case marker && line == end:
			s := span{start: open, end: next, trail: brk != "", line: openLine}
			if brk == "" && open > d.bomLen && (len(d.spans) == 0 || open > d.spans[len(d.spans)-1].end) {
				// The block ends the file without a final newline: the
				// line break before it is the block's. It is "\r\n" when
				// a '\r' precedes the '\n' (Render keeps to the same rule).
				s.lead = "\n"
				if open >= 2 && data[open-2] == '\r' {
					s.lead = "\r\n"
				}
				s.start -= len(s.lead)
				// That line break is the block's, not the file's.
				switch openCounted {
				case "\r\n":
					crlf--
				case "\n":
					lf--
				}
			}
			s.beginEOL = openEOL
			d.spans = append(d.spans, s)
			open = -1
		case marker && (strings.HasPrefix(line, "# siteplex begin ") || strings.HasPrefix(line, "# siteplex end ")):
			return nil, &MalformedError{project, lineNo, fmt.Sprintf("%q inside the block opened at line %d", line, openLine)}
		default:
			d.addBlockLine(raw, seen)
		}
		if open >= 0 || marker && line == end {
			counted = ""
		}
		pos = next
	}
	if open >= 0 {
		return nil, &MalformedError{project, openLine, fmt.Sprintf("%q without %q after it", begin, end)}
	}
	switch {
	case crlf > lf:
		d.eol = "\r\n"
	case lf > 0:
		d.eol = "\n"
	case len(d.spans) > 0:
		// No line breaks outside the block: keep the block's own.
		d.eol = d.spans[0].beginEOL
	default:
		d.eol = "\n"
	}
	return d, nil
}

// addBlockLine records the names of one line inside the block: the
// fields after the address, up to a '#'.
func (d *Doc) addBlockLine(raw []byte, seen map[string]bool) {
	if i := bytes.IndexByte(raw, '#'); i >= 0 {
		raw = raw[:i]
	}
	for field := 0; ; field++ {
		for len(raw) > 0 && isBlank(raw[0]) {
			raw = raw[1:]
		}
		if len(raw) == 0 {
			return
		}
		j := 0
		for j < len(raw) && !isBlank(raw[j]) {
			j++
		}
		fb := raw[:j]
		raw = raw[j:]
		if field == 0 {
			continue // the address
		}
		if n := len(d.names); n > 0 && string(fb) == d.names[n-1] {
			continue // the ::1 line after the 127.0.0.1 line (no allocation)
		}
		f := string(fb)
		h, err := Hostname(f)
		if err != nil {
			d.invalid = append(d.invalid, f)
			continue
		}
		if !seen[h] {
			seen[h] = true
			d.names = append(d.names, h)
		}
	}
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f' }

// Names returns the names in the project's block, in file order, without
// duplicates. It is empty when there is no block.
func (d *Doc) Names() []string { return append([]string(nil), d.names...) }

// HasBlock reports whether the file holds a block of the project.
func (d *Doc) HasBlock() bool { return len(d.spans) > 0 }

// BlockLine is the 1-based line number of the block's begin marker, or 0.
func (d *Doc) BlockLine() int {
	if len(d.spans) == 0 {
		return 0
	}
	return d.spans[0].line
}

// Invalid returns the names in the block that are not valid hostnames.
func (d *Doc) Invalid() []string { return append([]string(nil), d.invalid...) }

// EOL is the line break the file uses most outside the block ("\n" when
// there is none).
func (d *Doc) EOL() string { return d.eol }

// Outside returns the file without the project's block: exactly the bytes
// siteplex must never change.
func (d *Doc) Outside() []byte {
	out, _ := d.Render(nil)
	return out
}

// Render returns the file with the project's block holding exactly names
// (in the given order, duplicates dropped): each as "127.0.0.1 name" and
// "::1 name". With no names the block is removed. Every byte outside the
// block is kept; a new block is appended at the end of the file. Render
// fails with an *InvalidNameError when a name is not a normalised, valid
// hostname (see sites.Hostname); nothing is rendered then.
func (d *Doc) Render(names []string) ([]byte, error) {
	return d.render(names, false)
}

// render is Render; trusted means names went through Hostname and have no
// duplicates already (as Update's do), so they are not checked again.
func (d *Doc) render(names []string, trusted bool) ([]byte, error) {
	uniq := names
	if !trusted {
		var err error
		if uniq, err = checkNames(names); err != nil {
			return nil, err
		}
	}
	var block span
	have := len(d.spans) > 0
	if have {
		block = d.spans[0]
	} else {
		block = span{start: len(d.data), end: len(d.data), trail: true}
		if len(d.data) > d.bomLen && d.data[len(d.data)-1] != '\n' {
			block.lead, block.trail = d.eol, false
			if d.data[len(d.data)-1] == '\r' {
				// A lone '\r' then "\n" would read back as one "\r\n".
				block.lead = "\r\n"
			}
		}
	}
	size := len(d.data) + len(uniq)*(2*len(d.project)+len(IPv4)+len(IPv6)+2*len(d.eol)+4) + 64
	for _, n := range uniq {
		size += 2 * len(n)
	}
	out := make([]byte, 0, size)
	prev := 0
	for i, s := range d.spans {
		out = append(out, d.data[prev:s.start]...)
		if i == 0 && len(uniq) > 0 {
			out = d.appendBlock(out, block, uniq)
		}
		prev = s.end
	}
	out = append(out, d.data[prev:]...)
	if !have && len(uniq) > 0 {
		out = d.appendBlock(out, block, uniq)
	}
	return out, nil
}

// checkNames returns names without duplicates, or an *InvalidNameError
// for those that are not normalised, valid hostnames.
func checkNames(names []string) ([]string, error) {
	var bad []InvalidName
	uniq := make([]string, 0, len(names))
	seen := make(map[string]bool, len(names))
	for _, n := range names {
		h, err := Hostname(n)
		if err != nil || h != n {
			if err == nil {
				err = fmt.Errorf("not normalised (write %q)", h)
			}
			bad = append(bad, InvalidName{Name: n, Err: err})
			continue
		}
		if !seen[n] {
			seen[n] = true
			uniq = append(uniq, n)
		}
	}
	if len(bad) > 0 {
		return nil, &InvalidNameError{Names: bad}
	}
	return uniq, nil
}

func (d *Doc) appendBlock(out []byte, s span, names []string) []byte {
	eol := d.eol
	out = append(out, s.lead...)
	out = append(out, BeginMarker(d.project)...)
	out = append(out, eol...)
	for _, n := range names {
		out = append(out, IPv4+" "...)
		out = append(out, n...)
		out = append(out, eol...)
		out = append(out, IPv6+" "...)
		out = append(out, n...)
		out = append(out, eol...)
	}
	out = append(out, EndMarker(d.project)...)
	if s.trail {
		out = append(out, eol...)
	}
	return out
}

// Lines returns the 1-based numbers of the lines outside the project's
// block that list name (case-insensitively) as a host name, for any
// address: the user's own entries, which siteplex leaves alone.
func (d *Doc) Lines(name string) []int {
	return d.lookup()[strings.ToLower(name)]
}

// lookup maps every host name outside the block to its line numbers.
func (d *Doc) lookup() map[string][]int {
	m := map[string][]int{}
	si := 0
	lineNo := 0
	for pos := d.bomLen; pos < len(d.data); {
		lineNo++
		nl := bytes.IndexByte(d.data[pos:], '\n')
		next := len(d.data)
		raw := d.data[pos:]
		if nl >= 0 {
			next = pos + nl + 1
			raw = d.data[pos : pos+nl]
		}
		for si < len(d.spans) && d.spans[si].end <= pos {
			si++
		}
		inBlock := si < len(d.spans) && pos >= d.spans[si].start
		if !inBlock {
			if i := bytes.IndexByte(raw, '#'); i >= 0 {
				raw = raw[:i]
			}
			fields := strings.Fields(string(raw))
			for j := 1; j < len(fields); j++ {
				k := strings.ToLower(fields[j])
				if ls := m[k]; len(ls) == 0 || ls[len(ls)-1] != lineNo {
					m[k] = append(m[k], lineNo)
				}
			}
		}
		pos = next
	}
	return m
}
