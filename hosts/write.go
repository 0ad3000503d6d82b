package hosts

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"golang.org/x/sys/unix"

	"github.com/siteplex/siteplex/internal/safefile"
	"github.com/siteplex/siteplex/sites"
)

// Edit says how to change a project's block.
type Edit struct {
	// Project is the block's key (see KeyFor).
	Project Key
	// Add are names to add; names already in the block keep their place,
	// new ones are appended in the given order.
	Add []string
	// Remove are names to take out of the block.
	Remove []string
	// RemoveAll drops the whole block (Add is then ignored).
	RemoveAll bool
}

// Options tune Update. The zero value is what the CLI uses.
type Options struct {
	// BackupDir is the state folder backups go under; "" means StateDir().
	BackupDir string
	// Keep is how many rotating backups are kept; 0 means 5.
	Keep int
	// DryRun computes the result without locking or writing anything.
	DryRun bool
}

// Result says what Update did (or, with DryRun, would do).
type Result struct {
	// Path is the file that was edited (symlinks resolved).
	Path string
	// Changed is true when the file's bytes changed (false: nothing was
	// written at all).
	Changed bool
	// Before and After are the file's bytes before and after the edit.
	Before, After []byte
	// Names are the names in the block after the edit.
	Names []string
	// Added and Removed are the names that went into and out of the block.
	Added, Removed []string
	// MovedOut are the lines inside the block that siteplex did not write;
	// the edit moved them out of the block, unchanged.
	MovedOut []ForeignLine
	// Adopted is true when the block had an older marker (without the
	// project's hash, or under an older name) and now has the current one.
	Adopted bool
	// InPlace is true when the file was rewritten in place (a mount point
	// such as Docker's /etc/hosts, where rename fails with EBUSY or EXDEV,
	// a folder this user may not create files in, or hard links).
	InPlace bool
	// Backup is the rotating backup of Before; Pristine the copy made
	// before the first change ever ("" when none was made or needed).
	Backup, Pristine string
	// Recovered says how an in-place write that a killed siteplex left
	// half done was finished or undone ("" when there was none).
	Recovered string
	// Retried counts the times another program changed the file between
	// siteplex's read and its write, and the edit was applied again.
	Retried int
}

// Diff returns a unified diff from Before to After ("" when unchanged).
func (r *Result) Diff() string {
	if !r.Changed {
		return ""
	}
	return Diff(r.Path, r.Before, r.After)
}

// fill copies what safefile did into r.
func (r *Result) fill(sr *safefile.Result) {
	r.Path, r.Changed, r.Before, r.After = sr.Path, sr.Changed, sr.Before, sr.After
	r.InPlace, r.Backup, r.Pristine = sr.InPlace, sr.Backup, sr.Pristine
	r.Recovered, r.Retried = sr.Recovered, sr.Retried
}

// Apply adds names to k's block in the hosts file at path. See Update.
func Apply(ctx context.Context, path string, k Key, names []string) (*Result, error) {
	return Update(ctx, path, Edit{Project: k, Add: names}, Options{})
}

// Remove takes names out of k's block; an emptied block disappears. No
// names means no change (use RemoveBlock to drop the block).
func Remove(ctx context.Context, path string, k Key, names []string) (*Result, error) {
	return Update(ctx, path, Edit{Project: k, Remove: names}, Options{})
}

// RemoveBlock removes k's whole block.
func RemoveBlock(ctx context.Context, path string, k Key) (*Result, error) {
	return Update(ctx, path, Edit{Project: k, RemoveAll: true}, Options{})
}

// Update edits the project's block in the hosts file at path through the
// shared safe writer (package internal/safefile; docs/hosts.md "Safe
// writing"): an exclusive lock, the file re-read under it, nothing
// written when nothing changes, a pristine copy and a rotating backup in
// the private folder BackupFolder, a temporary file with the file's mode,
// owner and extended attributes renamed over it after checking that the
// file is still what was read, and an in-place rewrite (space reserved
// first, intent file kept until the new bytes are synced) where a rename
// cannot be used. Lines inside the block that siteplex did not write are
// moved out of it unchanged (Result.MovedOut).
//
// Names to add are normalised with sites.Hostname (":port" stripped, IDNA);
// invalid ones are never written: the valid ones are still applied and the
// error is an *InvalidNameError alongside a non-nil Result. A missing file is
// created (mode 0644) when there is something to add. Without permission the
// error is a *PermissionError and the file is unchanged; a broken or nested
// block is a *MalformedError. Update waits for the lock until ctx is done.
func Update(ctx context.Context, path string, e Edit, o Options) (*Result, error) {
	if err := ValidKey(e.Project); err != nil {
		return nil, sites.Usagef("hosts: %v", err)
	}
	add, invalid := normalise(e.Add)
	remove, _ := normalise(e.Remove)
	res, err := update(ctx, path, e, add, remove, o)
	if err == nil && invalid != nil {
		err = invalid
	}
	return res, err
}

