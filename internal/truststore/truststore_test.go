package truststore

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/siteplex/siteplex/internal/testenv"
	"github.com/siteplex/siteplex/internal/tlsca"
)

func newCA(t *testing.T, dir string, domains ...string) *tlsca.CA {
	t.Helper()
	ca, _, err := tlsca.Ensure(dir, tlsca.EnsureOptions{Domains: domains})
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func TestNameFor(t *testing.T) {
	u := tlsca.User{Name: "Alice.Smith@corp"}
	a := NameFor("/home/alice/.local/share/siteplex/ca", u)
	if !strings.HasPrefix(a, "siteplex-alicesmithcorp-") || len(a) != len("siteplex-alicesmithcorp-")+8 {
		t.Fatalf("NameFor = %q", a)
	}
	if b := NameFor("/srv/other-ca", u); b == a {
		t.Fatal("two CAROOTs share a name")
	}
	if NameFor("/x", tlsca.User{Name: "../"}) != NameFor("/x", tlsca.User{}) {
		t.Fatal("a user name without safe characters is not replaced")
	}
}

func certutil(t *testing.T, as *tlsca.Owner) *Certutil {
	t.Helper()
	c, err := NewCertutil(as)
	if err != nil {
		testenv.Missing(t, "%v", err)
	}
	return c
}

func TestNSSLifecycle(t *testing.T) {
	ctx := context.Background()
	home := t.TempDir()
	c := certutil(t, nil)
	// A Firefox profile with a database, one without (never started).
	ff := filepath.Join(home, ".mozilla", "firefox", "abcd.default-release")
	os.MkdirAll(ff, 0o700)
	if out, err := exec.Command(c.Path, "-N", "-d", "sql:"+ff, "--empty-password").CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	os.MkdirAll(filepath.Join(home, ".mozilla", "firefox", "empty.profile"), 0o700)

	dbs := NSSDatabases(home)
	if len(dbs) != 2 || dbs[0].Dir != filepath.Join(home, ".pki", "nssdb") || dbs[0].Exists || dbs[1].Dir != ff || !dbs[1].Exists {
		t.Fatalf("databases: %+v", dbs)
	}
	caroot := filepath.Join(t.TempDir(), "ca")
	ca := newCA(t, caroot)
	target := Target{Name: NameFor(caroot, tlsca.User{Name: "me"}), CertPEM: ca.CertPEM}

	steps := []struct {
		what string
		do   func(NSSDB) Result
		want []string // per database
	}{
		{"status before", func(db NSSDB) Result { return c.Status(ctx, db, target) }, []string{Absent, Absent}},
		{"install", func(db NSSDB) Result { return c.Install(ctx, db, target) }, []string{Installed, Installed}},
		{"status", func(db NSSDB) Result { return c.Status(ctx, db, target) }, []string{Trusted, Trusted}},
		{"install again", func(db NSSDB) Result { return c.Install(ctx, db, target) }, []string{Already, Already}},
		{"uninstall", func(db NSSDB) Result { return c.Uninstall(ctx, db, target) }, []string{Removed, Removed}},
		{"uninstall again", func(db NSSDB) Result { return c.Uninstall(ctx, db, target) }, []string{Absent, Absent}},
		{"status after", func(db NSSDB) Result { return c.Status(ctx, db, target) }, []string{Absent, Absent}},
	}
	for _, s := range steps {
		dbs = NSSDatabases(home) // Exists changes after the first install
		for i, db := range dbs {
			if r := s.do(db); r.Status != s.want[i] {
				t.Fatalf("%s %s: %+v, want %s", s.what, db.Browser, r, s.want[i])
			}
		}
	}
	chromium := filepath.Join(home, ".pki", "nssdb")
	for _, d := range []string{filepath.Dir(chromium), chromium} {
		if st, err := os.Stat(d); err != nil || st.Mode().Perm() != 0o700 {
			t.Fatalf("%s: %v %v", d, st, err)
		}
	}

	// A replaced CA (same CAROOT, same name): stale until installed again.
	c.Install(ctx, NSSDatabases(home)[0], target)
	if err := tlsca.Remove(caroot); err != nil {
		t.Fatal(err)
	}
	newer := Target{Name: target.Name, CertPEM: newCA(t, caroot).CertPEM}
	db := NSSDatabases(home)[0]
	if r := c.Status(ctx, db, newer); r.Status != Stale {
		t.Fatalf("old CA under the name: %+v", r)
	}
	if r := c.Install(ctx, db, newer); r.Status != Installed {
		t.Fatalf("reinstall: %+v", r)
	}
	out, _ := exec.Command(c.Path, "-L", "-d", "sql:"+db.Dir).Output()
	if n := strings.Count(string(out), target.Name); n != 1 {
		t.Fatalf("%d entries named %s after the replacement:\n%s", n, target.Name, out)
	}
	// Untrusted under the name (someone edited the flags): stale.
	exec.Command(c.Path, "-M", "-d", "sql:"+db.Dir, "-n", target.Name, "-t", ",,").Run()
	if r := c.Status(ctx, db, newer); r.Status != Stale || !strings.Contains(r.Detail, "not as a CA") {
		t.Fatalf("untrusted entry: %+v", r)
	}
}

func TestNSSForTheSudoCaller(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Missing(t, "root, to run certutil as another user")
	}
	home := t.TempDir()
	os.Chmod(filepath.Dir(home), 0o755) // the test's folder, for uid 65534 to reach its home
	os.Chown(home, 65534, 65534)
	owner := &tlsca.Owner{UID: 65534, GID: 65534}
	c := certutil(t, owner)
	caroot := filepath.Join(t.TempDir(), "ca")
	ca := newCA(t, caroot)
	target := Target{Name: "siteplex-test-1", CertPEM: ca.CertPEM}
	db := NSSDatabases(home)[0]
	if r := c.Install(context.Background(), db, target); r.Status != Installed {
		t.Fatalf("%+v", r)
	}
	entries := []string{filepath.Join(home, ".pki"), db.Dir}
	files, _ := filepath.Glob(filepath.Join(db.Dir, "*"))
	for _, p := range append(entries, files...) {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if s := st.Sys().(*syscall.Stat_t); s.Uid != 65534 {
			t.Errorf("%s belongs to uid %d, want the caller's 65534", p, s.Uid)
		}
	}
}

