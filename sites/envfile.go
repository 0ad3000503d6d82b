package sites

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/siteplex/siteplex/internal/safefile"
)

// EnvFile is a parsed dotenv file (.env-local, .env), read by the rules
// of python-dotenv (see parseEnv). Values hold every key with a value;
// the original bytes are kept so edits change only the lines they own.
type EnvFile struct {
	Path   string
	Values map[string]string
	// Warnings name lines that were skipped as unparseable, or a path that
	// is not a regular file.
	Warnings []string
	raw      []byte
	exists   bool
}

// utf8BOM is the byte order mark an env file may start with; it is kept
// and never taken for part of the first key.
var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// ReadEnvFile reads and parses path. A missing file is not an error: it
// yields an empty EnvFile whose Exists is false. A folder is an error;
// something else that is not a regular file (/dev/null, a pipe) is read
// as empty, with a warning, and never waited on.
func ReadEnvFile(path string) (*EnvFile, error) {
	ef := &EnvFile{Path: path, Values: map[string]string{}}
	st, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return ef, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading env file: %w", err)
	}
	if st.IsDir() {
		return nil, fmt.Errorf("reading env file: %w", &fs.PathError{Op: "read", Path: path, Err: syscall.EISDIR})
	}
	if !st.Mode().IsRegular() {
		ef.exists = true
		ef.Warnings = append(ef.Warnings, fmt.Sprintf("%s is not a regular file (%v): read as empty, and siteplex will not write it", path, st.Mode().Type()))
		return ef, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading env file: %w", err)
	}
	ef.raw, ef.exists = b, true
	body := bytes.TrimPrefix(b, utf8BOM)
	for _, bd := range parseEnv(body) {
		switch {
		case bd.err:
			ef.Warnings = append(ef.Warnings, fmt.Sprintf("%s:%d: skipped a line that is not KEY=VALUE", path, lineOf(body, bd.lineStart)))
		case bd.hasKey && bd.hasValue:
			ef.Values[bd.key] = bd.value
		}
	}
	return ef, nil
}

// lineOf is the 1-based line number of offset i, counting line breaks as
// python-dotenv does ("\r\n", "\n" or "\r").
func lineOf(d []byte, i int) int {
	n := 1
	for j := 0; j < i && j < len(d); j++ {
		if d[j] == '\n' || d[j] == '\r' && (j+1 >= len(d) || d[j+1] != '\n') {
			n++
		}
	}
	return n
}

// Exists reports whether the file was there when read.
func (ef *EnvFile) Exists() bool { return ef.exists }

// Raw returns the bytes as read.
func (ef *EnvFile) Raw() []byte { return ef.raw }

// EnvEdit is the result of SetEnvKey and SaveEnvKey: the new content and
// what changed.
type EnvEdit struct {
	Content []byte
	// Removed counts duplicate KEY lines that were dropped (when setting)
	// or every KEY line dropped (when removing).
	Removed int
	Changed bool
	// Set by SaveEnvKey: the file written (symlinks resolved), whether it
	// was rewritten in place, the backup of the previous content, and how
	// an interrupted write left by a killed siteplex was finished ("" when
	// there was none).
	Path      string
	InPlace   bool
	Backup    string
	Recovered string
}

// UnsafeEnvEditError means the edit would change how another line of
// the file is read (an unterminated quote that the new line would close,
// say). Nothing was written.
type UnsafeEnvEditError struct {
	Key    string
	Reason string
}

func (e *UnsafeEnvEditError) Error() string {
	return fmt.Sprintf("cannot change %s safely: %s; fix the file by hand (nothing was written)", e.Key, e.Reason)
}

