package sites

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
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
	if len(val) >= 2 && (val[0] == '"' || val[0] == '\'') {
		// A quoted value may be followed by a comment: KEY="v" # note.
		if end := closingQuote(val); end > 0 {
			rest := strings.TrimSpace(val[end+1:])
			if rest == "" || strings.HasPrefix(rest, "#") {
				val = val[:end+1]
			}
		}
	}
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

// closingQuote returns the index of the quote that closes the one at
// val[0] (a backslash escapes inside double quotes), or -1.
func closingQuote(val string) int {
	q := val[0]
	for i := 1; i < len(val); i++ {
		switch {
		case q == '"' && val[i] == '\\':
			i++
		case val[i] == q:
			return i
		}
	}
	return -1
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
	// Removed counts duplicate KEY lines that were dropped (when setting)
	// or every KEY line dropped (when removing).
	Removed int
	Changed bool
}

// SetEnvKey returns raw with KEY set to value: the first `KEY=` or
// `export KEY=` line gets the new value in place — its indentation,
// `export `, spacing, quote style, trailing comment and line ending are
// kept — later duplicates are removed, and every other byte is kept. When
// no line exists one is appended in the file's line-ending style (and, like
// the file, without a final newline if it had none). A value of nil removes
// every KEY line.
func SetEnvKey(raw []byte, key string, value *string) EnvEdit {
	lines := splitLines(raw)
	eol := "\n"
	for _, l := range lines {
		if bytes.HasSuffix(l, []byte("\r\n")) {
			eol = "\r\n"
			break
		}
		if bytes.HasSuffix(l, []byte("\n")) {
			break
		}
	}
	var out bytes.Buffer
	out.Grow(len(raw) + len(key) + 16)
	done := false
	ed := EnvEdit{}
	for i, line := range lines {
		body := trimEOL(line)
		ending := line[len(body):]
		k, _, ok, _ := parseEnvLine(string(body))
		if !ok || k != key {
			out.Write(line)
			continue
		}
		if done || value == nil {
			ed.Removed++
			ed.Changed = true
			// Dropping the last line of a file without a final newline:
			// keep it without one.
			if i == len(lines)-1 && len(ending) == 0 {
				trimmed := trimEOL(out.Bytes())
				out.Truncate(len(trimmed))
			}
			continue
		}
		done = true
		newLine := replaceEnvValue(string(body), *value)
		if newLine != string(body) {
			ed.Changed = true
		}
		out.WriteString(newLine)
		out.Write(ending)
	}
	if !done && value != nil {
		line := key + "=" + quoteEnvValue(*value, 0)
		switch {
		case len(raw) == 0:
			out.WriteString(line + eol)
		case bytes.HasSuffix(raw, []byte("\n")):
			out.WriteString(line + eol)
		default:
			out.WriteString(eol + line)
		}
		ed.Changed = true
	}
	ed.Content = out.Bytes()
	return ed
}

// replaceEnvValue puts value into a KEY=VALUE line, keeping everything
// around the value: what precedes it (BOM, indentation, `export `, the key,
// spaces around `=`), its quotes and a trailing ` # comment`.
func replaceEnvValue(body, value string) string {
	eq := strings.IndexByte(body, '=')
	prefix, rest := body[:eq+1], body[eq+1:]
	val := strings.TrimLeft(rest, " \t")
	prefix += rest[:len(rest)-len(val)]
	suffix := ""
	var q byte
	if len(val) > 0 && (val[0] == '"' || val[0] == '\'') {
		if end := closingQuote(val); end > 0 {
			q, suffix = val[0], val[end+1:]
		}
	}
	if q == 0 {
		if i := strings.Index(val, " #"); i >= 0 {
			val = val[:i]
		}
		trimmed := strings.TrimRight(val, " \t")
		suffix = body[len(prefix)+len(trimmed):]
	}
	return prefix + quoteEnvValue(value, q) + suffix
}

// quoteEnvValue renders value for an env file: in the quote style q (0 =
// unquoted), falling back to double quotes where the value needs them.
func quoteEnvValue(value string, q byte) string {
	needs := strings.ContainsAny(value, " \t#\"'\\\n\r$`") || value != strings.TrimSpace(value)
	switch {
	case q == '\'' && !strings.ContainsAny(value, "'\n\r"):
		return "'" + value + "'"
	case q == '"' || needs:
		return strconv.Quote(value)
	}
	return value
}

// SaveEnvKey sets KEY to value (nil removes it) in the env file at path
// with SetEnvKey and writes the file only when it changes: a temporary
// file in the same folder, synced, then renamed over the old one, keeping
// its mode and owner (a symlink is followed; where rename cannot replace
// the file, as with a file bind-mounted into a container, it is rewritten
// in place). A missing file is created (mode 0644) when a value is set.
func SaveEnvKey(path, key string, value *string) (EnvEdit, error) {
	target := path
	if real, err := filepath.EvalSymlinks(path); err == nil {
		target = real
	} else if dest, lerr := os.Readlink(path); lerr == nil {
		// A dangling symlink: create its target, keep the link.
		if !filepath.IsAbs(dest) {
			dest = filepath.Join(filepath.Dir(path), dest)
		}
		target = dest
	}
	raw, err := os.ReadFile(target)
	exists := err == nil
	if err != nil && !os.IsNotExist(err) {
		return EnvEdit{}, fmt.Errorf("reading env file: %w", err)
	}
	ed := SetEnvKey(raw, key, value)
	if !ed.Changed {
		return ed, nil
	}
	mode := os.FileMode(0o644)
	uid, gid := -1, -1
	if exists {
		if st, err := os.Stat(target); err == nil {
			mode = st.Mode().Perm()
			if sys, ok := st.Sys().(*syscall.Stat_t); ok {
				uid, gid = int(sys.Uid), int(sys.Gid)
			}
		}
	}
	if err := writeFileAtomic(target, ed.Content, mode, uid, gid); err != nil {
		if errors.Is(err, os.ErrPermission) {
			return EnvEdit{}, fmt.Errorf("writing env file %s: permission denied: siteplex writes a new copy next to it and renames it over, so the folder %s must be writable by you, or at least the file itself (run it as their owner)", target, filepath.Dir(target))
		}
		return EnvEdit{}, fmt.Errorf("writing env file %s: %w", target, err)
	}
	return ed, nil
}

// rewriteInPlace overwrites an existing file's content.
func rewriteInPlace(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// writeFileAtomic replaces path with data through a temporary file and a
// rename; uid/gid of -1 leave the owner alone.
func writeFileAtomic(path string, data []byte, mode os.FileMode, uid, gid int) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+strings.TrimPrefix(filepath.Base(path), ".")+".siteplex-*")
	if err != nil {
		if errors.Is(err, os.ErrPermission) {
			// The folder is not writable but the file may be: rewrite it
			// in place (not atomic, but what an editor would do).
			if werr := rewriteInPlace(path, data); werr == nil {
				return nil
			}
		}
		return err
	}
	name := tmp.Name()
	defer os.Remove(name)
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if err == nil {
		err = tmp.Chmod(mode)
	}
	if err == nil && uid >= 0 && os.Geteuid() == 0 {
		err = tmp.Chown(uid, gid)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Rename(name, path); err != nil {
		if errors.Is(err, syscall.EBUSY) || errors.Is(err, syscall.EXDEV) {
			// A bind-mounted file cannot be replaced: rewrite it in place.
			return rewriteInPlace(path, data)
		}
		return err
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
