package tlsca

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/siteplex/siteplex/internal/testenv"
)

// routed is the Allowed predicate of these tests: the names a small
// project would route.
func routed(name string) bool {
	switch name {
	case "gh.localhost", "example-com.localhost", "localhost", "127.0.0.1", "::1", "example.gh", "example.com":
		return true
	}
	return strings.HasSuffix(name, ".sub.localhost")
}

func newTestCA(t testing.TB, domains ...string) *CA {
	t.Helper()
	ca, _, err := Ensure(filepath.Join(t.TempDir(), "ca"), EnsureOptions{Domains: domains, Label: "test"})
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func newTestIssuer(t testing.TB, ca *CA, opts IssuerOptions) *Issuer {
	t.Helper()
	if opts.Allowed == nil {
		opts.Allowed = routed
	}
	iss, err := NewIssuer(ca, opts)
	if err != nil {
		t.Fatal(err)
	}
	return iss
}

// serveTLS runs an HTTPS server with cfg on a loopback port (network
// "tcp4" or "tcp6") until the test ends; the handler answers with the
// protocol and the server name. It returns the address.
func serveTLS(t testing.TB, network string, cfg *tls.Config) string {
	t.Helper()
	addr := "127.0.0.1:0"
	if network == "tcp6" {
		addr = "[::1]:0"
	}
	ln, err := net.Listen(network, addr)
	if err != nil {
		testenv.Missing(t, "a %s loopback listener: %v", network, err)
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "proto=%s host=%s sni=%s\n", r.Proto, r.Host, r.TLS.ServerName)
		}),
		TLSConfig: cfg,
		ErrorLog:  discardLog(),
	}
	go srv.ServeTLS(ln, "", "")
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// handshake dials addr, sends serverName as SNI ("" for none) and
// verifies the chain against ca with verifyName as the expected name.
func handshake(addr, serverName, verifyName string, ca *CA) (*x509.Certificate, error) {
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	cfg := &tls.Config{RootCAs: pool, ServerName: serverName}
	if serverName == "" {
		// crypto/tls sends no SNI for an IP ServerName; verify by hand.
		cfg.InsecureSkipVerify = true
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: pool, DNSName: verifyName})
			return err
		}
	}
	d := &tls.Dialer{Config: cfg, NetDialer: &net.Dialer{Timeout: 10 * time.Second}}
	c, err := d.DialContext(context.Background(), "tcp", addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.(*tls.Conn).ConnectionState().PeerCertificates[0], nil
}

func TestHandshake(t *testing.T) {
	ca := newTestCA(t)
	var refusedMu sync.Mutex
	var refused []string
	iss := newTestIssuer(t, ca, IssuerOptions{Refused: func(e *RefusedError) {
		refusedMu.Lock()
		refused = append(refused, e.Name)
		refusedMu.Unlock()
	}})
	v4 := serveTLS(t, "tcp4", iss.TLSConfig())
	tests := []struct {
		name       string
		addr       string
		sni        string
		wantSAN    string
		wantRefuse string // the refusal the server reports; "" = success
	}{
		{"local domain", v4, "gh.localhost", "gh.localhost", ""},
		{"upper case and final dot", v4, "GH.localhost.", "gh.localhost", ""},
		{"localhost", v4, "localhost", "localhost", ""},
		{"under a local domain", v4, "a.sub.localhost", "a.sub.localhost", ""},
		{"unknown name", v4, "attacker.example", "", "attacker.example"},
		{"unrouted localhost name", v4, "other.localhost", "", "other.localhost"},
		{"routed but outside the CA's constraints", v4, "example.gh", "", "example.gh"},
		{"no SNI, loopback address", v4, "", "127.0.0.1", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			refusedMu.Lock()
			refused = nil
			refusedMu.Unlock()
			verify := tt.wantSAN
			leaf, err := handshake(tt.addr, tt.sni, verify, ca)
			if tt.wantRefuse != "" {
				if err == nil {
					t.Fatalf("handshake for %q succeeded with %v", tt.sni, leaf.DNSNames)
				}
				refusedMu.Lock()
				defer refusedMu.Unlock()
				if len(refused) != 1 || refused[0] != tt.wantRefuse {
					t.Fatalf("refused %q, want %q", refused, tt.wantRefuse)
				}
				if _, err := os.Stat(filepath.Join(ca.Dir, LeafDir, fileName(tt.wantRefuse))); !errors.Is(err, os.ErrNotExist) {
					t.Fatalf("a certificate was written for %s", tt.wantRefuse)
				}
				return
			}
			if err != nil {
				t.Fatalf("handshake: %v", err)
			}
			assertLeaf(t, leaf, tt.wantSAN)
		})
	}
}

