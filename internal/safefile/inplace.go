package safefile

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// intentMagic starts an intent file.
const intentMagic = "siteplex-intent 1\n"

// intentHeader is the JSON line after intentMagic; the old content and
// then the new content follow it.
type intentHeader struct {
	Path      string `json:"path"`
	Dev       uint64 `json:"dev"`
	Ino       uint64 `json:"ino"`
	OldSize   int    `json:"old_size"`
	OldSHA256 string `json:"old_sha256"`
	NewSize   int    `json:"new_size"`
	NewSHA256 string `json:"new_sha256"`
	Time      string `json:"time"`
}

// intent is a parsed intent file.
type intent struct {
	intentHeader
	old, new []byte
}

func shaHex(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

func devIno(fi fs.FileInfo) (dev, ino uint64) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Dev), uint64(st.Ino)
	}
	return 0, 0
}

// writeIntent saves the intent to overwrite the file w is open on (at
// path) from old to new, fsynced, in dir.
func writeIntent(dir, path string, w *os.File, old, new []byte) error {
	fi, err := w.Stat()
	if err != nil {
		return err
	}
	h := intentHeader{Path: path, OldSize: len(old), OldSHA256: shaHex(old), NewSize: len(new),
		NewSHA256: shaHex(new), Time: time.Now().UTC().Format(time.RFC3339Nano)}
	h.Dev, h.Ino = devIno(fi)
	js, err := json.Marshal(h)
	if err != nil {
		return err
	}
	var b bytes.Buffer
	b.Grow(len(intentMagic) + len(js) + 1 + len(old) + len(new))
	b.WriteString(intentMagic)
	b.Write(js)
	b.WriteByte('\n')
	b.Write(old)
	b.Write(new)
	return writeAtomic(dir, intentName, b.Bytes())
}

// readIntent reads dir's intent file; nil, nil when there is none.
func readIntent(dir string) (*intent, error) {
	data, err := os.ReadFile(filepath.Join(dir, intentName))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	rest, ok := bytes.CutPrefix(data, []byte(intentMagic))
	if !ok {
		return nil, fmt.Errorf("%s is not a siteplex intent file", filepath.Join(dir, intentName))
	}
	line, body, ok := bytes.Cut(rest, []byte{'\n'})
	in := &intent{}
	if !ok || json.Unmarshal(line, &in.intentHeader) != nil || in.OldSize < 0 || in.NewSize < 0 ||
		len(body) != in.OldSize+in.NewSize {
		return nil, fmt.Errorf("%s is damaged", filepath.Join(dir, intentName))
	}
	in.old, in.new = body[:in.OldSize], body[in.OldSize:]
	if shaHex(in.old) != in.OldSHA256 || shaHex(in.new) != in.NewSHA256 {
		return nil, fmt.Errorf("%s is damaged (checksum)", filepath.Join(dir, intentName))
	}
	return in, nil
}

