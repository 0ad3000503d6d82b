package hosts

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strings"
)

// bom is the UTF-8 byte order mark some hosts files start with.
var bom = []byte{0xEF, 0xBB, 0xBF}

// Loopback addresses every managed name is written for, in this order.
const (
	IPv4 = "127.0.0.1"
	IPv6 = "::1"
)

// Marker prefixes of every siteplex block, whichever project it is.
const (
	beginPrefix = "# siteplex begin "
	endPrefix   = "# siteplex end "
)

// Key names a project's block: Name (config `name`, else the project
// folder's base name) for people, and Hash, a short hash of the project's
// root folder, so that two projects with the same name never share a
// block. The markers read "# siteplex begin <Name> <Hash>".
type Key struct {
	Name string
	// Hash is 8 lower-case hex digits (see KeyFor).
	Hash string
}

// KeyFor is the key of the project named name whose root folder is root:
// Hash is the first 8 hex digits of the SHA-256 of root's absolute path
// with symlinks resolved (so that reaching the folder through a link, or
// under sudo, gives the same block).
func KeyFor(name, root string) Key {
	if abs, err := filepath.Abs(root); err == nil {
		root = abs
	}
	if real, err := filepath.EvalSymlinks(root); err == nil {
		root = real
	}
	sum := sha256.Sum256([]byte(filepath.Clean(root)))
	return Key{Name: name, Hash: hex.EncodeToString(sum[:4])}
}

// String is the key as the markers spell it: "<Name> <Hash>".
func (k Key) String() string { return k.Name + " " + k.Hash }

// BeginMarker is the line that opens k's block.
func BeginMarker(k Key) string { return beginPrefix + k.String() }

// EndMarker is the line that closes k's block.
func EndMarker(k Key) string { return endPrefix + k.String() }

// ValidKey reports whether k can be used in block markers: a name that is
// not empty, has no control characters and no leading or trailing blanks,
// and a hash of 8 lower-case hex digits.
func ValidKey(k Key) error {
	if err := ValidProject(k.Name); err != nil {
		return err
	}
	if !isHash(k.Hash) {
		return fmt.Errorf("project hash %q is not 8 lower-case hex digits", k.Hash)
	}
	return nil
}

func isHash(s string) bool {
	if len(s) != 8 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !(s[i] >= '0' && s[i] <= '9' || s[i] >= 'a' && s[i] <= 'f') {
			return false
		}
	}
	return true
}

// ValidProject reports whether project can be used as the name in block
// markers: not empty, no control characters and no leading or trailing
// blanks.
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
	// foreign are the lines in the block siteplex did not write, each with
	// its line break, in file order: they are written back just before
	// the block, unchanged.
	foreign []byte
}

// ForeignLine is a line inside the project's block that siteplex did not
// write (a hand edit). Render moves it out of the block, unchanged.
type ForeignLine struct {
	// Line is the 1-based line number in the file as read.
	Line int `json:"line"`
	// Text is the line without its line break.
	Text string `json:"text"`
}

// Doc is a parsed hosts file for one project: the file's bytes, where the
// project's block is and which names it holds. A Doc never changes; Render
// returns new bytes. It is built by Parse and does no I/O.
type Doc struct {
	data   []byte
	key    Key
	bomLen int
	eol    string
	spans  []span
	names  []string
	// foreign are the lines in the block siteplex did not write.
	foreign []ForeignLine
	// foreignAt holds their line numbers (for lookup).
	foreignAt map[int]bool
	// legacy is true when the block had an older marker (no hash, or
	// another name with this project's hash): Render rewrites it.
	legacy bool
}

// MalformedError means the file holds a broken siteplex block for the
// project (a begin marker without its end, an end marker without a
// begin), or the project's block is nested in or overlaps another
// siteplex block. siteplex refuses to edit such a file rather than guess
// which lines are its own.
type MalformedError struct {
	Key    Key
	Line   int // 1-based line number of the offending marker
	Reason string
}

