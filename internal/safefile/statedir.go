package safefile

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"
)

// DefaultKeep is how many rotating backups Update keeps per file.
const DefaultKeep = 5

// PristineName is the name of the copy of a file as it was before siteplex
// first changed it, in the file's backup folder.
const PristineName = "pristine"

// intentName is the in-place intent file in the backup folder.
const intentName = "intent"

// stampLayout is the UTC time in backup names; it sorts as it reads.
const stampLayout = "20060102T150405.000000000Z"

// StateDir is siteplex's state folder for this user, where backups go:
// $XDG_STATE_HOME/siteplex when XDG_STATE_HOME is an absolute path, else
// <home>/.local/state/siteplex, with <home> from $HOME or, when HOME is
// unset (as under some sudo and service setups), from the user database.
// It never falls back to a shared folder such as /tmp: without a home it
// fails with a message that says what to set.
func StateDir() (string, error) {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "siteplex"), nil
	}
	home := os.Getenv("HOME")
	if home == "" || !filepath.IsAbs(home) {
		u, err := user.Current()
		if err != nil || u.HomeDir == "" || !filepath.IsAbs(u.HomeDir) {
			return "", fmt.Errorf("no folder for siteplex's backups: HOME is not set and the user database has no home folder for uid %d; set XDG_STATE_HOME (or HOME) to a folder of your own", os.Geteuid())
		}
		home = u.HomeDir
	}
	return filepath.Join(home, ".local", "state", "siteplex"), nil
}

// PrivateDir makes dir (and the folders up to it) when missing, mode 0700,
// and checks that root and every folder from root down to dir is a real
// folder (not a symlink) that belongs to this user and that nobody else may
// write: otherwise another user could plant a link there and make siteplex
// overwrite or delete a file of theirs choosing. dir must be root or inside
// it. The error is an *UnsafeDirError, or says why the folder cannot be
// made.
func PrivateDir(root, dir string) error {
	root, dir = filepath.Clean(root), filepath.Clean(dir)
	rel, err := filepath.Rel(root, dir)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return fmt.Errorf("backup folder %s is not inside %s", dir, root)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("cannot make the backup folder %s: %w (set XDG_STATE_HOME to a folder of your own)", dir, err)
	}
	p := root
	parts := []string{}
	if rel != "." {
		parts = strings.Split(rel, string(filepath.Separator))
	}
	for i := 0; ; i++ {
		if err := checkPrivate(p); err != nil {
			return err
		}
		if i == len(parts) {
			return nil
		}
		p = filepath.Join(p, parts[i])
	}
}

// checkPrivate checks one folder of PrivateDir.
func checkPrivate(p string) error {
	fi, err := os.Lstat(p)
	if err != nil {
		return fmt.Errorf("backup folder: %w", err)
	}
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		return &UnsafeDirError{p, "is a symlink"}
	case !fi.IsDir():
		return &UnsafeDirError{p, "is not a folder"}
	case fi.Mode().Perm()&0o022 != 0:
		return &UnsafeDirError{p, fmt.Sprintf("may be written by others (mode %v)", fi.Mode().Perm())}
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
		return &UnsafeDirError{p, fmt.Sprintf("belongs to uid %d, not to you (uid %d)", st.Uid, os.Geteuid())}
	}
	return nil
}

// backupRE matches the names of rotating backups with prefix.
func backupRE(prefix string) *regexp.Regexp {
	return regexp.MustCompile(`^` + regexp.QuoteMeta(prefix) + `\d{8}T\d{6}\.\d{9}Z(-\d+)?$`)
}