func removeIntent(dir string) error {
	if err := os.Remove(filepath.Join(dir, intentName)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return syncDir(dir)
}

// writeInPlace overwrites the file w is open on (path, read as old) with
// new, keeping its inode: the intent file (old and new, fsynced) first,
// then the compare before replace (check), then the space for new is
// reserved, new is written and fsynced, and only then is the file
// truncated to new's length. On an error the old content is put back;
// when even that fails the intent file stays, and the next Update puts
// things right.
func writeInPlace(w *os.File, path, dir string, old, new []byte, check func() error) error {
	if err := writeIntent(dir, path, w, old, new); err != nil {
		return fmt.Errorf("saving the intent file before rewriting %s in place: %w; %s was not changed", path, err, path)
	}
	if err := check(); err != nil {
		removeIntent(dir)
		return err
	}
	if len(new) > len(old) {
		if err := reserve(w, int64(len(old)), new); err != nil {
			// writeTail may have written past the old end: cut that off.
			w.Truncate(int64(len(old)))
			w.Sync()
			removeIntent(dir)
			return fmt.Errorf("reserving %d bytes to rewrite %s in place: %w; %s was not changed", len(new), path, err, path)
		}
	}
	if err := overwrite(w, new, int64(len(old))); err != nil {
		if uerr := overwrite(w, old, int64(len(new))); uerr != nil {
			return fmt.Errorf("rewriting %s in place: %w; putting its previous content back failed too (%v): it is kept in %s, and the next siteplex command that edits %s finishes or undoes the write",
				path, err, uerr, filepath.Join(dir, intentName), path)
		}
		removeIntent(dir)
		return fmt.Errorf("rewriting %s in place: %w; its previous content was put back", path, err)
	}
	if err := removeIntent(dir); err != nil {
		return fmt.Errorf("%s was rewritten, but its intent file could not be removed: %w", path, err)
	}
	return nil
}

// overwrite writes data at the start of the file w is open on and fsyncs
// it; when the file was longer (size), it then truncates it to data's
// length and fsyncs again: never truncate before the new bytes are on
// disk.
func overwrite(w *os.File, data []byte, size int64) error {
	if _, err := w.WriteAt(data, 0); err != nil {
		return err
	}
	if err := w.Sync(); err != nil {
		return err
	}
	if size > int64(len(data)) {
		if err := w.Truncate(int64(len(data))); err != nil {
			return err
		}
		return w.Sync()
	}
	return nil
}

// recoverIntent deals with an intent file a killed in-place writer left in
// dir for the file f holds locked (at path): it finishes the write when
// the file holds only bytes of the old and the new content, and leaves a
// file that someone else changed since as it is, keeping the old content
// beside the backups. It says what it did ("" when there was nothing to
// do).
func recoverIntent(f *os.File, path, dir string) (string, error) {
	in, err := readIntent(dir)
	if err != nil {
		// Keep it for people to look at; it cannot be acted on.
		aside := filepath.Join(dir, "intent.damaged-"+time.Now().UTC().Format(stampLayout))
		if rerr := os.Rename(filepath.Join(dir, intentName), aside); rerr != nil {
			return "", fmt.Errorf("%w; moving it aside: %v", err, rerr)
		}
		return fmt.Sprintf("warning: %v; moved it to %s and left %s as it is", err, aside, path), nil
	}
	if in == nil {
		return "", nil
	}
	fi, err := f.Stat()
	if err != nil {
		return "", err
	}
	cur, err := readAll(f, fi.Size())
	if err != nil {
		return "", readErr(path, err)
	}
	dev, ino := devIno(fi)
	switch {
	case in.Path == path && dev == in.Dev && ino == in.Ino && bytes.Equal(cur, in.new):
		if err := f.Sync(); err != nil {
			return "", err
		}
		if err := removeIntent(dir); err != nil {
			return "", err
		}
		return fmt.Sprintf("a siteplex write of %s was interrupted after it had written everything; completed it", path), nil
	case in.Path == path && dev == in.Dev && ino == in.Ino && bytes.Equal(cur, in.old):
		if err := removeIntent(dir); err != nil {
			return "", err
		}
		return fmt.Sprintf("a siteplex write of %s was interrupted before it changed anything; rolled it back (nothing to undo)", path), nil
	case in.Path == path && dev == in.Dev && ino == in.Ino && consistent(cur, in.old, in.new):
		w, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			if IsPermission(err) {
				return "", &PermissionError{Path: path, Err: err}
			}
			return "", err
		}
		defer w.Close()
		if len(in.new) > len(cur) {
			if err := reserve(w, int64(len(cur)), in.new); err != nil {
				return "", fmt.Errorf("%s is half rewritten by an interrupted siteplex, and finishing the write failed: %w; its previous content is in %s", path, err, filepath.Join(dir, intentName))
			}
		}
		if err := overwrite(w, in.new, int64(len(cur))); err != nil {
			return "", fmt.Errorf("%s is half rewritten by an interrupted siteplex, and finishing the write failed: %w; its previous content is in %s", path, err, filepath.Join(dir, intentName))
		}
		if err := removeIntent(dir); err != nil {
			return "", err
		}
		return fmt.Sprintf("a siteplex write of %s was interrupted half way; completed it (the previous content is in the backups)", path), nil
	}
	// Replaced, or changed by someone else since: not ours to touch.
	aside := "interrupted." + time.Now().UTC().Format(stampLayout)
	if err := writeAtomic(dir, aside, in.old); err != nil {
		return "", fmt.Errorf("keeping the content of %s from before an interrupted siteplex write: %w", path, err)
	}
	if err := removeIntent(dir); err != nil {
		return "", err
	}
	return fmt.Sprintf("warning: a siteplex write of %s was interrupted, and the file was changed by something else since; left it as it is. Its content from before the interrupted write is in %s",
		path, filepath.Join(dir, aside)), nil
}

// consistent reports whether cur can be what an in-place write from old
// to new leaves when it is cut short: each byte is old's or new's at that
// offset (or zero in reserved space past old's end), and the length lies
// between the two.
func consistent(cur, old, new []byte) bool {
	if len(cur) > max(len(old), len(new)) || len(cur) < min(len(old), len(new)) {
		return false
	}
	for i, c := range cur {
		if !(i < len(old) && c == old[i] || i < len(new) && c == new[i] || i >= len(old) && c == 0) {
			return false
		}
	}
	return true
}

// Pending reports whether dir holds an intent file: an in-place write that
// was interrupted and that the next Update of the file will finish or
// undo. For status commands.
func Pending(dir string) bool {
	_, err := os.Lstat(filepath.Join(dir, intentName))
	return err == nil
}

// writeTail writes data[size:] at offset size and fsyncs: the room for
// data is then taken, and the first size bytes are untouched.
func writeTail(w *os.File, size int64, data []byte) error {
	if int64(len(data)) <= size {
		return nil
	}
	if _, err := w.WriteAt(data[size:], size); err != nil {
		return err
	}
	return w.Sync()
}
