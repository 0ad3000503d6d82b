package tlsca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// Leaf lifetimes: a leaf is valid LeafValidity from its issue and is
// replaced once less than RenewBefore of it is left.
const (
	LeafValidity = 30 * 24 * time.Hour
	RenewBefore  = 7 * 24 * time.Hour
)

// IssuerOptions configure an Issuer.
type IssuerOptions struct {
	// Allowed reports whether the engine serves name: a lower-case host
	// name without port or final dot, or an IP address in its canonical
	// form ("127.0.0.1", "::1") for a client that sent no server name and
	// reached a loopback address. It is asked at every handshake, cached
	// certificate or not, so a name the engine stops routing stops being
	// served at once; it must be safe for concurrent use and fast.
	// Required.
	Allowed func(name string) bool
	// CacheDir is where leaves are kept on disk (created 0700, files
	// 0600). "" means CAROOT/leaves.
	CacheDir string
	// Owner receives the cache files and folder (nil: the process).
	Owner *Owner
	// Refused, when set, is called for every handshake refused (after
	// the refusal is decided, before the handshake fails), from the
	// handshake's goroutine.
	Refused func(*RefusedError)
	// Warn, when set, is told about problems that do not stop serving
	// (a leaf that could not be written to the disk cache). nil: ignored.
	Warn func(error)
	// Now is the clock (nil: time.Now); tests move it to exercise renewal.
	Now func() time.Time
}

// RefusedError is why no certificate was issued for a handshake: no
// server name, a name the engine does not route, or a name outside the
// CA's name constraints. The handshake fails; nothing is issued.
type RefusedError struct {
	// Name is the server name the client sent ("" for none).
	Name   string
	Reason string
}

func (e *RefusedError) Error() string {
	if e.Name == "" {
		return "tlsca: no certificate: " + e.Reason
	}
	return fmt.Sprintf("tlsca: no certificate for %q: %s", e.Name, e.Reason)
}

// Issuer hands out leaf certificates signed by a CA at the TLS handshake,
// only for names Allowed says the engine routes. Safe for concurrent use.
type Issuer struct {
	ca    *CA
	opts  IssuerOptions
	group singleflight.Group

	// mu guards cache.
	mu    sync.Mutex
	cache map[string]*tls.Certificate
}

// NewIssuer makes an Issuer for ca. opts.Allowed is required.
func NewIssuer(ca *CA, opts IssuerOptions) (*Issuer, error) {
	if ca == nil || ca.key == nil {
		return nil, errors.New("tlsca: NewIssuer needs a loaded CA")
	}
	if opts.Allowed == nil {
		return nil, errors.New("tlsca: NewIssuer needs an Allowed predicate")
	}
	if opts.CacheDir == "" {
		opts.CacheDir = filepath.Join(ca.Dir, LeafDir)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Issuer{ca: ca, opts: opts, cache: map[string]*tls.Certificate{}}, nil
}

// TLSConfig is the server configuration for the engine's HTTPS
// listeners: TLS 1.2 and up, HTTP/2 offered through ALPN before
// HTTP/1.1, and certificates from GetCertificate. Each call returns a new
// Config the caller may change.
func (i *Issuer) TLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		NextProtos:     []string{"h2", "http/1.1"},
		GetCertificate: i.GetCertificate,
	}
}

// GetCertificate is the tls.Config hook: it returns the leaf for the
// client's server name, issuing it on first use. A client that sends no
// server name gets the certificate of the loopback address it reached,
// when Allowed accepts that address. Anything else fails the handshake
// with a *RefusedError.
func (i *Issuer) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if hello.ServerName == "" {
		ip := loopbackLocalAddr(hello.Conn)
		if ip == "" {
			return nil, i.refuse("", "the client sent no server name (SNI)")
		}
		return i.certificate(ip, "")
	}
	return i.certificate(normalize(hello.ServerName), hello.ServerName)
}

// Certificate returns the leaf for name (a host name or IP address),
// issuing it when there is no fresh one, under the same rules as
// GetCertificate.
func (i *Issuer) Certificate(name string) (*tls.Certificate, error) {
	return i.certificate(normalize(name), name)
}

