package hosts

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/siteplex/siteplex/sites"
)

// Edit says how to change a project's block.
type Edit struct {
	Project string
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
	// BackupDir is where backups go; "" means DefaultBackupDir().
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
	// InPlace is true when the file was rewritten in place (a mount point
	// such as Docker's /etc/hosts, where rename fails with EBUSY or EXDEV,
	// or a folder this user may not create files in).
	InPlace bool
	// Backup is the rotating backup of Before; Pristine the copy made
	// before the first change ever ("" when none was made or needed).
	Backup, Pristine string
}

// Diff returns a unified diff from Before to After ("" when unchanged).
func (r *Result) Diff() string {
	if !r.Changed {
		return ""
	}
	return Diff(r.Path, r.Before, r.After)
}

// Apply adds names to project's block in the hosts file at path. See
// Update.
func Apply(ctx context.Context, path, project string, names []string) (*Result, error) {
	return Update(ctx, path, Edit{Project: project, Add: names}, Options{})
}

// Remove takes names out of project's block; an emptied block disappears.
// No names means no change (use RemoveBlock to drop the block).
func Remove(ctx context.Context, path, project string, names []string) (*Result, error) {
	return Update(ctx, path, Edit{Project: project, Remove: names}, Options{})
}

// RemoveBlock removes project's whole block.
func RemoveBlock(ctx context.Context, path, project string) (*Result, error) {
	return Update(ctx, path, Edit{Project: project, RemoveAll: true}, Options{})
}

// Update edits project's block in the hosts file at path, safely:
//
//   - it takes an exclusive flock(2) on the file (retrying when the file
//     was replaced meanwhile), and reads the file under the lock;
//   - when the edit changes nothing it writes nothing (same inode, same
//     mtime);
//   - before the first change ever it saves a pristine copy, and before
//     every change a rotating backup (see Options);
//   - it writes a temporary file in the same folder with the file's mode
//     and owner, fsyncs it and renames it over the file; where the rename
//     fails because the file is a mount point (EBUSY, EXDEV) or a temporary
//     file cannot be made there, it rewrites the file in place.
//
// Names to add are normalised with sites.Hostname (":port" stripped, IDNA);
// invalid ones are never written: the valid ones are still applied and the
// error is an *InvalidNameError alongside a non-nil Result. A missing file is
// created (mode 0644) when there is something to add. Without permission the
// error is a *PermissionError and the file is unchanged; a broken block is a
// *MalformedError. Update waits for the lock until ctx is done.
func Update(ctx context.Context, path string, e Edit, o Options) (*Result, error) {
	if err := ValidProject(e.Project); err != nil {
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
	file, err := resolvePath(path)
	if errors.Is(err, fs.ErrNotExist) {
		if len(add) == 0 || e.RemoveAll {
			return &Result{Path: path}, nil
		}
		if o.DryRun {
			file = path
		} else if file, err = create(path); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, err
	}
	res := &Result{Path: file}
	if o.DryRun {
		data, err := os.ReadFile(file)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, readErr(file, err)
		}
		return res, compute(res, data, e, add, remove)
	}

	f, err := lock(ctx, file)
	if err != nil {
		return nil, err
	}
	defer f.Close() // releases the lock
	// Temporary files (beside the file and among its backups) are only
	// made under the lock: any there now is a killed writer's. Cleared
	// even when this edit turns out a no-op.
	removeStaleTemps(file, BackupFolder(o.BackupDir, file))
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("hosts: %w", err)
	}
	data, err := readAll(f, st.Size())
	if err != nil {
		return nil, readErr(file, err)
	}
	if err := compute(res, data, e, add, remove); err != nil || !res.Changed {
		return res, err
	}
	// Writable at all? Opening for writing changes nothing.
	w, err := os.OpenFile(file, os.O_WRONLY, 0)
	if err != nil {
		if IsPermission(err) {
			return nil, &PermissionError{Path: file, Err: err}
		}
		return nil, fmt.Errorf("hosts: opening %s for writing: %w", file, err)
	}
	defer w.Close()

	if err := res.backup(o, data); err != nil {
		return nil, err
	}
	inPlace, err := replace(file, st, res.After)
	if err != nil {
		if !inPlace {
			return nil, err
		}
		if err := rewriteInPlace(w, res.After); err != nil {
			return nil, fmt.Errorf("hosts: rewriting %s in place: %w (the previous content is in %s)", file, err, res.Backup)
		}
		res.InPlace = true
	}
	return res, nil
}

// compute fills res with the edit of data.
func compute(res *Result, data []byte, e Edit, add, remove []string) error {
	doc, err := Parse(data, e.Project)
	if err != nil {
		return fmt.Errorf("hosts: %s: %w", res.Path, err)
	}
	names, added, removed := edit(doc.Names(), e, add, remove)
	after, err := doc.render(names, true) // every name went through Hostname
	if err != nil {
		return fmt.Errorf("hosts: %w", err)
	}
	res.Before, res.After = data, after
	res.Names, res.Added, res.Removed = names, added, removed
	res.Changed = !bytes.Equal(data, after)
	return nil
}

func readErr(path string, err error) error {
	if IsPermission(err) {
		return &PermissionError{Path: path, Err: err}
	}
	return fmt.Errorf("hosts: reading %s: %w", path, err)
}

