package safefile

import (
	"bytes"
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// copyXattrs gives dst the extended attributes of the file at path: its
// SELinux label (security.selinux), POSIX ACLs (system.posix_acl_*) and
// user attributes. A new inode made by rename would otherwise lose them,
// and a relabelled /etc/hosts can stop confined services from resolving.
// A file system without extended attributes has none to copy.
func copyXattrs(path string, dst *os.File) error {
	names, err := xattrNames(path)
	if err != nil {
		if errors.Is(err, unix.ENOTSUP) {
			return nil
		}
		return fmt.Errorf("listing the extended attributes of %s: %w", path, err)
	}
	for _, name := range names {
		val, err := xattr(path, name)
		if err != nil {
			return fmt.Errorf("reading extended attribute %s of %s: %w", name, path, err)
		}
		if err := unix.Fsetxattr(int(dst.Fd()), name, val, 0); err != nil {
			return fmt.Errorf("setting extended attribute %s on %s: %w", name, dst.Name(), err)
		}
	}
	return nil
}

// xattrNames lists the extended attributes of path.
func xattrNames(path string) ([]string, error) {
	buf := make([]byte, 256)
	for {
		n, err := unix.Listxattr(path, buf)
		if errors.Is(err, unix.ERANGE) {
			buf = make([]byte, 2*len(buf))
			continue
		}
		if err != nil {
			return nil, err
		}
		var names []string
		for _, b := range bytes.Split(buf[:n], []byte{0}) {
			if len(b) > 0 {
				names = append(names, string(b))
			}
		}
		return names, nil
	}
}

// xattr reads the extended attribute name of path.
func xattr(path, name string) ([]byte, error) {
	buf := make([]byte, 256)
	for {
		n, err := unix.Getxattr(path, name, buf)
		if errors.Is(err, unix.ERANGE) {
			buf = make([]byte, 2*len(buf))
			continue
		}
		if err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
}