func (e *MalformedError) Error() string {
	return fmt.Sprintf("line %d: %s; fix the hosts file by hand (siteplex only edits the lines between %q and %q)",
		e.Line, e.Reason, BeginMarker(e.Key), EndMarker(e.Key))
}

// marker is one siteplex marker line of any project.
type marker struct {
	begin      bool
	id         string // what follows "# siteplex begin " / "# siteplex end "
	line       int
	start, end int // the line in data, its line break included
	brk        string
	ours       bool
}

// owner says whether a marker id names k's block: exactly k, the same
// hash under another name (the project was renamed), or, when allowed,
// k's name alone (the marker siteplex wrote before blocks had a hash).
func owner(id string, k Key, legacyOK bool) (ours, legacy bool) {
	if id == k.String() {
		return true, false
	}
	if i := strings.LastIndexByte(id, ' '); i > 0 && id[i+1:] == k.Hash {
		return true, true
	}
	if legacyOK && id == k.Name {
		return true, true
	}
	return false, false
}

// Parse reads data as a hosts file and finds the blocks of the project
// k. It keeps every byte. Blocks with k's marker, with k's hash under an
// older name, or — when the file has no block with k's hash — with k's
// name alone (the marker of siteplex before blocks had a hash) are k's;
// several are merged, and Render writes one with k's marker. Lines inside
// the block that siteplex did not write are kept (see Foreign) and moved
// out of the block by Render. It fails with a *MalformedError for a broken
// block of k's or one nested in or overlapping another siteplex block,
// and with an error for an invalid key.
func Parse(data []byte, k Key) (*Doc, error) {
	if err := ValidKey(k); err != nil {
		return nil, err
	}
	d := &Doc{data: data, key: k}
	if bytes.HasPrefix(data, bom) {
		d.bomLen = len(bom)
	}
	markers := findMarkers(data, d.bomLen)
	legacyOK := true
	for _, m := range markers {
		if ours, _ := owner(m.id, k, false); ours {
			legacyOK = false // the project has a hashed block: a bare-name one is not its
			break
		}
	}
	for i := range markers {
		var legacy bool
		markers[i].ours, legacy = owner(markers[i].id, k, legacyOK)
		d.legacy = d.legacy || legacy && markers[i].ours
	}
	if err := d.checkNesting(markers); err != nil {
		return nil, err
	}
	d.readBlocks(markers)
	return d, nil
}

// findMarkers lists every siteplex marker line of data (after the BOM).
func findMarkers(data []byte, from int) []marker {
	var out []marker
	lineNo := 0
	for pos := from; pos < len(data); {
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
		if len(raw) > 10 && raw[0] == '#' && raw[2] == 's' {
			line := strings.TrimRight(string(raw), " \t\r")
			if id, ok := strings.CutPrefix(line, beginPrefix); ok {
				out = append(out, marker{begin: true, id: id, line: lineNo, start: pos, end: next, brk: brk})
			} else if id, ok := strings.CutPrefix(line, endPrefix); ok {
				out = append(out, marker{id: id, line: lineNo, start: pos, end: next, brk: brk})
			}
		}
		pos = next
	}
	return out
}