// SetEnvKey returns raw with KEY set to value, as python-dotenv reads
// the file: the first binding of KEY (`KEY=`, `export KEY=`, `'KEY'=`,
// even one spread over lines by quotes) gets the new value in place — its
// indentation, `export`, spacing, quote style, trailing comment and line
// ending are kept — later bindings of KEY are removed, and every other
// byte is kept, a UTF-8 BOM included. `KEY=` inside another variable's
// quoted value is not a binding and is never touched. When no binding
// exists one is appended in the file's line-ending style (and, like the
// file, without a final newline if it had none). A value of nil removes
// every KEY binding. The result is parsed again and must read like the
// input for every other key (else *UnsafeEnvEditError).
func SetEnvKey(raw []byte, key string, value *string) (EnvEdit, error) {
	bomLen := 0
	if bytes.HasPrefix(raw, utf8BOM) {
		bomLen = len(utf8BOM)
	}
	body := raw[bomLen:]
	bindings := parseEnv(body)
	var out bytes.Buffer
	out.Grow(len(raw) + len(key) + 16)
	out.Write(raw[:bomLen])
	ed := EnvEdit{}
	done := false
	prev := 0
	for _, b := range bindings {
		if b.err || !b.hasKey || b.key != key {
			continue
		}
		if !done && value != nil {
			done = true
			if b.hasValue {
				out.Write(body[prev:b.valStart])
				out.WriteString(quoteEnvValue(*value, b.quote))
				prev = b.valEnd
			} else {
				out.Write(body[prev:b.keyEnd])
				out.WriteString("=" + quoteEnvValue(*value, 0))
				prev = b.keyEnd
			}
			continue
		}
		ed.Removed++
		from, to := lineSpan(body, b)
		out.Write(body[prev:from])
		prev = to
	}
	out.Write(body[prev:])
	if !done && value != nil {
		appendEnvLine(&out, body, key+"="+quoteEnvValue(*value, 0))
	}
	ed.Content = out.Bytes()
	ed.Changed = !bytes.Equal(ed.Content, raw)
	if err := checkEnvEdit(body, ed.Content[bomLen:], key, value); err != nil {
		return EnvEdit{}, err
	}
	return ed, nil
}

// lineSpan is the part of body that removing binding b takes out: from
// the start of its key's line to its end, line break included; at the end
// of a file without a final newline, the line break before it too, so the
// file keeps having no final newline.
func lineSpan(body []byte, b envBinding) (int, int) {
	from, to := b.lineStart, b.end
	if to == len(body) && (to == 0 || body[to-1] != '\n' && body[to-1] != '\r') && from > 0 {
		switch {
		case from >= 2 && body[from-2] == '\r' && body[from-1] == '\n':
			from -= 2
		case body[from-1] == '\n' || body[from-1] == '\r':
			from--
		}
	}
	return from, to
}

// appendEnvLine appends line to out (which holds body) in body's
// line-ending style.
func appendEnvLine(out *bytes.Buffer, body []byte, line string) {
	eol := "\n"
	if i := bytes.IndexAny(body, "\r\n"); i >= 0 {
		switch {
		case body[i] == '\n':
		case i+1 < len(body) && body[i+1] == '\n':
			eol = "\r\n"
		default:
			eol = "\r"
		}
	}
	switch {
	case len(body) == 0, body[len(body)-1] == '\n', body[len(body)-1] == '\r':
		out.WriteString(line + eol)
	default:
		out.WriteString(eol + line)
	}
}

// checkEnvEdit parses before and after and checks that every binding but
// key's reads the same, and that key reads as value (nil: absent).
func checkEnvEdit(before, after []byte, key string, value *string) error {
	type kv struct {
		key, value string
		hasValue   bool
	}
	others := func(d []byte) (list []kv, got []string) {
		for _, b := range parseEnv(d) {
			switch {
			case b.err:
				list = append(list, kv{key: "\x00error"})
			case !b.hasKey:
			case b.key == key:
				if b.hasValue {
					got = append(got, b.value)
				} else {
					got = append(got, "\x00none")
				}
			default:
				list = append(list, kv{b.key, b.value, b.hasValue})
			}
		}
		return list, got
	}
	a, _ := others(before)
	b, got := others(after)
	if len(a) != len(b) {
		return &UnsafeEnvEditError{key, "the file would then read differently (an unterminated quote in it?)"}
	}
	for i := range a {
		if a[i] != b[i] {
			return &UnsafeEnvEditError{key, fmt.Sprintf("%s would then read differently (an unterminated quote before it?)", b[i].key)}
		}
	}
	switch {
	case value == nil && len(got) > 0:
		return &UnsafeEnvEditError{key, "it would still be set"}
	case value != nil && (len(got) != 1 || got[0] != *value):
		return &UnsafeEnvEditError{key, "it would not read back as " + strconv.Quote(*value)}
	}
	return nil
}

