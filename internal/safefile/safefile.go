package safefile

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Options tune Update.
type Options struct {
	// Root is the state folder Dir lies in (see StateDir); Dir is this
	// file's own folder for backups and the intent file. Both are checked
	// with PrivateDir before anything is written there. Required unless
	// DryRun.
	Root, Dir string
	// Prefix names the rotating backups: Prefix + UTC time, such as
	// "hosts.20260102T150405.000000000Z".
	Prefix string
	// Keep is how many rotating backups are kept; 0 means DefaultKeep.
	Keep int
	// Pristine saves the file as PristineName before the first change
	// ever.
	Pristine bool
	// CreateMode is the mode a missing file is created with when edit
	// gives it content; 0 means a missing file is not created (an error
	// wrapping fs.ErrNotExist).
	CreateMode fs.FileMode
	// DryRun reads and edits without locking or writing anything.
	DryRun bool
	// Attempts is how many times the edit is applied when the file keeps
	// changing under siteplex; 0 means 3.
	Attempts int
}

// EditFunc returns the new content of a file from its current content
// (nil for a missing file). Returning bytes equal to old means "no
// change". It may be called more than once when the file changes under
// Update, always with the latest content; only the last call's result is
// written.
type EditFunc func(old []byte) ([]byte, error)

// Result says what Update did (or, with DryRun, would do).
type Result struct {
	// Path is the file (absolute, symlinks resolved).
	Path string
	// Changed is true when the content changed (false: nothing was
	// written at all, not even a backup).
	Changed bool
	// Before and After are the content before and after.
	Before, After []byte
	// InPlace is true when the file was rewritten in place rather than
	// replaced by a rename.
	InPlace bool
	// Backup is the rotating backup of Before; Pristine the copy saved
	// before the first change ever ("" when none was made).
	Backup, Pristine string
	// Recovered says what was done with an interrupted in-place write a
	// killed siteplex left behind ("" when there was none).
	Recovered string
	// Retried counts the times the file changed between the read and the
	// replace and the edit was applied again.
	Retried int
}

// Update edits the file at path with edit, safely; see the package
// documentation for every step. It waits for the lock until ctx is done.
// Errors: *PermissionError, *NotRegularError, *DanglingLinkError,
// *ConcurrentChangeError, *UnsafeDirError, an error from edit as it is,
// or an I/O error saying whether anything was changed.
func Update(ctx context.Context, path string, o Options, edit EditFunc) (*Result, error) {
	attempts := o.Attempts
	if attempts <= 0 {
		attempts = 3
	}
	for try := 0; ; try++ {
		res, err := update(ctx, path, o, edit)
		if !errors.Is(err, errChanged) {
			if res != nil {
				res.Retried = try
			}
			return res, err
		}
		if try+1 >= attempts {
			p := path
			if res != nil {
				p = res.Path
			}
			return nil, &ConcurrentChangeError{Path: p, Attempts: attempts}
		}
	}
}

