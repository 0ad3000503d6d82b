package hosts

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/siteplex/siteplex/internal/safefile"
)

// DefaultKeep is how many rotating backups are kept.
const DefaultKeep = safefile.DefaultKeep

// backupPrefix starts the names of rotating backups.
const backupPrefix = "hosts."

// StateDir is the user's state folder for siteplex, where backups go:
// $XDG_STATE_HOME/siteplex, else ~/.local/state/siteplex (the home from
// HOME, else from the user database). It never falls back to a shared
// folder: without a home it is an error saying what to set.
func StateDir() (string, error) { return safefile.StateDir() }

// BackupFolder is the folder holding the backups of the hosts file at path
// (symlinks resolved) under base, a state folder ("" = StateDir(); when
// that fails, a relative path that does not exist):
// <base>/hosts-backups/etc-hosts for /etc/hosts, <base>/hosts-backups/
// <path with - for />-<hash> for others. In it, "pristine" is the file as it
// was before siteplex first changed it, "hosts.<UTC time>" are the
// rotating backups, newest last, "interrupted.<UTC time>" a copy kept when
// an interrupted write met a file changed by someone else, and "intent"
// the in-place write in progress.
func BackupFolder(base, path string) string {
	if base == "" {
		base, _ = safefile.StateDir()
	}
	key := "etc-hosts"
	if filepath.Clean(path) != SystemFile {
		key = safefile.FolderKey(path)
	}
	return filepath.Join(base, "hosts-backups", key)
}

// Backups lists the rotating backups of path under base ("" =
// StateDir()), oldest first: only regular files with the names siteplex
// gives them.
func Backups(base, path string) ([]string, error) {
	file := resolved(path)
	return safefile.Backups(BackupFolder(base, file), backupPrefix)
}

// resolved is path with its symlinks resolved when it leads to a file,
// else path made absolute.
func resolved(path string) string {
	if f, err := safefile.Resolve(path); err == nil {
		return f
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return path
	}
	return abs
}

// Restore puts a backup of the hosts file at path back: backup is a path
// in BackupFolder, or one of its names ("pristine", "hosts.<UTC time>",
// "interrupted.<UTC time>"). It writes like Update (lock, compare before
// replace, a backup of what it replaces, in place where needed); only
// o.BackupDir and o.DryRun are used.
func Restore(ctx context.Context, path, backup string, o Options) (*Result, error) {
	so, file, err := safeOptions(path, o, true)
	if err != nil {
		return nil, err
	}
	if !filepath.IsAbs(backup) && !strings.ContainsRune(backup, filepath.Separator) {
		backup = filepath.Join(so.Dir, backup)
	}
	sr, err := safefile.Restore(ctx, file, backup, so)
	if err != nil {
		return nil, wrapErr(err)
	}
	res := &Result{Path: sr.Path}
	res.fill(sr)
	return res, nil
}

// safeOptions are the safefile options for the hosts file at path: its
// backup folder under o.BackupDir (or StateDir()). file is path resolved.
func safeOptions(path string, o Options, create bool) (safefile.Options, string, error) {
	file := resolved(path)
	so := safefile.Options{Prefix: backupPrefix, Keep: o.Keep, Pristine: true, DryRun: o.DryRun}
	if create {
		so.CreateMode = 0o644
	}
	base := o.BackupDir
	if base == "" {
		var err error
		if base, err = safefile.StateDir(); err != nil {
			if !o.DryRun {
				return so, file, fmt.Errorf("hosts: %w", err)
			}
		}
	}
	so.Root, so.Dir = base, BackupFolder(base, file)
	return so, file, nil
}
