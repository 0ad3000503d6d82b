package tui

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/siteplex/siteplex/hosts"
	"github.com/siteplex/siteplex/sites"
)

// TestHostsFile drives the real hosts package through the UI's adapter
// on a temporary file: per-site state, apply, remove, remove all, and
// bytes outside the block kept.
func TestHostsFile(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "hosts")
	outside := "127.0.0.1\tlocalhost\r\n# my own\r\n10.0.0.1 example.de\r\n"
	if err := os.WriteFile(path, []byte(outside), 0o644); err != nil {
		t.Fatal(err)
	}
	list := demoSites()
	h := &HostsFile{File: path, Project: hosts.KeyFor("demo", "/srv/demo"), BackupDir: t.TempDir(), Names: func(s *sites.Site) []string {
		return []string{s.Domain, s.LocalDomain}
	}}
	state := func() map[int64]HostsState {
		t.Helper()
		st, err := h.Status(ctx, list)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	if st := state(); st[1] != HostsNone || st[5] != HostsNA {
		t.Fatalf("fresh file: %v", st)
	}
	if err := h.Apply(ctx, list, []string{"de", "gh"}); err != nil {
		t.Fatal(err)
	}
	if st := state(); st[1] != HostsAll || st[2] != HostsAll || st[3] != HostsNone {
		t.Fatalf("after apply: %v", st)
	}
	b, _ := os.ReadFile(path)
	if !strings.HasPrefix(string(b), outside) || !strings.Contains(string(b), "127.0.0.1 gh.localhost") {
		t.Fatalf("file after apply:\n%q", b)
	}
	if err := h.Remove(ctx, list, []string{"de"}); err != nil {
		t.Fatal(err)
	}
	if st := state(); st[1] != HostsNone || st[2] != HostsAll {
		t.Fatalf("after remove: %v", st)
	}
	if err := h.Apply(ctx, list, nil); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(path)
	if strings.Contains(string(b), "bank") {
		t.Fatalf("a problem site was written:\n%s", b)
	}
	if err := h.Remove(ctx, list, nil); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != outside {
		t.Fatalf("after removing the block:\n%q\nwant\n%q", b, outside)
	}
}

// TestHostsFilePermission checks that the hosts package's permission
// error becomes the UI's, carrying the sudo command.
func TestHostsFilePermission(t *testing.T) {
	h := &HostsFile{File: "/x", Project: hosts.KeyFor("demo", "/srv/demo"), SudoArgv: func(verb string, names []string) []string {
		return append([]string{"sudo", "siteplex", "hosts", verb}, names...)
	}}
	err := h.wrap(&hosts.PermissionError{Path: "/x", Err: os.ErrPermission}, "apply", []string{"Example.GH:8000", "example.gh", "bad#name"})
	var pe *PermissionError
	if !errors.As(err, &pe) || strings.Join(pe.Command, " ") != "sudo siteplex hosts apply example.gh" {
		t.Fatalf("got %#v", err)
	}
	// The default command passes the names themselves.
	h.SudoArgv = nil
	err = h.wrap(&hosts.PermissionError{Path: "/x", Err: os.ErrPermission}, "remove", []string{"a.test"})
	if !errors.As(err, &pe) || strings.Join(pe.Command[2:], " ") != "hosts remove --host a.test" {
		t.Fatalf("got %q", pe.Command)
	}
	if err := h.wrap(errors.New("other"), "apply", nil); errors.As(err, &pe) && err.Error() != "other" {
		t.Fatalf("other errors must pass through: %v", err)
	}
}
