package tlsca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/siteplex/siteplex/internal/testenv"
)

func TestEnsureCreatesCA(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "share", "siteplex", "ca")
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	ca, res, err := Ensure(dir, EnsureOptions{Label: "alice@box", Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if res != Created {
		t.Fatalf("result %v, want created", res)
	}
	for _, d := range []string{dir, filepath.Dir(dir), filepath.Dir(filepath.Dir(dir))} {
		if st, err := os.Stat(d); err != nil || st.Mode().Perm() != 0o700 {
			t.Fatalf("%s: %v %v, want a 0700 folder", d, st.Mode(), err)
		}
	}
	if st, err := os.Stat(filepath.Join(dir, KeyFile)); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v, want 0600", st.Mode(), err)
	}
	c := ca.Cert
	pub, ok := c.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		t.Fatalf("CA key is %T, want ECDSA P-256", c.PublicKey)
	}
	if !c.IsCA || !c.BasicConstraintsValid || c.MaxPathLen != 0 || !c.MaxPathLenZero {
		t.Fatalf("basic constraints: IsCA %v, MaxPathLen %d", c.IsCA, c.MaxPathLen)
	}
	if got := c.NotAfter.Sub(c.NotBefore); got != CAValidity || CAValidity < 3650*24*time.Hour {
		t.Fatalf("validity %v, want 10 years", got)
	}
	if !c.PermittedDNSDomainsCritical || !slices.Equal(c.PermittedDNSDomains, []string{"localhost"}) {
		t.Fatalf("DNS constraints %v (critical %v)", c.PermittedDNSDomains, c.PermittedDNSDomainsCritical)
	}
	var nets []string
	for _, n := range c.PermittedIPRanges {
		nets = append(nets, n.String())
	}
	if !slices.Equal(nets, []string{"127.0.0.0/8", "::1/128"}) {
		t.Fatalf("IP constraints %v", nets)
	}
	if c.Subject.CommonName != "siteplex local CA alice@box" {
		t.Fatalf("subject %v", c.Subject)
	}
	if got := strings.Join(ca.Scope(), ", "); got != "localhost, *.localhost, 127.0.0.0/8, ::1" {
		t.Fatalf("scope %q", got)
	}

	// Once: the second run keeps it.
	again, res, err := Ensure(dir, EnsureOptions{})
	if err != nil || res != Existing || again.Fingerprint() != ca.Fingerprint() {
		t.Fatalf("second Ensure: %v %v, same CA %v", res, err, again != nil && again.Fingerprint() == ca.Fingerprint())
	}
	// A leaf cache of the old CA goes when the CA is replaced.
	os.MkdirAll(filepath.Join(dir, LeafDir), 0o700)
	os.WriteFile(filepath.Join(dir, LeafDir, "x.localhost.pem"), []byte("old"), 0o600)
	wider, res, err := Ensure(dir, EnsureOptions{Domains: []string{"Example.GH"}})
	if err != nil || res != Replaced {
		t.Fatalf("Ensure with a new domain: %v %v", res, err)
	}
	if wider.Fingerprint() == ca.Fingerprint() || !slices.Equal(wider.Cert.PermittedDNSDomains, []string{"localhost", "example.gh"}) {
		t.Fatalf("replaced CA permits %v", wider.Cert.PermittedDNSDomains)
	}
	if _, err := os.Stat(filepath.Join(dir, LeafDir)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("old leaves kept: %v", err)
	}
	// A domain already covered (a subdomain) keeps the CA; the old ones stay.
	kept, res, err := Ensure(dir, EnsureOptions{Domains: []string{"www.example.gh"}})
	if err != nil || res != Existing || kept.Fingerprint() != wider.Fingerprint() {
		t.Fatalf("covered domain: %v %v", res, err)
	}
	third, res, err := Ensure(dir, EnsureOptions{Domains: []string{"example.de"}})
	if err != nil || res != Replaced || !slices.Equal(third.Cert.PermittedDNSDomains, []string{"localhost", "example.gh", "example.de"}) {
		t.Fatalf("third: %v %v %v", res, err, third.Cert.PermittedDNSDomains)
	}
	loaded, err := Load(dir)
	if err != nil || loaded.Fingerprint() != third.Fingerprint() {
		t.Fatalf("Load after Ensure: %v", err)
	}
}

