package sites

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// EnvFile is a parsed dotenv file (.env-local, .env). Values keep their
// unquoted text; the original bytes are kept so edits change only the
// lines they own.
type EnvFile struct {
	Path   string
	Values map[string]string
	// Warnings name lines that were skipped as unparseable.
	Warnings []string
	raw      []byte
	exists   bool
}

// ReadEnvFile reads and parses path. A missing file is not an error: it
// yields an empty EnvFile whose Exists is false.
func ReadEnvFile(path string) (*EnvFile, error) {
	ef := &EnvFile{Path: path, Values: map[string]string{}}
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return ef, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading env file: %w", err)
	}
	ef.raw, ef.exists = b, true
	for i, line := range splitLines(b) {
		k, v, ok, skip := parseEnvLine(string(trimEOL(line)))
		if skip {
			continue
		}
		if !ok {
			ef.Warnings = append(ef.Warnings, fmt.Sprintf("%s:%d: skipped a line that is not KEY=VALUE", path, i+1))
			continue
		}
		ef.Values[k] = v
	}
	return ef, nil
}

// Exists reports whether the file was there when read.
func (ef *EnvFile) Exists() bool { return ef.exists }

// Raw returns the bytes as read.
func (ef *EnvFile) Raw() []byte { return ef.raw }

// splitLines splits b after each '\n', keeping line endings.
func splitLines(b []byte) [][]byte {
	var out [][]byte
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			out = append(out, b)
			break
		}
		out = append(out, b[:i+1])
		b = b[i+1:]
	}
	return out
}

func trimEOL(line []byte) []byte {
	line = bytes.TrimSuffix(line, []byte("\n"))
	return bytes.TrimSuffix(line, []byte("\r"))
}

// parseEnvLine parses one dotenv line. skip is true for blank lines and
// comments; ok is false for a line that is neither and not KEY=VALUE.
func parseEnvLine(line string) (key, val string, ok, skip bool) {
	t := strings.TrimSpace(line)
	if t == "" || strings.HasPrefix(t, "#") {
		return "", "", false, true
	}
	t = strings.TrimPrefix(t, "\ufeff")
	if rest, found := strings.CutPrefix(t, "export "); found {
		t = strings.TrimSpace(rest)
	}
	eq := strings.IndexByte(t, '=')
	if eq <= 0 {
		return "", "", false, false
	}
	key = strings.TrimSpace(t[:eq])
	if !validEnvKey(key) {
		return "", "", false, false
	}
	val = strings.TrimSpace(t[eq+1:])
	switch {
	case len(val) >= 2 && val[0] == '"' && val[len(val)-1] == '"':
		if u, err := strconv.Unquote(val); err == nil {
			val = u
		} else {
			val = val[1 : len(val)-1]
		}
	case len(val) >= 2 && val[0] == '\'' && val[len(val)-1] == '\'':
		val = val[1 : len(val)-1]
	default:
		if i := strings.Index(val, " #"); i >= 0 {
			val = strings.TrimSpace(val[:i])
		}
	}
	return key, val, true, false
}

func validEnvKey(k string) bool {
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return k != ""
}

// EnvEdit is the result of SetEnvKey: the new file content and what changed.
type EnvEdit struct {
	Content []byte
	// Removed counts duplicate KEY lines that were dropped.
	Removed int
	Changed bool
}

// SetEnvKey returns raw with KEY set to value: the first `KEY=` or
// `export KEY=` line is replaced in place (keeping `export ` and its line
// ending), later duplicates are removed, and every other byte is kept. When
// no line exists one is appended, using the file's line ending. A value of
// nil removes every KEY line.
func SetEnvKey(raw []byte, key string, value *string) EnvEdit {
	lines := splitLines(raw)
	eol := "\n"
	if bytes.Contains(raw, []byte("\r\n")) {
		eol = "\r\n"
	}
	var out bytes.Buffer
	out.Grow(len(raw) + len(key) + 16)
	done := false
	ed := EnvEdit{}
	for _, line := range lines {
		body := trimEOL(line)
		ending := line[len(body):]
		k, _, ok, _ := parseEnvLine(string(body))
		if !ok || k != key {
			out.Write(line)
			continue
		}
		if done || value == nil {
			if done {
				ed.Removed++
			}
			ed.Changed = true
			continue
		}
		done = true
		prefix := ""
		if strings.HasPrefix(strings.TrimSpace(string(body)), "export ") {
			prefix = "export "
		}
		newLine := prefix + key + "=" + *value
		if newLine != string(body) {
			ed.Changed = true
		}
		out.WriteString(newLine)
		out.Write(ending)
	}
	if !done && value != nil {
		if out.Len() > 0 && !bytes.HasSuffix(out.Bytes(), []byte("\n")) {
			out.WriteString(eol)
		}
		out.WriteString(key + "=" + *value + eol)
		ed.Changed = true
	}
	ed.Content = out.Bytes()
	return ed
}