func TestHandshakeIPv6NoSNI(t *testing.T) {
	ca := newTestCA(t)
	iss := newTestIssuer(t, ca, IssuerOptions{})
	leaf, err := handshake(serveTLS(t, "tcp6", iss.TLSConfig()), "", "::1", ca)
	if err != nil {
		t.Fatal(err)
	}
	assertLeaf(t, leaf, "::1")
	// A predicate that does not route loopback addresses: no certificate.
	deny := newTestIssuer(t, newTestCA(t), IssuerOptions{Allowed: func(n string) bool { return n == "gh.localhost" }})
	if _, err := handshake(serveTLS(t, "tcp4", deny.TLSConfig()), "", "127.0.0.1", ca); err == nil {
		t.Fatal("a client without SNI got a certificate though 127.0.0.1 is not routed")
	}
}

// assertLeaf checks what a user's client sees: exactly the name asked for,
// 30 days, ECDSA, serverAuth.
func assertLeaf(t *testing.T, leaf *x509.Certificate, name string) {
	t.Helper()
	if ip := net.ParseIP(name); ip != nil {
		if len(leaf.IPAddresses) != 1 || !leaf.IPAddresses[0].Equal(ip) || len(leaf.DNSNames) != 0 {
			t.Fatalf("SANs: DNS %v IP %v, want exactly IP %s", leaf.DNSNames, leaf.IPAddresses, name)
		}
	} else if len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != name || len(leaf.IPAddresses) != 0 {
		t.Fatalf("SANs: DNS %v IP %v, want exactly %s", leaf.DNSNames, leaf.IPAddresses, name)
	}
	if len(leaf.EmailAddresses)+len(leaf.URIs) != 0 {
		t.Fatalf("extra SANs: %v %v", leaf.EmailAddresses, leaf.URIs)
	}
	if got := leaf.NotAfter.Sub(leaf.NotBefore); got != 30*24*time.Hour {
		t.Fatalf("validity %v, want 30 days", got)
	}
	if leaf.PublicKeyAlgorithm != x509.ECDSA || leaf.IsCA {
		t.Fatalf("key %v, CA %v", leaf.PublicKeyAlgorithm, leaf.IsCA)
	}
	if len(leaf.ExtKeyUsage) != 1 || leaf.ExtKeyUsage[0] != x509.ExtKeyUsageServerAuth {
		t.Fatalf("EKU %v", leaf.ExtKeyUsage)
	}
}

func TestRenewal(t *testing.T) {
	ca := newTestCA(t)
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	set := func(t time.Time) { mu.Lock(); now = t; mu.Unlock() }
	iss := newTestIssuer(t, ca, IssuerOptions{Now: clock})
	first, err := iss.Certificate("gh.localhost")
	if err != nil {
		t.Fatal(err)
	}
	start := clock()
	steps := []struct {
		at      time.Duration
		renewed bool
	}{
		{time.Minute, false},
		{22 * 24 * time.Hour, false},            // 8 days left
		{23*24*time.Hour + 2*time.Hour, true},   // under 7 days left
		{23*24*time.Hour + 3*time.Hour, false},  // the renewed one is kept
		{2*23*24*time.Hour + 3*time.Hour, true}, // and renewed in turn
		{2*23*24*time.Hour + 3*time.Hour + 1, false},
	}
	prev := first
	for _, s := range steps {
		set(start.Add(s.at))
		got, err := iss.Certificate("gh.localhost")
		if err != nil {
			t.Fatal(err)
		}
		if renewed := got.Leaf.SerialNumber.Cmp(prev.Leaf.SerialNumber) != 0; renewed != s.renewed {
			t.Fatalf("at +%v: renewed %v, want %v (not after %v)", s.at, renewed, s.renewed, prev.Leaf.NotAfter)
		}
		if left := got.Leaf.NotAfter.Sub(clock()); left <= RenewBefore {
			t.Fatalf("at +%v: served a certificate with %v left", s.at, left)
		}
		// The disk copy is the renewed one: a new process does not go back.
		fresh := newTestIssuer(t, ca, IssuerOptions{Now: clock})
		if d, _ := fresh.Certificate("gh.localhost"); d.Leaf.SerialNumber.Cmp(got.Leaf.SerialNumber) != 0 {
			t.Fatalf("at +%v: disk cache holds another certificate", s.at)
		}
		prev = got
	}
}