func (i *Issuer) certificate(name, asked string) (*tls.Certificate, error) {
	if name == "" {
		return nil, i.refuse(asked, "not a valid host name")
	}
	if !i.opts.Allowed(name) {
		return nil, i.refuse(name, "not a name siteplex routes")
	}
	if !i.ca.Permits(name) {
		return nil, i.refuse(name, fmt.Sprintf("outside the names the local CA may sign (%s); run: siteplex trust --domain %s", strings.Join(i.ca.Scope(), ", "), name))
	}
	now := i.opts.Now()
	i.mu.Lock()
	c := i.cache[name]
	i.mu.Unlock()
	if c != nil && fresh(c.Leaf, now) {
		return c, nil
	}
	v, err, _ := i.group.Do(name, func() (any, error) {
		i.mu.Lock()
		c := i.cache[name]
		i.mu.Unlock()
		if c != nil && fresh(c.Leaf, now) {
			return c, nil
		}
		c = i.loadCached(name, now)
		if c == nil {
			var err error
			if c, err = i.issue(name, now); err != nil {
				return nil, err
			}
		}
		i.mu.Lock()
		i.cache[name] = c
		i.mu.Unlock()
		return c, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*tls.Certificate), nil
}

func (i *Issuer) refuse(name, reason string) error {
	e := &RefusedError{Name: name, Reason: reason}
	if i.opts.Refused != nil {
		i.opts.Refused(e)
	}
	return e
}

func (i *Issuer) warn(err error) {
	if i.opts.Warn != nil {
		i.opts.Warn(err)
	}
}

// fresh reports whether leaf is valid at now with more than RenewBefore
// left.
func fresh(leaf *x509.Certificate, now time.Time) bool {
	return leaf != nil && !now.Before(leaf.NotBefore) && now.Add(RenewBefore).Before(leaf.NotAfter)
}

// loadCached returns the disk-cached leaf for name when it is fresh,
// signed by this CA and for exactly name; nil otherwise (it is then
// re-issued and overwritten).
func (i *Issuer) loadCached(name string, now time.Time) *tls.Certificate {
	data, err := os.ReadFile(filepath.Join(i.opts.CacheDir, fileName(name)))
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			i.warn(fmt.Errorf("tlsca: leaf cache: %w", err))
		}
		return nil
	}
	c, err := tls.X509KeyPair(data, data)
	if err != nil || c.Leaf == nil {
		return nil
	}
	if !fresh(c.Leaf, now) || c.Leaf.CheckSignatureFrom(i.ca.Cert) != nil || !holdsExactly(c.Leaf, name) {
		return nil
	}
	return &c
}

// holdsExactly reports whether leaf names name and nothing else.
func holdsExactly(leaf *x509.Certificate, name string) bool {
	if ip := net.ParseIP(name); ip != nil {
		return len(leaf.DNSNames) == 0 && len(leaf.IPAddresses) == 1 && leaf.IPAddresses[0].Equal(ip) &&
			len(leaf.EmailAddresses) == 0 && len(leaf.URIs) == 0
	}
	return len(leaf.DNSNames) == 1 && leaf.DNSNames[0] == name && len(leaf.IPAddresses) == 0 &&
		len(leaf.EmailAddresses) == 0 && len(leaf.URIs) == 0
}

// issue signs a new leaf for name and writes it to the disk cache.
func (i *Issuer) issue(name string, now time.Time) (*tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("tlsca: generating a key for %s: %w", name, err)
	}
	start := now.Add(-time.Hour) // some slack for clocks that disagree
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject: pkix.Name{
			Organization:       []string{"siteplex development certificate"},
			OrganizationalUnit: i.ca.Cert.Subject.OrganizationalUnit,
		},
		NotBefore:   start,
		NotAfter:    start.Add(LeafValidity),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if ip := net.ParseIP(name); ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
	} else {
		tmpl.DNSNames = []string{name}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, i.ca.Cert, key.Public(), i.ca.key)
	if err != nil {
		return nil, fmt.Errorf("tlsca: signing a certificate for %s: %w", name, err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	if err := i.opts.Owner.MkdirAll(i.opts.CacheDir); err != nil {
		i.warn(fmt.Errorf("tlsca: leaf cache: %w", err))
	} else {
		data := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
		data = append(data, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})...)
		if err := writeFile(filepath.Join(i.opts.CacheDir, fileName(name)), data, 0o600, i.opts.Owner, false); err != nil {
			i.warn(fmt.Errorf("tlsca: leaf cache: %w", err))
		}
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// loopbackLocalAddr is the loopback address c was accepted on, "" when it
// is not loopback (or c is nil).
func loopbackLocalAddr(c net.Conn) string {
	if c == nil {
		return ""
	}
	a, ok := c.LocalAddr().(*net.TCPAddr)
	if !ok || !a.IP.IsLoopback() {
		return ""
	}
	return a.IP.String()
}