// quoteEnvValue renders value for an env file in the quote style q (0 =
// unquoted), falling back to double quotes where python-dotenv would not
// read the value back unchanged.
func quoteEnvValue(value string, q byte) string {
	plain := true
	for i := 0; i < len(value); i++ {
		c := value[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("_./:@%+,=-", c) >= 0) {
			plain = false
			break
		}
	}
	switch {
	case q == '\'' && !strings.ContainsAny(value, `'\`):
		return "'" + value + "'"
	case q == 0 && plain:
		return value
	}
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\r", `\r`)
	return `"` + r.Replace(value) + `"`
}

// EnvPermissionError means this user may not write the env file (or
// create it in its folder). Nothing was written and no permission was
// changed; the message says how to get the change made.
type EnvPermissionError struct {
	Path string
	// Create is true when the file does not exist and its folder is not
	// writable.
	Create bool
	// Owner names the file's owner ("root", "uid 1000"); Mode is its mode.
	Owner string
	Mode  fs.FileMode
	Err   error
}

func (e *EnvPermissionError) Error() string {
	if e.Create {
		return fmt.Sprintf("cannot create env file %s: permission denied (its folder %s is not writable by you); nothing was written. Create the file as the folder's owner (sudo install -m 0644 -o %s /dev/null %s), or point --env-file at a file you may write",
			e.Path, filepath.Dir(e.Path), currentUser(), e.Path)
	}
	if e.Owner == currentUser() {
		return fmt.Sprintf("cannot write env file %s: permission denied (it is yours but read-only, mode %04o); nothing was written, and siteplex never changes permissions. Make it writable: chmod u+w %s",
			e.Path, e.Mode.Perm(), e.Path)
	}
	return fmt.Sprintf("cannot write env file %s: permission denied (it belongs to %s, mode %04o); nothing was written, and siteplex never changes permissions. Run the same command as %s, or make the file yours: sudo chown %s %s",
		e.Path, e.Owner, e.Mode.Perm(), e.Owner, currentUser(), e.Path)
}

func (e *EnvPermissionError) Unwrap() error { return e.Err }

// currentUser names this process's user for a chown command.
func currentUser() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return strconv.Itoa(os.Geteuid())
}

// ownerName names the owner of fi ("root", "uid 1000").
func ownerName(fi fs.FileInfo) string {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return "another user"
	}
	if u, err := user.LookupId(strconv.FormatUint(uint64(st.Uid), 10)); err == nil {
		return u.Username
	}
	return "uid " + strconv.FormatUint(uint64(st.Uid), 10)
}

// envBackupPrefix starts the names of an env file's rotating backups.
const envBackupPrefix = "env."

// EnvBackupFolder is the folder, under the state folder base (see
// safefile.StateDir), holding the backups of the env file at path
// (absolute, symlinks resolved): <base>/env-backups/<path key>.
func EnvBackupFolder(base, path string) string {
	return filepath.Join(base, "env-backups", safefile.FolderKey(path))
}

// SaveEnvKey sets KEY to value (nil removes it) in the env file at path
// with SetEnvKey, through the shared safe writer (internal/safefile; the
// rules are in docs/use.md): the file is locked and re-read under the
// lock; nothing is written when nothing changes; a symlink is followed to
// a regular file (a dangling one, a device such as /dev/null or a folder
// is refused); it must be writable by this user before anything is written
// (else an *EnvPermissionError); the previous content is backed up
// (a pristine copy and 5 rotating backups in EnvBackupFolder); a
// temporary file with the file's mode, owner and extended attributes
// replaces it after checking it is still what was read, or, where a
// rename cannot keep the file as it is (a bind mount, a folder you may
// not write, hard links), it is rewritten in place with the space
// reserved and the old content kept in an intent file until the new
// bytes are synced. A missing file is created (mode 0644) when a value is
// set.
func SaveEnvKey(ctx context.Context, path, key string, value *string) (EnvEdit, error) {
	var ed EnvEdit
	file := path
	if f, err := safefile.Resolve(path); err == nil {
		file = f
	} else if abs, aerr := filepath.Abs(path); aerr == nil {
		file = abs
	}
	base, err := safefile.StateDir()
	if err != nil {
		return ed, fmt.Errorf("writing env file %s: %w", file, err)
	}
	so := safefile.Options{Root: base, Dir: EnvBackupFolder(base, file), Prefix: envBackupPrefix,
		Pristine: true, CreateMode: 0o644}
	res, err := safefile.Update(ctx, path, so, func(old []byte) ([]byte, error) {
		e, err := SetEnvKey(old, key, value)
		if err != nil {
			return nil, fmt.Errorf("env file %s: %w", file, err)
		}
		ed = e
		return e.Content, nil
	})
	if res != nil {
		ed.Path, ed.Changed, ed.InPlace, ed.Backup, ed.Recovered = res.Path, res.Changed, res.InPlace, res.Backup, res.Recovered
	}
	var pe *safefile.PermissionError
	if errors.As(err, &pe) {
		epe := &EnvPermissionError{Path: pe.Path, Err: pe.Err}
		if fi, serr := os.Stat(pe.Path); serr == nil {
			epe.Owner, epe.Mode = ownerName(fi), fi.Mode()
		} else {
			epe.Create = true
		}
		return ed, epe
	}
	if err != nil {
		var ue *UnsafeEnvEditError
		if errors.As(err, &ue) {
			return ed, err
		}
		return ed, fmt.Errorf("writing env file: %w", err)
	}
	return ed, nil
}