// Backups lists the rotating backups Update saved in dir with prefix,
// oldest first. Only regular files with the names Update gives are listed.
// A missing folder has none.
func Backups(dir, prefix string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	re := backupRE(prefix)
	var out []string
	for _, e := range ents {
		if e.Type().IsRegular() && re.MatchString(e.Name()) {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	slices.Sort(out)
	return out, nil
}

// saveBackups writes data (the file before a change) to dir as the
// pristine copy when asked and there is none yet, and as a new rotating
// backup, then deletes the oldest rotating backups beyond keep. dir has
// been checked by PrivateDir.
func saveBackups(dir string, o Options, data []byte) (backup, pristine string, err error) {
	if o.Pristine {
		p := filepath.Join(dir, PristineName)
		if _, err := os.Lstat(p); errors.Is(err, fs.ErrNotExist) {
			if err := writeAtomic(dir, PristineName, data); err != nil {
				return "", "", fmt.Errorf("saving the pristine copy: %w", err)
			}
			pristine = p
		}
	}
	now := time.Now().UTC()
	name := o.Prefix + now.Format(stampLayout)
	for i := 1; ; i++ {
		if _, err := os.Lstat(filepath.Join(dir, name)); errors.Is(err, fs.ErrNotExist) {
			break
		}
		name = fmt.Sprintf("%s%s-%d", o.Prefix, now.Format(stampLayout), i)
	}
	if err := writeAtomic(dir, name, data); err != nil {
		return "", pristine, fmt.Errorf("saving a backup: %w", err)
	}
	keep := o.Keep
	if keep <= 0 {
		keep = DefaultKeep
	}
	if list, err := Backups(dir, o.Prefix); err == nil {
		for len(list) > keep {
			os.Remove(list[0])
			list = list[1:]
		}
	}
	return filepath.Join(dir, name), pristine, nil
}

// writeAtomic writes data to dir/name with WriteAtomic (mode 0600).
func writeAtomic(dir, name string, data []byte) error {
	return WriteAtomic(filepath.Join(dir, name), data, 0o600)
}

// WriteAtomic writes data to path through path+".tmp" (made with O_EXCL
// and O_NOFOLLOW, mode perm, fsynced) and a rename, then fsyncs the
// folder: a killed writer never leaves a torn file, and once WriteAtomic
// returns the file survives a crash. A stale path+".tmp" of a killed
// writer is replaced. For siteplex's own files (backups, journals), not
// for the user's (use Update).
func WriteAtomic(path string, data []byte, perm fs.FileMode) error {
	tmp := path + ".tmp"
	os.Remove(tmp) // a killed writer's
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, perm)
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
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(filepath.Dir(path))
}

// Replace writes data to path through a temporary file with a random name
// beside it (mode perm) and a rename, so that a reader never sees half a
// file and several writers may replace the same path at once; the last
// rename wins. With sync, the file and then the folder are fsynced before
// it returns. prepare, when not nil, runs on the temporary file's path
// before the rename (to give it to the user siteplex acts for). For
// siteplex's own files (caches, the local CA), like WriteAtomic.
func Replace(path string, data []byte, perm fs.FileMode, sync bool, prepare func(tmp string) error) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			os.Remove(tmp)
		}
	}()
	if err = f.Chmod(perm); err == nil {
		_, err = f.Write(data)
	}
	if err == nil && sync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && prepare != nil {
		err = prepare(tmp)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err == nil && sync {
		_ = syncDir(filepath.Dir(path))
	}
	return err
}

// SyncDir fsyncs folder dir, so that a rename or an unlink in it is on
// disk.
func SyncDir(dir string) error { return syncDir(dir) }

// removeStaleBackupTemps deletes the temporary files of backups a killed
// writer left in dir: only names writeAtomic makes.
func removeStaleBackupTemps(dir, prefix string) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	re := backupRE(prefix)
	for _, e := range ents {
		n, ok := strings.CutSuffix(e.Name(), ".tmp")
		if ok && e.Type().IsRegular() && (n == PristineName || n == intentName || re.MatchString(n)) {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}

// syncDir fsyncs folder dir, so that a rename or an unlink in it is on
// disk.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return err
	}
	return nil
}

// FolderKey names the backup folder of the file at path (absolute,
// symlinks resolved) inside a state folder: the path with '-' for '/'
// (its last 80 characters) and the first 8 hex digits of its SHA-256, so
// that two files never share a folder: "home-me-acme-.env-local-1a2b3c4d".
func FolderKey(path string) string {
	key := strings.Trim(strings.ReplaceAll(filepath.Clean(path), string(filepath.Separator), "-"), "-")
	sum := sha256.Sum256([]byte(path))
	if len(key) > 80 {
		key = key[len(key)-80:]
	}
	return key + "-" + hex.EncodeToString(sum[:4])
}
