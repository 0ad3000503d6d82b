package doctor_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/siteplex/siteplex/internal/doctor"
	"github.com/siteplex/siteplex/internal/testenv"
	"github.com/siteplex/siteplex/internal/tlsca"
	"github.com/siteplex/siteplex/internal/truststore"
)

func TestHTTPSCA(t *testing.T) {
	good := filepath.Join(t.TempDir(), "ca")
	if _, _, err := tlsca.Ensure(good, tlsca.EnsureOptions{Domains: []string{"example.gh"}}); err != nil {
		t.Fatal(err)
	}
	open := filepath.Join(t.TempDir(), "ca")
	tlsca.Ensure(open, tlsca.EnsureOptions{})
	os.Chmod(filepath.Join(open, tlsca.KeyFile), 0o644)
	broken := filepath.Join(t.TempDir(), "ca")
	tlsca.Ensure(broken, tlsca.EnsureOptions{})
	os.WriteFile(filepath.Join(broken, tlsca.KeyFile), []byte("not a key"), 0o600)

	tests := []struct {
		name   string
		caroot string
		st     doctor.Status
		detail []string
		fix    []string
		loaded bool
	}{
		{"no CA", filepath.Join(t.TempDir(), "none"), doctor.OK, []string{"HTTPS is off", "siteplex trust"}, nil, false},
		{"CA", good, doctor.OK, []string{"signs only localhost, *.localhost, example.gh, *.example.gh, 127.0.0.0/8, ::1", "SHA-256"}, nil, true},
		{"readable key", open, doctor.Warn, []string{"readable by others", "-rw-r--r--"}, []string{"chmod 600 " + filepath.Join(open, tlsca.KeyFile)}, true},
		{"broken key", broken, doctor.Fail, []string{tlsca.KeyFile}, []string{"siteplex untrust --delete && siteplex trust"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, ca := doctor.HTTPSCA(tt.caroot)
			expect(t, c, doctor.NameHTTPSCA, tt.st, tt.detail, tt.fix)
			if (ca != nil) != tt.loaded {
				t.Fatalf("CA returned: %v, want %v", ca != nil, tt.loaded)
			}
		})
	}
}

func TestHTTPSCAExpiry(t *testing.T) {
	ca, _, err := tlsca.Ensure(filepath.Join(t.TempDir(), "ca"), tlsca.EnsureOptions{})
	if err != nil {
		t.Fatal(err)
	}
	end := ca.Cert.NotAfter
	tests := []struct {
		name   string
		ca     *tlsca.CA
		now    time.Time
		st     doctor.Status
		detail string
	}{
		{"no CA", nil, time.Now(), doctor.OK, "no local CA"},
		{"new", ca, time.Now(), doctor.OK, "valid until " + end.Format("2006-01-02")},
		{"a month left", ca, end.Add(-30 * 24 * time.Hour), doctor.Warn, "(in 30 days)"},
		{"expired", ca, end.Add(time.Hour), doctor.Fail, "expired on " + end.Format("2006-01-02")},
		{"clock behind", ca, ca.Cert.NotBefore.Add(-time.Hour), doctor.Fail, "is the clock right"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			expect(t, doctor.HTTPSCAExpiry(tt.ca, tt.now), doctor.NameHTTPSCAExpiry, tt.st, []string{tt.detail}, nil)
		})
	}
}

// TestHTTPSTrust reads a temp HOME's NSS database with the real certutil
// (and the machine's system store, read only).
func TestHTTPSTrust(t *testing.T) {
	c, err := truststore.NewCertutil(nil)
	if err != nil {
		testenv.Missing(t, "%v", err)
	}
	ctx := context.Background()
	home := t.TempDir()
	u := tlsca.User{Name: "me", Home: home}
	caroot := filepath.Join(t.TempDir(), "ca")
	ca, _, err := tlsca.Ensure(caroot, tlsca.EnsureOptions{})
	if err != nil {
		t.Fatal(err)
	}
	expect(t, doctor.HTTPSTrust(ctx, nil, u), doctor.NameHTTPSTrust, doctor.OK, []string{"no local CA"}, nil)
	sysTrusted := false
	if st, err := truststore.DetectSystem(); err == nil {
		sysTrusted = st.Status(truststore.Target{Name: truststore.NameFor(caroot, u), CertPEM: ca.CertPEM}).Status == truststore.Trusted
	}
	if sysTrusted {
		t.Fatal("a fresh test CA is trusted by the machine's store")
	}
	expect(t, doctor.HTTPSTrust(ctx, ca, u), doctor.NameHTTPSTrust, doctor.Warn,
		[]string{"no store trusts the CA", "system: absent"}, []string{"siteplex trust"})

	target := truststore.Target{Name: truststore.NameFor(caroot, u), CertPEM: ca.CertPEM}
	db := truststore.NSSDatabases(home)[0]
	if r := c.Install(ctx, db, target); r.Status != truststore.Installed {
		t.Fatalf("%+v", r)
	}
	expect(t, doctor.HTTPSTrust(ctx, ca, u), doctor.NameHTTPSTrust, doctor.OK, []string{"Chromium/Chrome: trusted"}, nil)

	// The CA replaced (a --domain added) but the database not updated.
	wider, _, err := tlsca.Ensure(caroot, tlsca.EnsureOptions{Domains: []string{"example.gh"}})
	if err != nil {
		t.Fatal(err)
	}
	expect(t, doctor.HTTPSTrust(ctx, wider, u), doctor.NameHTTPSTrust, doctor.Warn, []string{"Chromium/Chrome: stale"}, []string{"siteplex trust"})
}
