package safefile

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
)

// interruptedRE matches the copies recoverIntent keeps of a file changed
// by someone else after an interrupted write.
var interruptedRE = regexp.MustCompile(`^interrupted\.\d{8}T\d{6}\.\d{9}Z$`)

// Restore puts the content of backup back into the file at path. backup
// must be a copy Update saved in o.Dir: PristineName, a rotating backup
// (see Backups) or a kept copy of an interrupted write. The write goes
// through Update, so it is locked, compared before it replaces, and the
// current content is backed up first (a restore can itself be undone).
func Restore(ctx context.Context, path, backup string, o Options) (*Result, error) {
	if err := CheckBackup(o.Dir, o.Prefix, backup); err != nil {
		return nil, err
	}
	fi, err := os.Lstat(backup)
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, &NotRegularError{Path: backup, Mode: fi.Mode()}
	}
	if !o.DryRun {
		if err := PrivateDir(o.Root, o.Dir); err != nil {
			return nil, err
		}
	}
	data, err := os.ReadFile(backup)
	if err != nil {
		return nil, fmt.Errorf("reading the backup: %w", err)
	}
	if data == nil {
		data = []byte{}
	}
	return Update(ctx, path, o, func([]byte) ([]byte, error) { return data, nil })
}

// CheckBackup says whether backup is a file Update saved in dir for
// prefix (by name: PristineName, a rotating backup, a kept copy of an
// interrupted write); otherwise the error says which names are.
func CheckBackup(dir, prefix, backup string) error {
	name := filepath.Base(backup)
	if filepath.Clean(filepath.Dir(backup)) != filepath.Clean(dir) ||
		!(name == PristineName || backupRE(prefix).MatchString(name) || interruptedRE.MatchString(name)) {
		return fmt.Errorf("%s is not one of siteplex's backups of this file (those are in %s: %s, %s<UTC time> and interrupted.<UTC time>): %w",
			backup, dir, PristineName, prefix, fs.ErrInvalid)
	}
	return nil
}
