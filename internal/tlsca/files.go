package tlsca

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/siteplex/siteplex/internal/safefile"
)

// MkdirAll creates dir and any missing parents with mode 0700 and gives
// the folders it creates to o (a nil o leaves them to the process).
// Existing folders are left as they are.
func (o *Owner) MkdirAll(dir string) error {
	var missing []string
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Lstat(d); err == nil {
			break
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		missing = append(missing, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	for i := len(missing) - 1; i >= 0; i-- {
		if err := os.Mkdir(missing[i], 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
		if err := chown(missing[i], o); err != nil {
			return err
		}
	}
	return nil
}

func chown(path string, owner *Owner) error {
	if owner == nil {
		return nil
	}
	if err := os.Lchown(path, owner.UID, owner.GID); err != nil {
		return fmt.Errorf("giving %s to uid %d: %w", path, owner.UID, err)
	}
	return nil
}

// writeFile writes data to path with safefile.Replace, with mode perm
// and owner. sync makes it durable (fsync of the file and the folder)
// before it returns; the leaf cache skips that, as a torn cache file is
// only re-issued.
func writeFile(path string, data []byte, perm fs.FileMode, owner *Owner, sync bool) error {
	return safefile.Replace(path, data, perm, sync, func(tmp string) error { return chown(tmp, owner) })
}

// lockDir takes an exclusive flock on dir/.lock, so that two `siteplex
// trust` runs never create two CAs at once. The returned func releases it.
func lockDir(dir string, owner *Owner) (func(), error) {
	path := filepath.Join(dir, ".lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := chown(path, owner); err != nil {
		f.Close()
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}