func TestEnsureGivesFilesToTheSudoCaller(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Missing(t, "root, to create files for another uid")
	}
	base := t.TempDir()
	dir := filepath.Join(base, "home", ".local", "share", "siteplex", "ca")
	owner := &Owner{UID: 65534, GID: 65534}
	ca, _, err := Ensure(dir, EnsureOptions{Owner: owner})
	if err != nil {
		t.Fatal(err)
	}
	iss, err := NewIssuer(ca, IssuerOptions{Allowed: func(string) bool { return true }, Owner: owner})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := iss.Certificate("gh.localhost"); err != nil {
		t.Fatal(err)
	}
	paths := []string{filepath.Join(base, "home"), dir, filepath.Join(dir, KeyFile), filepath.Join(dir, CertFile),
		filepath.Join(dir, ".lock"), filepath.Join(dir, LeafDir), filepath.Join(dir, LeafDir, "gh.localhost.pem")}
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if s := st.Sys().(*syscall.Stat_t); s.Uid != 65534 || s.Gid != 65534 {
			t.Errorf("%s owned by %d:%d, want 65534:65534", p, s.Uid, s.Gid)
		}
	}
	if st, _ := os.Stat(base); st.Sys().(*syscall.Stat_t).Uid != 0 {
		t.Error("an existing folder changed owner")
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Load(dir); !errors.Is(err, ErrNoCA) || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("empty folder: %v", err)
	}
	if _, _, err := Ensure(dir, EnsureOptions{}); err != nil {
		t.Fatal(err)
	}
	other := t.TempDir()
	if _, _, err := Ensure(other, EnsureOptions{}); err != nil {
		t.Fatal(err)
	}
	otherKey, _ := os.ReadFile(filepath.Join(other, KeyFile))
	orig, _ := os.ReadFile(filepath.Join(dir, KeyFile))
	tests := []struct {
		name, file, content, want string
	}{
		{"key of another CA", KeyFile, string(otherKey), "does not belong"},
		{"corrupt key", KeyFile, "garbage", "no PEM block"},
		{"corrupt certificate", CertFile, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "rootCA.pem"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := t.TempDir()
			for _, f := range []string{KeyFile, CertFile} {
				b, _ := os.ReadFile(filepath.Join(dir, f))
				os.WriteFile(filepath.Join(d, f), b, 0o600)
			}
			os.WriteFile(filepath.Join(d, tt.file), []byte(tt.content), 0o600)
			_, err := Load(d)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Load: %v, want %q", err, tt.want)
			}
			// Never silently replaced.
			if _, _, err := Ensure(d, EnsureOptions{}); err == nil {
				t.Fatal("Ensure replaced a broken CA")
			}
			if b, _ := os.ReadFile(filepath.Join(d, tt.file)); string(b) != tt.content {
				t.Fatal("Ensure changed the broken file")
			}
		})
	}
	if b, _ := os.ReadFile(filepath.Join(dir, KeyFile)); string(b) != string(orig) {
		t.Fatal("key changed")
	}
}

func TestRemove(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ca")
	ca, _, err := Ensure(dir, EnsureOptions{})
	if err != nil {
		t.Fatal(err)
	}
	iss, _ := NewIssuer(ca, IssuerOptions{Allowed: func(string) bool { return true }})
	if _, err := iss.Certificate("a.localhost"); err != nil {
		t.Fatal(err)
	}
	if err := Remove(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("CAROOT still there: %v", err)
	}
	if err := Remove(dir); err != nil {
		t.Fatalf("removing twice: %v", err)
	}
	// A file siteplex did not make is kept, with its folder.
	if _, _, err := Ensure(dir, EnsureOptions{}); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("mine"), 0o600)
	if err := Remove(dir); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "notes.txt")); string(b) != "mine" {
		t.Fatal("the user's file went")
	}
	if _, err := os.Stat(filepath.Join(dir, KeyFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("key kept")
	}
}