// TestLeafHelperProcess is not a test: TestDiskCacheSurvivesNewProcess runs
// the test binary with SITEPLEX_TLSCA_HELPER=CAROOT to issue or load a leaf
// in a new process and print its serial number.
func TestLeafHelperProcess(t *testing.T) {
	dir := os.Getenv("SITEPLEX_TLSCA_HELPER")
	if dir == "" {
		t.Skip("helper process only")
	}
	ca, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	iss := newTestIssuer(t, ca, IssuerOptions{})
	c, err := iss.Certificate("gh.localhost")
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("serial=%s\n", c.Leaf.SerialNumber)
}

func TestDiskCacheSurvivesNewProcess(t *testing.T) {
	ca := newTestCA(t)
	run := func() string {
		cmd := exec.Command(os.Args[0], "-test.run=^TestLeafHelperProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), "SITEPLEX_TLSCA_HELPER="+ca.Dir)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("helper: %v\n%s", err, out)
		}
		for _, l := range strings.Split(string(out), "\n") {
			if s, ok := strings.CutPrefix(l, "serial="); ok {
				return s
			}
		}
		t.Fatalf("helper printed no serial:\n%s", out)
		return ""
	}
	first := run()
	if second := run(); second != first {
		t.Fatalf("second process issued anew: %s, then %s", first, second)
	}
	file := filepath.Join(ca.Dir, LeafDir, "gh.localhost.pem")
	st, err := os.Stat(file)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("cache file: %v %v, want 0600", st, err)
	}
	if st, _ := os.Stat(filepath.Dir(file)); st.Mode().Perm() != 0o700 {
		t.Fatalf("cache folder %v, want 0700", st.Mode())
	}
	iss := newTestIssuer(t, ca, IssuerOptions{})
	c, err := iss.Certificate("gh.localhost")
	if err != nil || c.Leaf.SerialNumber.String() != first {
		t.Fatalf("this process: %v, serial %v want %s", err, c.Leaf.SerialNumber, first)
	}
	// A cached file that is not exactly right is replaced, never served.
	bad := []struct {
		name    string
		content func() []byte
	}{
		{"torn", func() []byte { b, _ := os.ReadFile(file); return b[:len(b)/2] }},
		{"another CA's", func() []byte {
			other := newTestIssuer(t, newTestCA(t), IssuerOptions{})
			other.Certificate("gh.localhost")
			b, _ := os.ReadFile(filepath.Join(other.opts.CacheDir, "gh.localhost.pem"))
			return b
		}},
		{"another name's", func() []byte {
			iss.Certificate("localhost")
			b, _ := os.ReadFile(filepath.Join(ca.Dir, LeafDir, "localhost.pem"))
			return b
		}},
	}
	for _, b := range bad {
		os.WriteFile(file, b.content(), 0o600)
		c, err := newTestIssuer(t, ca, IssuerOptions{}).Certificate("gh.localhost")
		if err != nil {
			t.Fatalf("%s cache file: %v", b.name, err)
		}
		if c.Leaf.CheckSignatureFrom(ca.Cert) != nil || c.Leaf.DNSNames[0] != "gh.localhost" || c.Leaf.SerialNumber.String() == first {
			t.Fatalf("%s cache file served", b.name)
		}
	}
}

