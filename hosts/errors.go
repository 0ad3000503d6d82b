package hosts

import (
	"errors"
	"fmt"
	"strings"

	"github.com/siteplex/siteplex/internal/safefile"
)

// InvalidName is one refused name and why.
type InvalidName struct {
	Name string
	Err  error
}

// InvalidNameError lists names that are not valid hostnames (RFC 1123
// after IDNA, at most 253 characters, no whitespace, '#' or control
// characters). Such names are never written.
type InvalidNameError struct {
	Names []InvalidName
}

func (e *InvalidNameError) Error() string {
	parts := make([]string, len(e.Names))
	for i, n := range e.Names {
		parts[i] = fmt.Sprintf("%q: %v", n.Name, n.Err)
	}
	return "invalid host name(s), not written: " + strings.Join(parts, "; ")
}

// PermissionError means the hosts file (or its folder) may not be written
// by this user. Command is the command line to run instead (for example
// `sudo siteplex hosts apply gh`); the package leaves it empty and the
// caller fills it in, as only the caller knows its own command line.
// siteplex never loosens the file's permissions to get around this.
type PermissionError struct {
	Path    string
	Command string
	Err     error
}

func (e *PermissionError) Error() string {
	msg := (&safefile.PermissionError{Path: e.Path, Err: e.Err}).Error()
	if e.Command != "" {
		msg += "\nIt needs root; run:\n  " + e.Command
	} else {
		msg += " (it needs root: run the same siteplex command with sudo)"
	}
	return msg
}

func (e *PermissionError) Unwrap() error { return e.Err }

// IsPermission reports whether err is a permission problem that sudo would
// solve: EACCES or EPERM (not a read-only file system).
func IsPermission(err error) bool {
	var pe *PermissionError
	return errors.As(err, &pe) || safefile.IsPermission(err)
}

// NeedsRoot reports whether writing path needs more privileges than this
// process has (a *PermissionError from CheckWritable).
func NeedsRoot(path string) bool {
	var pe *PermissionError
	return errors.As(CheckWritable(path), &pe)
}