func TestCheckDomain(t *testing.T) {
	tests := []struct {
		domain string
		ok     bool
	}{
		{"example.gh", true},
		{"Example.GH.", true},
		{"gh.example-stage.eu", true},
		{"test", true},
		{"internal", true},
		{"com", false},
		{"gh", false},
		{"*.example.gh", false},
		{"exa mple.gh", false},
		{"", false},
		{"-bad.example", false},
	}
	for _, tt := range tests {
		if err := CheckDomain(tt.domain); (err == nil) != tt.ok {
			t.Errorf("CheckDomain(%q) = %v, want ok %v", tt.domain, err, tt.ok)
		}
	}
	if _, _, err := Ensure(t.TempDir(), EnsureOptions{Domains: []string{"com"}}); err == nil || !strings.Contains(err.Error(), "top-level") {
		t.Fatalf("Ensure with a TLD: %v", err)
	}
}

func TestPermits(t *testing.T) {
	ca, _, err := Ensure(t.TempDir(), EnsureOptions{Domains: []string{"example.gh"}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		want bool
	}{
		{"localhost", true},
		{"gh.localhost", true},
		{"a.b.localhost", true},
		{"example.gh", true},
		{"www.example.gh", true},
		{"127.0.0.1", true},
		{"127.1.2.3", true},
		{"::1", true},
		{"notlocalhost", false},
		{"localhost.example.com", false},
		{"xexample.gh", false},
		{"example.com", false},
		{"10.0.0.1", false},
		{"::2", false},
	}
	for _, tt := range tests {
		if got := ca.Permits(tt.name); got != tt.want {
			t.Errorf("Permits(%q) = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestRoot(t *testing.T) {
	u := User{Name: "alice", UID: 1000, GID: 1000, Home: "/home/alice"}
	sudo := u
	sudo.Sudo = true
	tests := []struct {
		name string
		env  map[string]string
		user User
		want string
	}{
		{"default", nil, u, "/home/alice/.local/share/siteplex/ca"},
		{"XDG_DATA_HOME", map[string]string{"XDG_DATA_HOME": "/data"}, u, "/data/siteplex/ca"},
		{"relative XDG_DATA_HOME ignored", map[string]string{"XDG_DATA_HOME": "data"}, u, "/home/alice/.local/share/siteplex/ca"},
		{"SITEPLEX_CAROOT", map[string]string{"SITEPLEX_CAROOT": "/srv/ca", "XDG_DATA_HOME": "/data"}, u, "/srv/ca"},
		{"sudo: root's XDG_DATA_HOME ignored", map[string]string{"XDG_DATA_HOME": "/root/.local/share"}, sudo, "/home/alice/.local/share/siteplex/ca"},
		{"sudo -E: the caller's XDG_DATA_HOME", map[string]string{"XDG_DATA_HOME": "/home/alice/data"}, sudo, "/home/alice/data/siteplex/ca"},
	}
	for _, tt := range tests {
		if got := Root(func(k string) string { return tt.env[k] }, tt.user); got != tt.want {
			t.Errorf("%s: Root = %s, want %s", tt.name, got, tt.want)
		}
	}
}

func TestCurrentUserThroughSudo(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Missing(t, "root, to act for a sudo caller")
	}
	env := map[string]string{"SUDO_UID": "65534", "SUDO_GID": "65534", "HOME": "/root"}
	u, err := CurrentUser(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if !u.Sudo || u.UID != 65534 || u.GID != 65534 || u.Home == "/root" || u.Owner() == nil {
		t.Fatalf("sudo caller: %+v", u)
	}
	env = map[string]string{"HOME": "/root"}
	if u, err = CurrentUser(func(k string) string { return env[k] }); err != nil || u.Sudo || u.UID != 0 || u.Home != "/root" || u.Owner() != nil {
		t.Fatalf("root itself: %+v %v", u, err)
	}
}