// checkNesting refuses the project's blocks when they are broken, hold
// another siteplex marker, or lie inside another project's block.
func (d *Doc) checkNesting(ms []marker) error {
	open := -1 // index in ms of our open begin marker
	for i, m := range ms {
		switch {
		case open < 0 && m.ours && m.begin:
			open = i
		case open < 0 && m.ours:
			return &MalformedError{d.key, m.line, fmt.Sprintf("%q without a begin marker before it", endPrefix+m.id)}
		case open >= 0 && m.ours && !m.begin:
			open = -1
		case open >= 0:
			kind := endPrefix
			if m.begin {
				kind = beginPrefix
			}
			return &MalformedError{d.key, m.line, fmt.Sprintf("%q inside the block opened at line %d (nested or overlapping blocks are refused)", kind+m.id, ms[open].line)}
		}
	}
	if open >= 0 {
		return &MalformedError{d.key, ms[open].line, fmt.Sprintf("%q without an end marker after it", beginPrefix+ms[open].id)}
	}
	// Our blocks must not lie inside another project's block (one that
	// ends after ours begins; an other begin marker that never ends is
	// that project's breakage, not a block around ours).
	for i, m := range ms {
		if !m.begin || m.ours {
			continue
		}
		inner := -1
		for j := i + 1; j < len(ms); j++ {
			o := ms[j]
			if o.ours && inner < 0 {
				inner = j
			}
			if !o.begin && o.id == m.id && !o.ours {
				if inner >= 0 {
					return &MalformedError{d.key, ms[inner].line, fmt.Sprintf("the project's block is inside the block %q of lines %d-%d (nested or overlapping blocks are refused)", m.id, m.line, o.line)}
				}
				break
			}
		}
	}
	return nil
}

// readBlocks records the spans of the project's blocks, their names and
// foreign lines, and the file's line break.
func (d *Doc) readBlocks(ms []marker) {
	var crlf, lf int
	countOutside := func(from, to int) {
		n := bytes.Count(d.data[from:to], []byte{'\n'})
		c := bytes.Count(d.data[from:to], []byte("\r\n"))
		crlf += c
		lf += n - c
	}
	prev := d.bomLen
	var seen map[string]bool
	for i := 0; i < len(ms); i++ {
		b := ms[i]
		if !b.ours {
			continue
		}
		e := ms[i+1] // checkNesting: our begin is followed by our end
		i++
		s := span{start: b.start, end: e.end, trail: e.brk != "", line: b.line, beginEOL: b.brk}
		countOutside(prev, b.start)
		if e.brk == "" && b.start > d.bomLen && (len(d.spans) == 0 || b.start > d.spans[len(d.spans)-1].end) {
			// The block ends the file without a final newline: the line
			// break before it is the block's, not the file's. It is "\r\n"
			// when a '\r' precedes the '\n' (Render keeps to the same rule).
			s.lead = "\n"
			if b.start >= 2 && d.data[b.start-2] == '\r' {
				s.lead = "\r\n"
				crlf--
			} else {
				lf--
			}
			s.start -= len(s.lead)
		}
		if seen == nil {
			// About one name per two lines in a siteplex block.
			seen = make(map[string]bool, bytes.Count(d.data[b.end:e.start], []byte{'\n'})/2+1)
		}
		lineNo := b.line
		for pos := b.end; pos < e.start; {
			lineNo++
			nl := bytes.IndexByte(d.data[pos:e.start], '\n')
			next := pos + nl + 1 // every line before the end marker has a '\n'
			raw := d.data[pos : pos+nl]
			if nl > 0 && raw[nl-1] == '\r' {
				raw = raw[:nl-1]
			}
			if !d.ownLine(raw, seen) {
				s.foreign = append(s.foreign, d.data[pos:next]...)
				d.foreign = append(d.foreign, ForeignLine{Line: lineNo, Text: string(raw)})
				if d.foreignAt == nil {
					d.foreignAt = map[int]bool{}
				}
				d.foreignAt[lineNo] = true
			}
			pos = next
		}
		d.spans = append(d.spans, s)
		prev = s.end
	}
	countOutside(prev, len(d.data))
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
}

// ownLine reports whether raw is a line siteplex writes ("127.0.0.1
// <name>" or "::1 <name>" for a normalised, valid name) and records the
// name.
func (d *Doc) ownLine(raw []byte, seen map[string]bool) bool {
	var name []byte
	switch {
	case bytes.HasPrefix(raw, []byte(IPv4+" ")):
		name = raw[len(IPv4)+1:]
	case bytes.HasPrefix(raw, []byte(IPv6+" ")):
		name = raw[len(IPv6)+1:]
	default:
		return false
	}
	if n := len(d.names); n > 0 && string(name) == d.names[n-1] {
		return true // the ::1 line after the 127.0.0.1 line (no allocation)
	}
	n := string(name)
	if h, err := Hostname(n); err != nil || h != n {
		return false
	}
	if !seen[n] {
		seen[n] = true
		d.names = append(d.names, n)
	}
	return true
}

