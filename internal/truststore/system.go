package truststore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// SystemStore is a Linux distribution's trust store: a folder of local
// anchors, the command that rebuilds the bundles from it, and the bundle
// OpenSSL, curl, Python and Go read.
type SystemStore struct {
	// Flavour is "debian", "fedora" or "arch".
	Flavour   string
	AnchorDir string
	// Ext is the anchor file extension the refresh command picks up.
	Ext     string
	Refresh []string
	Bundle  string
	// Links is the folder where Refresh links each anchor and its
	// OpenSSL hash (Debian's /etc/ssl/certs); "" when Refresh rebuilds
	// its outputs whole. update-ca-certificates does not remove the links
	// of an anchor that is gone, so Uninstall removes its own.
	Links string
}

// File is where the CA named name is installed.
func (s *SystemStore) File(name string) string { return filepath.Join(s.AnchorDir, name+s.Ext) }

// Command is the refresh command as one line, for messages.
func (s *SystemStore) Command() string { return strings.Join(s.Refresh, " ") }

func (s *SystemStore) result(t Target, status, detail string) Result {
	return Result{Store: System, Location: s.File(t.Name), Status: status, Detail: detail}
}

// Status says whether the system store trusts t: its anchor file holds
// t's certificate and the bundle has it (Trusted); the file holds another
// certificate, or the bundle was not rebuilt (Stale); or nothing is there
// (Absent).
func (s *SystemStore) Status(t Target) Result {
	file := s.File(t.Name)
	onDisk, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		if t.CertPEM != nil && s.bundleHas(t) {
			return s.result(t, Stale, fmt.Sprintf("%s still lists the CA though %s is gone: run %s", s.Bundle, file, s.Command()))
		}
		return s.result(t, Absent, "")
	}
	if err != nil {
		return s.result(t, Failed, err.Error())
	}
	if t.CertPEM == nil {
		return s.result(t, Trusted, "installed (certificate not compared)")
	}
	if !containsCert(onDisk, der(t.CertPEM)) {
		return s.result(t, Stale, "holds an older siteplex CA from the same CAROOT: run `siteplex trust --store system` again")
	}
	if !s.bundleHas(t) {
		return s.result(t, Stale, fmt.Sprintf("%s does not list it yet: run %s", s.Bundle, s.Command()))
	}
	return s.result(t, Trusted, "in "+s.Bundle)
}

func (s *SystemStore) bundleHas(t Target) bool {
	data, err := os.ReadFile(s.Bundle)
	return err == nil && containsCert(data, der(t.CertPEM))
}

// Install writes t's certificate as the anchor file (0644) and runs the
// refresh command; then it checks the bundle lists it. An anchor already
// in place and in the bundle is left alone (Already). Needs root.
func (s *SystemStore) Install(ctx context.Context, t Target) Result {
	if st := s.Status(t); st.Status == Trusted {
		return s.result(t, Already, st.Detail)
	}
	file := s.File(t.Name)
	if err := writeAnchor(file, t.CertPEM); err != nil {
		return s.result(t, Failed, err.Error())
	}
	if err := s.refresh(ctx); err != nil {
		return s.result(t, Failed, err.Error())
	}
	if !s.bundleHas(t) {
		return s.result(t, Failed, fmt.Sprintf("%s ran, but %s does not list the CA", s.Command(), s.Bundle))
	}
	return s.result(t, Installed, "in "+s.Bundle+"; ran "+s.Command())
}

// Uninstall removes t's anchor file and runs the refresh command. Nothing
// there is Absent, and nothing is run. Needs root.
func (s *SystemStore) Uninstall(ctx context.Context, t Target) Result {
	file := s.File(t.Name)
	err := os.Remove(file)
	if errors.Is(err, fs.ErrNotExist) {
		if t.CertPEM == nil || !s.bundleHas(t) {
			return s.result(t, Absent, "")
		}
		// The file went but the bundle was never rebuilt.
	} else if err != nil {
		return s.result(t, Failed, err.Error())
	}
	if err := s.removeLinks(t.Name); err != nil {
		return s.result(t, Failed, err.Error())
	}
	if err := s.refresh(ctx); err != nil {
		return s.result(t, Failed, err.Error())
	}
	if t.CertPEM != nil && s.bundleHas(t) {
		return s.result(t, Failed, fmt.Sprintf("%s ran, but %s still lists the CA", s.Command(), s.Bundle))
	}
	return s.result(t, Removed, "ran "+s.Command())
}

func (s *SystemStore) refresh(ctx context.Context) error {
	cmd := exec.CommandContext(ctx, s.Refresh[0], s.Refresh[1:]...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %v: %s", s.Command(), err, firstLine(out))
	}
	return nil
}

// removeLinks deletes, in s.Links, the link to name's anchor file and the
// hash links to that link, which update-ca-certificates made and leaves
// dangling once the anchor is gone. Links to anything else are kept. When
// a removed hash link was not the last of its hash ("<hash>.0" ours,
// "<hash>.1" another certificate's with the same subject hash), the later
// ones move down one number, as OpenSSL looks them up from .0 on.
func (s *SystemStore) removeLinks(name string) error {
	if s.Links == "" {
		return nil
	}
	own := name + ".pem"
	ownPath := filepath.Join(s.Links, own)
	if target, err := os.Readlink(ownPath); err == nil && target == s.File(name) {
		if err := os.Remove(ownPath); err != nil {
			return err
		}
	}
	entries, err := os.ReadDir(s.Links)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.Type()&fs.ModeSymlink == 0 {
			continue
		}
		p := filepath.Join(s.Links, e.Name())
		if target, err := os.Readlink(p); err != nil || (target != own && target != ownPath) {
			continue
		}
		if err := os.Remove(p); err != nil {
			return err
		}
		hash, num, ok := strings.Cut(e.Name(), ".")
		n, err := strconv.Atoi(num)
		if !ok || err != nil {
			continue
		}
		for ; ; n++ {
			next := filepath.Join(s.Links, hash+"."+strconv.Itoa(n+1))
			if _, err := os.Lstat(next); err != nil {
				break
			}
			if err := os.Rename(next, filepath.Join(s.Links, hash+"."+strconv.Itoa(n))); err != nil {
				return err
			}
		}
	}
	return nil
}

// writeAnchor writes data to file (0644, root's) through a temporary file
// whose name the refresh commands ignore, and a rename.
func writeAnchor(file string, data []byte) error {
	tmp := filepath.Join(filepath.Dir(file), "."+filepath.Base(file)+".siteplex-tmp")
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	if err := os.Chmod(tmp, 0o644); err != nil { // whatever the umask
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, file); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}