// fakeRefresh is a stand-in for update-ca-certificates over temp folders:
// it concatenates the anchors into the bundle. The real command runs in
// cmd/siteplex's private-namespace test.
func fakeStore(t *testing.T) *SystemStore {
	dir := t.TempDir()
	anchors := filepath.Join(dir, "anchors")
	os.Mkdir(anchors, 0o755)
	bundle := filepath.Join(dir, "bundle.crt")
	script := filepath.Join(dir, "refresh")
	os.WriteFile(script, []byte("#!/bin/sh\ncat "+anchors+"/*.crt > "+bundle+" 2>/dev/null; exit 0\n"), 0o755)
	return &SystemStore{Flavour: "test", AnchorDir: anchors, Ext: ".crt", Refresh: []string{script}, Bundle: bundle}
}

func TestSystemStoreLogic(t *testing.T) {
	ctx := context.Background()
	s := fakeStore(t)
	caroot := filepath.Join(t.TempDir(), "ca")
	target := Target{Name: "siteplex-me-12345678", CertPEM: newCA(t, caroot).CertPEM}
	steps := []struct {
		what string
		do   func() Result
		want string
	}{
		{"status before", func() Result { return s.Status(target) }, Absent},
		{"install", func() Result { return s.Install(ctx, target) }, Installed},
		{"status", func() Result { return s.Status(target) }, Trusted},
		{"install again", func() Result { return s.Install(ctx, target) }, Already},
		{"uninstall", func() Result { return s.Uninstall(ctx, target) }, Removed},
		{"uninstall again", func() Result { return s.Uninstall(ctx, target) }, Absent},
	}
	for _, st := range steps {
		if r := st.do(); r.Status != st.want {
			t.Fatalf("%s: %+v, want %s", st.what, r, st.want)
		}
	}
	s.Install(ctx, target)
	if st, _ := os.Stat(s.File(target.Name)); st.Mode().Perm() != 0o644 {
		t.Fatalf("anchor mode %v", st.Mode())
	}
	// The bundle not rebuilt: stale, and install fixes it.
	os.WriteFile(s.Bundle, nil, 0o644)
	if r := s.Status(target); r.Status != Stale || !strings.Contains(r.Detail, "run "+s.Command()) {
		t.Fatalf("bundle without it: %+v", r)
	}
	if r := s.Install(ctx, target); r.Status != Installed {
		t.Fatalf("%+v", r)
	}
	// A replaced CA: stale until installed again.
	tlsca.Remove(caroot)
	newer := Target{Name: target.Name, CertPEM: newCA(t, caroot).CertPEM}
	if r := s.Status(newer); r.Status != Stale {
		t.Fatalf("replaced: %+v", r)
	}
	if r := s.Install(ctx, newer); r.Status != Installed {
		t.Fatalf("%+v", r)
	}
	// Removal by name alone (the CA files are gone).
	if r := s.Uninstall(ctx, Target{Name: target.Name}); r.Status != Removed {
		t.Fatalf("%+v", r)
	}
	if m, _ := filepath.Glob(filepath.Join(s.AnchorDir, "*")); len(m) != 0 {
		t.Fatalf("left in the anchors folder: %v", m)
	}
	// A refresh command that fails is reported.
	s.Refresh = []string{"false"}
	if r := s.Install(ctx, newer); r.Status != Failed || !strings.Contains(r.Detail, "false") {
		t.Fatalf("failing refresh: %+v", r)
	}
}