// resolvePath follows symlinks (so a symlinked hosts file is edited where
// it lives) and checks the result is a regular file.
func resolvePath(path string) (string, error) {
	file, err := filepath.EvalSymlinks(path)
	if err != nil {
		return "", fmt.Errorf("hosts: %w", err)
	}
	if abs, err := filepath.Abs(file); err == nil {
		file = abs
	}
	st, err := os.Stat(file)
	if err != nil {
		return "", fmt.Errorf("hosts: %w", err)
	}
	if !st.Mode().IsRegular() {
		return "", fmt.Errorf("hosts: %s is not a regular file", file)
	}
	return file, nil
}

func create(path string) (string, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err == nil {
		err = f.Close()
	}
	if err != nil && !errors.Is(err, fs.ErrExist) {
		if IsPermission(err) {
			return "", &PermissionError{Path: path, Err: err}
		}
		return "", fmt.Errorf("hosts: creating %s: %w", path, err)
	}
	return resolvePath(path)
}

// lock opens path and takes an exclusive flock on it. Writers replace the
// file by rename, so after locking it checks that path still names the
// locked inode, and starts over when it does not.
func lock(ctx context.Context, path string) (*os.File, error) {
	delay := time.Millisecond
	for {
		f, err := os.Open(path)
		if err != nil {
			return nil, readErr(path, err)
		}
		for {
			err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
			if err == nil || !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
				break
			}
			select {
			case <-ctx.Done():
				f.Close()
				return nil, fmt.Errorf("hosts: waiting for the lock on %s: %w", path, ctx.Err())
			case <-time.After(delay):
			}
			delay = min(2*delay, 20*time.Millisecond)
		}
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("hosts: locking %s: %w", path, err)
		}
		held, err1 := f.Stat()
		now, err2 := os.Stat(path)
		if err1 == nil && err2 == nil && os.SameFile(held, now) {
			return f, nil
		}
		f.Close()
		if err2 != nil && !errors.Is(err2, fs.ErrNotExist) {
			return nil, fmt.Errorf("hosts: %w", err2)
		}
	}
}

func readAll(f *os.File, size int64) ([]byte, error) {
	buf := bytes.NewBuffer(make([]byte, 0, size+512))
	_, err := io.Copy(buf, io.NewSectionReader(f, 0, 1<<62))
	return buf.Bytes(), err
}

// tempPrefix names siteplex's temporary files next to the hosts file.
func tempPrefix(path string) string { return "." + filepath.Base(path) + ".siteplex-" }

// removeStaleTemps deletes temporary files left by a writer that was
// killed. It runs under the lock, so no live writer owns one.
func removeStaleTemps(path, backups string) {
	old, _ := filepath.Glob(filepath.Join(filepath.Dir(path), tempPrefix(path)+"*"))
	tmps, _ := filepath.Glob(filepath.Join(backups, "*.tmp"))
	for _, p := range append(old, tmps...) {
		os.Remove(p)
	}
}

// replace writes data to a temporary file beside path with st's mode and
// owner, fsyncs it and renames it over path. fallback is true when it did
// not replace the file and an in-place rewrite should be done instead.
func replace(path string, st fs.FileInfo, data []byte) (fallback bool, err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), tempPrefix(path)+"*")
	if err != nil {
		if IsPermission(err) {
			// The folder is not ours (only the file was made writable).
			return true, err
		}
		return false, fmt.Errorf("hosts: creating a temporary file beside %s: %w", path, err)
	}
	name := tmp.Name()
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(name)
		}
	}()
	if _, err := tmp.Write(data); err != nil {
		return false, fmt.Errorf("hosts: writing %s: %w", name, err)
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return true, fmt.Errorf("no owner information")
	}
	if err := tmp.Chown(int(sys.Uid), int(sys.Gid)); err != nil {
		// Cannot give the new file the old owner: keep the inode instead.
		return true, err
	}
	if err := copyXattrs(path, tmp); err != nil {
		// Cannot carry the label or ACLs over: keep the inode instead.
		return true, err
	}
	// After chown, which may clear set-id bits, and the ACLs.
	if err := unix.Fchmod(int(tmp.Fd()), uint32(sys.Mode)&0o7777); err != nil {
		return true, err
	}
	if err := tmp.Sync(); err != nil {
		return false, fmt.Errorf("hosts: syncing %s: %w", name, err)
	}
	if err := tmp.Close(); err != nil {
		return false, fmt.Errorf("hosts: writing %s: %w", name, err)
	}
	if err := os.Rename(name, path); err != nil {
		// EBUSY: path is a mount point (Docker's /etc/hosts); EXDEV: a
		// cross-device bind mount (moby/moby#28187).
		if errors.Is(err, unix.EBUSY) || errors.Is(err, unix.EXDEV) || errors.Is(err, unix.EPERM) {
			os.Remove(name)
			done = true
			return true, err
		}
		return false, fmt.Errorf("hosts: replacing %s: %w", path, err)
	}
	done = true
	if dir, err := os.Open(filepath.Dir(path)); err == nil {
		dir.Sync()
		dir.Close()
	}
	return false, nil
}

// rewriteInPlace overwrites the file w is open on with data. It is not
// atomic: it is the way out where rename cannot be used.
func rewriteInPlace(w *os.File, data []byte) error {
	if _, err := w.WriteAt(data, 0); err != nil {
		return err
	}
	if err := w.Truncate(int64(len(data))); err != nil {
		return err
	}
	return w.Sync()
}

// CheckWritable returns a *PermissionError when this process may not write
// the hosts file at path, nil when it may (or the file does not exist and
// its folder is writable). It changes nothing.
func CheckWritable(path string) error {
	file, err := filepath.EvalSymlinks(path)
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
