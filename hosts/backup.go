package hosts

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// DefaultKeep is how many rotating backups are kept.
const DefaultKeep = 5

// DefaultBackupDir is the user's state folder for siteplex:
// $XDG_STATE_HOME/siteplex, else ~/.local/state/siteplex.
func DefaultBackupDir() string {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "siteplex")
	}
	home, err := os.UserHomeDir()
	if err != nil || home == "" {
		home = os.TempDir()
	}
	return filepath.Join(home, ".local", "state", "siteplex")
}

// BackupFolder is the folder holding the backups of the hosts file at path
// (symlinks resolved) under base ("" = DefaultBackupDir()):
// <base>/hosts-backups/etc-hosts for /etc/hosts, <base>/hosts-backups/
// <path with - for />-<hash> for others. In it, "pristine" is the file as it
// was before siteplex first changed it and "hosts.<UTC time>" are the
// rotating backups, newest last.
func BackupFolder(base, path string) string {
	if base == "" {
		base = DefaultBackupDir()
	}
	key := strings.Trim(strings.ReplaceAll(filepath.Clean(path), string(filepath.Separator), "-"), "-")
	if filepath.Clean(path) != "/etc/hosts" {
		sum := sha256.Sum256([]byte(path))
		if len(key) > 80 {
			key = key[len(key)-80:]
		}
		key += "-" + hex.EncodeToString(sum[:4])
	}
	return filepath.Join(base, "hosts-backups", key)
}

// Backups lists the rotating backups of path under base, oldest first.
func Backups(base, path string) ([]string, error) {
	dir := BackupFolder(base, path)
	ents, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "hosts.") && !strings.HasSuffix(e.Name(), ".tmp") {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	sort.Strings(out)
	return out, nil
}

// backup saves data (the file before the change) as the pristine copy when
// there is none yet, and as a new rotating backup, keeping o.Keep.
func (r *Result) backup(o Options, data []byte) error {
	dir := BackupFolder(o.BackupDir, r.Path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("hosts: backup folder: %w (set XDG_STATE_HOME to a writable folder)", err)
	}
	pristine := filepath.Join(dir, "pristine")
	if _, err := os.Lstat(pristine); errors.Is(err, fs.ErrNotExist) {
		if err := writeAtomic(pristine, data); err != nil {
			return fmt.Errorf("hosts: saving the pristine copy: %w", err)
		}
		r.Pristine = pristine
	}
	stamp := time.Now().UTC().Format("20060102T150405.000000000Z")
	name := filepath.Join(dir, "hosts."+stamp)
	for i := 1; ; i++ {
		if _, err := os.Lstat(name); errors.Is(err, fs.ErrNotExist) {
			break
		}
		name = filepath.Join(dir, fmt.Sprintf("hosts.%s-%d", stamp, i))
	}
	if err := writeAtomic(name, data); err != nil {
		return fmt.Errorf("hosts: saving a backup: %w", err)
	}
	r.Backup = name
	keep := o.Keep
	if keep <= 0 {
		keep = DefaultKeep
	}
	list, err := Backups(o.BackupDir, r.Path)
	if err != nil {
		return nil // the backup is made; pruning can wait
	}
	for len(list) > keep {
		os.Remove(list[0])
		list = list[1:]
	}
	return nil
}

// writeAtomic writes data to name through a temporary file and rename, so
// a killed siteplex never leaves a torn backup.
func writeAtomic(name string, data []byte) error {
	tmp := name + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, name)
}
