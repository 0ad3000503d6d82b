package safefile

import (
	"errors"
	"fmt"
	"io/fs"
	"syscall"
)

// PermissionError means this user may not write the file (or create it in
// its folder). Nothing was written. Callers add the fix (a sudo command, a
// chown) to the message they print.
type PermissionError struct {
	Path string
	Err  error
}

func (e *PermissionError) Error() string {
	reason := e.Err
	var pe *fs.PathError
	if errors.As(e.Err, &pe) {
		reason = pe.Err
	}
	return fmt.Sprintf("cannot write %s: %v", e.Path, reason)
}

func (e *PermissionError) Unwrap() error { return e.Err }

// IsPermission reports whether err is a permission problem another user
// (root, the file's owner) would not have: EACCES or EPERM, not a
// read-only file system.
func IsPermission(err error) bool {
	var pe *PermissionError
	if errors.As(err, &pe) {
		return true
	}
	return errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM)
}

// NotRegularError means the path leads to something other than a regular
// file (a device such as /dev/null, a folder, a socket). siteplex never
// replaces such a thing with a file.
type NotRegularError struct {
	Path string
	Mode fs.FileMode
}

func (e *NotRegularError) Error() string {
	return fmt.Sprintf("%s is not a regular file (%s): siteplex only edits regular files; nothing was changed", e.Path, kind(e.Mode))
}

func kind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a folder"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	}
	return "mode " + m.String()
}

// DanglingLinkError means path is a symlink (or a chain of them) that ends
// at a name that does not exist. siteplex does not create files at the end
// of a link, and never replaces a link with a file.
type DanglingLinkError struct {
	Path, Target string
}

func (e *DanglingLinkError) Error() string {
	return fmt.Sprintf("%s is a symlink to %s, which does not exist: create the file (touch %s) or point siteplex at another one; nothing was changed", e.Path, e.Target, e.Target)
}

// ConcurrentChangeError means another program kept changing the file
// while siteplex was about to replace it. Nothing was written; the other
// program's change is kept.
type ConcurrentChangeError struct {
	Path     string
	Attempts int
}

func (e *ConcurrentChangeError) Error() string {
	return fmt.Sprintf("%s changed while siteplex was writing it (%d attempts; another program or an editor is writing it): nothing was written, the other change is kept; run the command again", e.Path, e.Attempts)
}

// errChanged is returned inside one attempt when the file is no longer
// what was read; Update then starts over.
var errChanged = errors.New("the file changed since it was read")

// UnsafeDirError means a folder siteplex would keep backups in is not
// private to this user: a symlink, someone else's, or writable by others.
type UnsafeDirError struct {
	Path   string
	Reason string
}

func (e *UnsafeDirError) Error() string {
	return fmt.Sprintf("backup folder %s %s: siteplex keeps backups only in a folder of your own that nobody else may write; fix it or set XDG_STATE_HOME to such a folder; nothing was changed", e.Path, e.Reason)
}