func update(ctx context.Context, path string, o Options, edit EditFunc) (*Result, error) {
	file, err := Resolve(path)
	if errors.Is(err, fs.ErrNotExist) {
		abs, _ := filepath.Abs(path)
		after, err := edit(nil)
		if err != nil {
			return nil, err
		}
		res := &Result{Path: abs, After: after, Changed: len(after) > 0}
		if !res.Changed || o.DryRun {
			return res, nil
		}
		if o.CreateMode == 0 {
			return nil, fmt.Errorf("%s: %w", abs, fs.ErrNotExist)
		}
		if err := create(abs, o.CreateMode); err != nil {
			return nil, err
		}
		if file, err = Resolve(abs); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, err
	}
	res := &Result{Path: file}
	if o.DryRun {
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, readErr(file, err)
		}
		return res, apply(res, data, edit)
	}

	f, err := lock(ctx, file)
	if err != nil {
		return nil, err
	}
	defer f.Close() // releases the lock
	// Temporary files are only made under the lock: any there now is a
	// killed writer's. Cleared even when this edit turns out a no-op.
	removeStaleTemps(file)
	if o.Dir != "" {
		if _, err := os.Lstat(o.Dir); err == nil {
			if err := PrivateDir(o.Root, o.Dir); err != nil {
				return nil, err
			}
			removeStaleBackupTemps(o.Dir, o.Prefix)
			if res.Recovered, err = recoverIntent(f, file, o.Dir); err != nil {
				return nil, err
			}
		}
	}
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	data, err := readAll(f, st.Size())
	if err != nil {
		return nil, readErr(file, err)
	}
	sum := sha256.Sum256(data)
	if err := apply(res, data, edit); err != nil || !res.Changed {
		return res, err
	}
	// Writable at all? Opening for writing changes nothing.
	w, err := os.OpenFile(file, os.O_WRONLY, 0)
	if err != nil {
		if IsPermission(err) {
			return res, &PermissionError{Path: file, Err: err}
		}
		return res, fmt.Errorf("opening %s for writing: %w", file, err)
	}
	defer w.Close()
	if wst, err := w.Stat(); err != nil || !os.SameFile(wst, st) {
		return res, errChanged // replaced between the lock and the open
	}
	if o.Dir == "" {
		return res, errors.New("safefile: no backup folder given")
	}
	if err := PrivateDir(o.Root, o.Dir); err != nil {
		return res, err
	}
	if res.Backup, res.Pristine, err = saveBackups(o.Dir, o, data); err != nil {
		return res, fmt.Errorf("%w; %s was not changed", err, file)
	}
	check := func() error { return unchanged(f, file, st, sum) }
	inPlace, why := mustKeepInode(st)
	if !inPlace {
		inPlace, err = replace(file, st, res.After, check)
		if err != nil {
			return res, err
		}
	}
	if inPlace {
		if err := writeInPlace(w, file, o.Dir, data, res.After, check); err != nil {
			if why != "" && !errors.Is(err, errChanged) {
				err = fmt.Errorf("%w (%s)", err, why)
			}
			return res, err
		}
		res.InPlace = true
	}
	return res, nil
}

// apply runs edit on data and fills res.
func apply(res *Result, data []byte, edit EditFunc) error {
	after, err := edit(data)
	if err != nil {
		return err
	}
	res.Before, res.After = data, after
	res.Changed = !bytes.Equal(data, after)
	return nil
}

func readErr(path string, err error) error {
	if IsPermission(err) {
		return &PermissionError{Path: path, Err: err}
	}
	return fmt.Errorf("reading %s: %w", path, err)
}

// Resolve follows path's symlinks to a regular file and returns its
// absolute path with every symlink resolved. A path that does not exist
// gives an error wrapping fs.ErrNotExist; a symlink chain that ends at a
// missing name a *DanglingLinkError; anything but a regular file a
// *NotRegularError.
func Resolve(path string) (string, error) {
	p, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	for hops := 0; ; hops++ {
		if hops > 40 {
			return "", fmt.Errorf("%s: too many levels of symlinks", path)
		}
		fi, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			if hops > 0 {
				return "", &DanglingLinkError{Path: path, Target: p}
			}
			return "", fmt.Errorf("%s: %w", p, fs.ErrNotExist)
		}
		if err != nil {
			return "", readErr(p, err)
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			if !fi.Mode().IsRegular() {
				return "", &NotRegularError{Path: p, Mode: fi.Mode()}
			}
			break
		}
		to, err := os.Readlink(p)
		if err != nil {
			return "", readErr(p, err)
		}
		if !filepath.IsAbs(to) {
			to = filepath.Join(filepath.Dir(p), to)
		}
		p = filepath.Clean(to)
	}
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		return "", readErr(p, err)
	}
	return real, nil
}

func create(path string, mode fs.FileMode) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY|syscall.O_NOFOLLOW, mode)
	if err == nil {
		err = f.Close()
	}
	if err != nil && !errors.Is(err, fs.ErrExist) {
		if IsPermission(err) {
			return &PermissionError{Path: path, Err: err}
		}
		return fmt.Errorf("creating %s: %w", path, err)
	}
	return nil
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
				return nil, fmt.Errorf("waiting for the lock on %s: %w", path, ctx.Err())
			case <-time.After(delay):
			}
			delay = min(2*delay, 20*time.Millisecond)
		}
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("locking %s: %w", path, err)
		}
		held, err1 := f.Stat()
		now, err2 := os.Stat(path)
		if err1 == nil && err2 == nil && os.SameFile(held, now) {
			return f, nil
		}
		f.Close()
		if err2 != nil && !errors.Is(err2, fs.ErrNotExist) {
			return nil, err2
		}
	}
}