func TestConcurrentHandshakesIssueOnce(t *testing.T) {
	ca := newTestCA(t)
	iss := newTestIssuer(t, ca, IssuerOptions{})
	addr := serveTLS(t, "tcp4", iss.TLSConfig())
	const n = 32
	serials := make([]string, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			leaf, err := handshake(addr, "x.sub.localhost", "x.sub.localhost", ca)
			if err != nil {
				serials[i] = "error: " + err.Error()
				return
			}
			serials[i] = leaf.SerialNumber.String()
		}()
	}
	close(start)
	wg.Wait()
	for _, s := range serials {
		if s != serials[0] || strings.HasPrefix(s, "error") {
			t.Fatalf("%d concurrent first handshakes saw different certificates: %v", n, serials)
		}
	}
}

func TestNewIssuerNeedsPredicate(t *testing.T) {
	if _, err := NewIssuer(newTestCA(t), IssuerOptions{}); err == nil {
		t.Fatal("no Allowed accepted")
	}
	if _, err := NewIssuer(&CA{}, IssuerOptions{Allowed: routed}); err == nil {
		t.Fatal("a CA without key accepted")
	}
}

func TestTLSConfig(t *testing.T) {
	cfg := newTestIssuer(t, newTestCA(t), IssuerOptions{}).TLSConfig()
	if cfg.MinVersion != tls.VersionTLS12 || strings.Join(cfg.NextProtos, ",") != "h2,http/1.1" || cfg.GetCertificate == nil {
		t.Fatalf("config: min %x, ALPN %v", cfg.MinVersion, cfg.NextProtos)
	}
	// TLS 1.1 clients are refused.
	addr := serveTLS(t, "tcp4", cfg)
	c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: "gh.localhost", InsecureSkipVerify: true, MaxVersion: tls.VersionTLS11})
	if err == nil {
		c.Close()
		t.Fatal("a TLS 1.1 handshake succeeded")
	}
}

// TestNameConstraintsEnforced signs, with the CA's own key, what siteplex
// never issues — a leaf for a public name — and checks that verifiers
// reject it because of the CA's name constraints: Go's crypto/x509 here,
// OpenSSL below, Chromium in the cmd/siteplex trust tests.
func TestNameConstraintsEnforced(t *testing.T) {
	ca := newTestCA(t)
	for _, name := range []string{"attacker.example", "10.1.2.3"} {
		der := signAnyway(t, ca, name)
		leaf, _ := x509.ParseCertificate(der)
		pool := x509.NewCertPool()
		pool.AddCert(ca.Cert)
		_, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: name})
		var ce x509.CertificateInvalidError
		if !errors.As(err, &ce) || ce.Reason != x509.CANotAuthorizedForThisName {
			t.Fatalf("%s: Go verified a leaf outside the constraints: %v", name, err)
		}
		if name == "attacker.example" {
			openssl := lookTool(t, "openssl")
			dir := t.TempDir()
			leafFile := filepath.Join(dir, "leaf.pem")
			os.WriteFile(leafFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
			out, err := exec.Command(openssl, "verify", "-CAfile", filepath.Join(ca.Dir, CertFile), leafFile).CombinedOutput()
			if err == nil || !strings.Contains(string(out), "permitted subtree violation") {
				t.Fatalf("openssl verify accepted it or failed for another reason: %v\n%s", err, out)
			}
		}
	}
	// The control: a leaf the issuer makes verifies under OpenSSL.
	iss := newTestIssuer(t, ca, IssuerOptions{})
	c, err := iss.Certificate("gh.localhost")
	if err != nil {
		t.Fatal(err)
	}
	leafFile := filepath.Join(t.TempDir(), "leaf.pem")
	os.WriteFile(leafFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Certificate[0]}), 0o600)
	if out, err := exec.Command(lookTool(t, "openssl"), "verify", "-CAfile", filepath.Join(ca.Dir, CertFile), leafFile).CombinedOutput(); err != nil {
		t.Fatalf("openssl verify of an issued leaf: %v\n%s", err, out)
	}
}

// signAnyway signs a leaf for name with the CA key, bypassing the Issuer.
func signAnyway(t *testing.T, ca *CA, name string) []byte {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if ip := net.ParseIP(name); ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
	} else {
		tmpl.DNSNames = []string{name}
	}
	// Any public key will do; the CA's own is at hand.
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, ca.key.Public(), ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func lookTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		testenv.Missing(t, "%s (Debian package %s): %v", name, name, err)
	}
	return p
}