// Names returns the names in the project's block, in file order, without
// duplicates. It is empty when there is no block.
func (d *Doc) Names() []string { return append([]string(nil), d.names...) }

// HasBlock reports whether the file holds a block of the project.
func (d *Doc) HasBlock() bool { return len(d.spans) > 0 }

// Legacy reports whether the block has an older marker (without the hash,
// or from before the project was renamed); the next write rewrites it.
func (d *Doc) Legacy() bool { return d.legacy }

// BlockLine is the 1-based line number of the block's begin marker, or 0.
func (d *Doc) BlockLine() int {
	if len(d.spans) == 0 {
		return 0
	}
	return d.spans[0].line
}

// Foreign returns the lines inside the block that siteplex did not write;
// Render moves them out of the block unchanged.
func (d *Doc) Foreign() []ForeignLine { return append([]ForeignLine(nil), d.foreign...) }

// EOL is the line break the file uses most outside the block ("\n" when
// there is none).
func (d *Doc) EOL() string { return d.eol }

// Outside returns the file without the project's block: exactly the bytes
// siteplex must never change (lines it did not write that were inside the
// block are kept, where the block was).
func (d *Doc) Outside() []byte {
	out, _ := d.Render(nil)
	return out
}

// Render returns the file with the project's block holding exactly names
// (in the given order, duplicates dropped): each as "127.0.0.1 name" and
// "::1 name", between k's markers. With no names the block is removed.
// Every byte outside the block is kept, and lines inside it that siteplex
// did not write are moved out, unchanged, to just before it; a new block
// is appended at the end of the file. Render fails with an
// *InvalidNameError when a name is not a normalised, valid hostname (see
// sites.Hostname); nothing is rendered then.
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
	name := d.key.String()
	size := len(d.data) + len(uniq)*(len(IPv4)+len(IPv6)+2*len(d.eol)+2) + 2*len(name) + 64
	for _, n := range uniq {
		size += 2 * len(n)
	}
	out := make([]byte, 0, size)
	prev := 0
	for i, s := range d.spans {
		out = append(out, d.data[prev:s.start]...)
		if len(s.foreign) > 0 {
			out = append(out, s.lead...)
			out = append(out, s.foreign...)
			// The moved lines end with their line breaks, so the block
			// needs no lead; and it ends with one, or a later parse would
			// take the last moved line's break for its lead.
			s.lead, block.trail = "", true
		}
		if i == 0 && len(uniq) > 0 {
			block.lead = s.lead
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
	out = append(out, BeginMarker(d.key)...)
	out = append(out, eol...)
	for _, n := range names {
		out = append(out, IPv4+" "...)
		out = append(out, n...)
		out = append(out, eol...)
		out = append(out, IPv6+" "...)
		out = append(out, n...)
		out = append(out, eol...)
	}
	out = append(out, EndMarker(d.key)...)
	if s.trail {
		out = append(out, eol...)
	}
	return out
}

// Lines returns the 1-based numbers of the lines that list name
// (case-insensitively) as a host name, for any address, and that siteplex
// did not write: the user's own entries, which siteplex leaves alone
// (lines inside the block that siteplex did not write included).
func (d *Doc) Lines(name string) []int {
	return d.lookup()[strings.ToLower(name)]
}

// lookup maps every host name on the user's lines to its line numbers.
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
		inBlock := si < len(d.spans) && pos >= d.spans[si].start+len(d.spans[si].lead)
		if !inBlock || d.foreignAt[lineNo] {
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