func normalise(names []string) ([]string, *InvalidNameError) {
	var bad []InvalidName
	out := make([]string, 0, len(names))
	for _, n := range names {
		h, err := Hostname(n)
		if err != nil {
			bad = append(bad, InvalidName{Name: n, Err: err})
			continue
		}
		out = append(out, h)
	}
	if bad != nil {
		return out, &InvalidNameError{Names: bad}
	}
	return out, nil
}

// edit computes the new names from the current ones.
func edit(cur []string, e Edit, add, remove []string) (names, added, removed []string) {
	if e.RemoveAll {
		return nil, nil, cur
	}
	if len(remove) == 0 && slices.Equal(cur, add) {
		return cur, nil, nil // applying the block's own names again
	}
	drop := make(map[string]bool, len(remove))
	for _, n := range remove {
		drop[n] = true
	}
	have := make(map[string]bool, len(cur)+len(add))
	for _, n := range cur {
		if drop[n] {
			removed = append(removed, n)
			continue
		}
		have[n] = true
		names = append(names, n)
	}
	for _, n := range add {
		if !have[n] && !drop[n] {
			have[n] = true
			names = append(names, n)
			added = append(added, n)
		}
	}
	return names, added, removed
}

func update(ctx context.Context, path string, e Edit, add, remove []string, o Options) (*Result, error) {
	so, file, err := safeOptions(path, o, len(add) > 0 && !e.RemoveAll)
	if err != nil {
		return nil, err
	}
	res := &Result{Path: file}
	sr, err := safefile.Update(ctx, path, so, func(old []byte) ([]byte, error) {
		doc, err := Parse(old, e.Project)
		if err != nil {
			return nil, fmt.Errorf("hosts: %s: %w", file, err)
		}
		names, added, removed := edit(doc.Names(), e, add, remove)
		after, err := doc.render(names, true) // every name went through Hostname
		if err != nil {
			return nil, fmt.Errorf("hosts: %w", err)
		}
		res.Names, res.Added, res.Removed = names, added, removed
		res.MovedOut, res.Adopted = doc.Foreign(), doc.Legacy()
		return after, nil
	})
	if sr != nil {
		res.fill(sr)
	}
	if err != nil {
		return res, wrapErr(err)
	}
	if !res.Changed {
		res.MovedOut, res.Adopted = nil, false
	}
	return res, nil
}

// wrapErr turns safefile's errors into this package's.
func wrapErr(err error) error {
	var pe *safefile.PermissionError
	if errors.As(err, &pe) {
		return &PermissionError{Path: pe.Path, Err: pe.Err}
	}
	var me *MalformedError
	var ie *InvalidNameError
	if errors.As(err, &me) || errors.As(err, &ie) || sites.IsUsage(err) {
		return err
	}
	return fmt.Errorf("hosts: %w", err)
}

func readErr(path string, err error) error {
	if IsPermission(err) {
		return &PermissionError{Path: path, Err: err}
	}
	return fmt.Errorf("hosts: reading %s: %w", path, err)
}

// CheckWritable returns a *PermissionError when this process may not write
// the hosts file at path, nil when it may (or the file does not exist and
// its folder is writable). It changes nothing.
func CheckWritable(path string) error {
	file, err := safefile.Resolve(path)
	if errors.Is(err, fs.ErrNotExist) {
		if err := unix.Access(filepath.Dir(path), unix.W_OK); err != nil && IsPermission(err) {
			return &PermissionError{Path: path, Err: err}
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("hosts: %w", err)
	}
	w, err := os.OpenFile(file, os.O_WRONLY, 0)
	if err != nil {
		if IsPermission(err) {
			return &PermissionError{Path: file, Err: err}
		}
		return fmt.Errorf("hosts: %w", err)
	}
	return w.Close()
}