// TestRemoveLinks: the links update-ca-certificates made for siteplex's
// anchor go, everything else stays; a hash shared with another
// certificate is renumbered.
func TestRemoveLinks(t *testing.T) {
	s := fakeStore(t)
	s.Links = t.TempDir()
	name := "siteplex-me-12345678"
	other := filepath.Join(t.TempDir(), "other.crt")
	os.WriteFile(other, newCA(t, filepath.Join(t.TempDir(), "o")).CertPEM, 0o644)
	os.WriteFile(s.File(name), newCA(t, filepath.Join(t.TempDir(), "m")).CertPEM, 0o644)
	links := map[string]string{
		name + ".pem": s.File(name),
		"aaaa0000.0":  name + ".pem",
		"other.pem":   other,
		"bbbb0000.0":  "other.pem",
		"unrelated.0": "/nowhere",
		"foreign.pem": filepath.Join(s.AnchorDir, "foreign.crt"),
	}
	for l, target := range links {
		os.Symlink(target, filepath.Join(s.Links, l))
	}
	os.Remove(s.File(name))
	if err := s.removeLinks(name); err != nil {
		t.Fatal(err)
	}
	for l := range links {
		_, err := os.Lstat(filepath.Join(s.Links, l))
		gone := err != nil
		if want := l == name+".pem" || l == "aaaa0000.0"; gone != want {
			t.Errorf("%s: gone %v, want %v", l, gone, want)
		}
	}
	// A shared hash: ours is .0, another certificate's .1.
	os.Symlink(s.File(name), filepath.Join(s.Links, name+".pem"))
	os.WriteFile(s.File(name), []byte("x"), 0o644)
	os.Symlink(name+".pem", filepath.Join(s.Links, "cccc0000.0"))
	os.Symlink("other.pem", filepath.Join(s.Links, "cccc0000.1"))
	if err := s.removeLinks(name); err != nil {
		t.Fatal(err)
	}
	if target, _ := os.Readlink(filepath.Join(s.Links, "cccc0000.0")); target != "other.pem" {
		t.Fatalf("cccc0000.0 -> %q, want the other certificate's link moved down", target)
	}
	if _, err := os.Lstat(filepath.Join(s.Links, "cccc0000.1")); err == nil {
		t.Fatal("cccc0000.1 kept")
	}
}