// Lock takes the same exclusive lock Update takes on the file at path (a
// regular file, symlinks followed) and returns the open file; closing it
// releases the lock. For tests and tools that must keep siteplex out.
func Lock(ctx context.Context, path string) (*os.File, error) {
	file, err := Resolve(path)
	if err != nil {
		return nil, err
	}
	return lock(ctx, file)
}

func readAll(f *os.File, size int64) ([]byte, error) {
	buf := bytes.NewBuffer(make([]byte, 0, size+512))
	_, err := io.Copy(buf, io.NewSectionReader(f, 0, 1<<62))
	return buf.Bytes(), err
}

// unchanged reports errChanged unless the file at path is still the
// inode f holds, with st's size and mtime and content whose SHA-256 is
// sum: the compare before replace.
func unchanged(f *os.File, path string, st fs.FileInfo, sum [32]byte) error {
	now, err := os.Stat(path)
	if err != nil || !os.SameFile(now, st) || now.Size() != st.Size() || !now.ModTime().Equal(st.ModTime()) {
		return errChanged
	}
	data, err := readAll(f, st.Size())
	if err != nil {
		return fmt.Errorf("re-reading %s: %w", path, err)
	}
	if sha256.Sum256(data) != sum {
		return errChanged
	}
	return nil
}

// tempPrefix names siteplex's temporary files beside the file.
func tempPrefix(path string) string { return "." + filepath.Base(path) + ".siteplex-" }

// removeStaleTemps deletes the temporary files a killed writer left beside
// path. It runs under the lock, so no live writer owns one. Only names
// os.CreateTemp made with tempPrefix are removed.
func removeStaleTemps(path string) {
	dir := filepath.Dir(path)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	re := regexp.MustCompile(`^` + regexp.QuoteMeta(tempPrefix(path)) + `[0-9]+$`)
	for _, e := range ents {
		if e.Type().IsRegular() && re.MatchString(e.Name()) {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}

// mustKeepInode says when a rename would lose something of the file that
// only an in-place write keeps: its other hard links.
func mustKeepInode(st fs.FileInfo) (bool, string) {
	if sys, ok := st.Sys().(*syscall.Stat_t); ok && sys.Nlink > 1 {
		return true, fmt.Sprintf("it has %d hard links, which a rename would split", sys.Nlink)
	}
	return false, ""
}

// replace writes data to a temporary file beside path with st's mode,
// owner and extended attributes, fsyncs it, runs check and renames it over
// path, then fsyncs the folder. inPlace is true when it did not replace
// the file and an in-place rewrite should be done instead (a mount point,
// a folder this user may not write, an owner or attribute that cannot be
// carried over).
func replace(path string, st fs.FileInfo, data []byte, check func() error) (inPlace bool, err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), tempPrefix(path)+"*")
	if err != nil {
		if IsPermission(err) {
			return true, nil // the folder is not ours (only the file was made writable)
		}
		return false, fmt.Errorf("creating a temporary file beside %s: %w (%s was not changed)", path, err, path)
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
		return false, fmt.Errorf("writing %s: %w (%s was not changed)", name, err, path)
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return true, nil
	}
	if err := tmp.Chown(int(sys.Uid), int(sys.Gid)); err != nil {
		return true, nil // cannot give the new file the old owner: keep the inode
	}
	if err := copyXattrs(path, tmp); err != nil {
		return true, nil // cannot carry the label or ACLs over: keep the inode
	}
	// After chown, which may clear set-id bits, and the ACLs.
	if err := unix.Fchmod(int(tmp.Fd()), uint32(sys.Mode)&0o7777); err != nil {
		return true, nil
	}
	if err := tmp.Sync(); err != nil {
		return false, fmt.Errorf("syncing %s: %w (%s was not changed)", name, err, path)
	}
	if err := tmp.Close(); err != nil {
		return false, fmt.Errorf("writing %s: %w (%s was not changed)", name, err, path)
	}
	if err := check(); err != nil {
		return false, err
	}
	if err := os.Rename(name, path); err != nil {
		// EBUSY: path is a mount point (Docker's /etc/hosts); EXDEV: a
		// cross-device bind mount (moby/moby#28187).
		if errors.Is(err, unix.EBUSY) || errors.Is(err, unix.EXDEV) || errors.Is(err, unix.EPERM) {
			return true, nil
		}
		return false, fmt.Errorf("replacing %s: %w (it was not changed)", path, err)
	}
	done = true
	return false, syncDir(filepath.Dir(path))
}