// TestOpenSSLClient runs `openssl s_client` against the issuer: an unknown
// name fails the handshake, a routed one verifies against rootCA.pem.
func TestOpenSSLClient(t *testing.T) {
	openssl := lookTool(t, "openssl")
	ca := newTestCA(t)
	iss := newTestIssuer(t, ca, IssuerOptions{})
	addr := serveTLS(t, "tcp4", iss.TLSConfig())
	sClient := func(name string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, openssl, "s_client", "-connect", addr, "-servername", name,
			"-CAfile", filepath.Join(ca.Dir, CertFile), "-verify_return_error", "-verify_hostname", name)
		cmd.Stdin = strings.NewReader("")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := sClient("attacker.example")
	if err == nil || !strings.Contains(out, "no peer certificate available") {
		t.Fatalf("openssl s_client -servername attacker.example: exit %v, a certificate was served:\n%s", err, out)
	}
	if !strings.Contains(out, "alert") {
		t.Fatalf("no TLS alert in:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(ca.Dir, LeafDir, "attacker.example.pem")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a certificate was written for attacker.example")
	}
	out, err = sClient("gh.localhost")
	if err != nil || !strings.Contains(out, "Verify return code: 0 (ok)") || !strings.Contains(out, "depth=0 O = siteplex development certificate") {
		t.Fatalf("openssl s_client -servername gh.localhost: %v\n%s", err, out)
	}
}

// TestCurlHTTP2 has curl, trusting only rootCA.pem, fetch a page over
// HTTP/2 from a net/http server using the issuer's config.
func TestCurlHTTP2(t *testing.T) {
	curl := lookTool(t, "curl")
	ca := newTestCA(t)
	iss := newTestIssuer(t, ca, IssuerOptions{})
	addr := serveTLS(t, "tcp4", iss.TLSConfig())
	_, port, _ := net.SplitHostPort(addr)
	for _, tt := range []struct{ flag, proto string }{{"--http2", "HTTP/2.0"}, {"--http1.1", "HTTP/1.1"}} {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		out, err := exec.CommandContext(ctx, curl, "-sS", tt.flag, "--cacert", filepath.Join(ca.Dir, CertFile),
			"--resolve", "gh.localhost:"+port+":127.0.0.1", "-w", "http_version=%{http_version}\n",
			"https://gh.localhost:"+port+"/").CombinedOutput()
		cancel()
		if err != nil {
			t.Fatalf("curl %s: %v\n%s", tt.flag, err, out)
		}
		want := "proto=" + tt.proto + " host=gh.localhost:" + port + " sni=gh.localhost\n"
		if !strings.HasPrefix(string(out), want) {
			t.Fatalf("curl %s answered:\n%s\nwant %q", tt.flag, out, want)
		}
		if tt.flag == "--http2" && !strings.Contains(string(out), "http_version=2\n") {
			t.Fatalf("curl did not speak HTTP/2:\n%s", out)
		}
	}
}

// BenchmarkFirstHandshake is a client's first TLS handshake for a name
// never seen before, over loopback TCP: the leaf is generated, signed,
// written to the disk cache and served. The target is under 10 ms.
func BenchmarkFirstHandshake(b *testing.B) {
	ca := newTestCA(b)
	iss := newTestIssuer(b, ca, IssuerOptions{Allowed: func(string) bool { return true }})
	addr := serveTLS(b, "tcp4", iss.TLSConfig())
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	i := 0
	for b.Loop() {
		i++
		name := fmt.Sprintf("site%d.localhost", i)
		c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: name, RootCAs: pool})
		if err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
}

// BenchmarkCachedHandshake is the same handshake once the name's leaf is in
// memory: the TLS cost alone.
func BenchmarkCachedHandshake(b *testing.B) {
	ca := newTestCA(b)
	iss := newTestIssuer(b, ca, IssuerOptions{})
	addr := serveTLS(b, "tcp4", iss.TLSConfig())
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	for b.Loop() {
		c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: "gh.localhost", RootCAs: pool})
		if err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
}

func discardLog() *log.Logger { return log.New(io.Discard, "", 0) }
