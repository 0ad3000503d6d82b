package tlsca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Files in CAROOT.
const (
	CertFile = "rootCA.pem"
	KeyFile  = "rootCA-key.pem"
	// LeafDir holds the disk cache of issued leaves, one PEM file (the
	// certificate and its key, 0600) per name.
	LeafDir = "leaves"
)

// CAValidity is how long a new CA is valid.
const CAValidity = 10 * 365 * 24 * time.Hour

// BaseDomain is the DNS subtree every siteplex CA may sign: localhost and
// every name under .localhost (RFC 6761), which only ever mean this
// machine.
const BaseDomain = "localhost"

// loopbackNets are the IP ranges every siteplex CA may sign.
var loopbackNets = [...]string{"127.0.0.0/8", "::1/128"}

// CA is a loaded local CA. Its fields are read-only.
type CA struct {
	// Dir is the CAROOT it was loaded from.
	Dir  string
	Cert *x509.Certificate
	// CertPEM is rootCA.pem as it is on disk.
	CertPEM []byte
	key     crypto.Signer
}

// ErrNoCA is wrapped by Load when CAROOT holds no CA yet; errors.Is(err,
// fs.ErrNotExist) is true for it too.
var ErrNoCA = fmt.Errorf("no local CA: run `siteplex trust` to create it: %w", fs.ErrNotExist)

// Load reads the CA in dir and checks it: both files parse, the key is the
// certificate's, and the certificate is a CA. A missing rootCA.pem gives an
// error wrapping ErrNoCA.
func Load(dir string) (*CA, error) {
	certPEM, err := os.ReadFile(filepath.Join(dir, CertFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("tlsca: %s: %w", dir, ErrNoCA)
	}
	if err != nil {
		return nil, fmt.Errorf("tlsca: reading the CA certificate: %w", err)
	}
	cert, err := parseCertPEM(certPEM)
	if err != nil {
		return nil, fmt.Errorf("tlsca: %s: %w", filepath.Join(dir, CertFile), err)
	}
	if !cert.IsCA {
		return nil, fmt.Errorf("tlsca: %s is not a CA certificate", filepath.Join(dir, CertFile))
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, KeyFile))
	if err != nil {
		return nil, fmt.Errorf("tlsca: reading the CA key: %w (the CA cannot sign without it: run `siteplex untrust --delete` and `siteplex trust` to make a new one)", err)
	}
	key, err := parseKeyPEM(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("tlsca: %s: %w", filepath.Join(dir, KeyFile), err)
	}
	if !publicKeyEqual(key.Public(), cert.PublicKey) {
		return nil, fmt.Errorf("tlsca: %s does not belong to %s (run `siteplex untrust --delete` and `siteplex trust` to make a new CA)", KeyFile, CertFile)
	}
	return &CA{Dir: dir, Cert: cert, CertPEM: certPEM, key: key}, nil
}

// EnsureOptions are the inputs of Ensure.
type EnsureOptions struct {
	// Domains are DNS subtrees the CA must be able to sign besides
	// localhost (a site's real domain, say). Each must pass CheckDomain.
	Domains []string
	// Label names the CA's owner in its subject ("alice@laptop"), so that
	// people can tell CAs apart in a certificate viewer.
	Label string
	// Owner receives the files and folders created (nil: the process).
	Owner *Owner
	// Now is the creation time; zero means time.Now().
	Now time.Time
}

// EnsureResult says what Ensure did.
type EnsureResult int

const (
	// Existing: the CA in CAROOT already covered what was asked.
	Existing EnsureResult = iota
	// Created: there was no CA; a new one was made.
	Created
	// Replaced: the CA did not cover every domain asked for; a new one,
	// permitted the old names plus the new ones, took its place. The old
	// one stays trusted wherever it was installed until the stores are
	// updated (`siteplex trust` does that right after).
	Replaced
)

func (r EnsureResult) String() string {
	switch r {
	case Created:
		return "created"
	case Replaced:
		return "replaced"
	}
	return "existing"
}

// Ensure returns the CA in dir, creating it (and dir, 0700) when there is
// none, or replacing it when it may not sign one of opts.Domains. It holds
// a lock on dir meanwhile, so concurrent runs agree on one CA. A CA that
// fails to load (a corrupt file, a key that does not match) is an error,
// never silently overwritten.
func Ensure(dir string, opts EnsureOptions) (*CA, EnsureResult, error) {
	for _, d := range opts.Domains {
		if err := CheckDomain(d); err != nil {
			return nil, Existing, err
		}
	}
	if err := opts.Owner.MkdirAll(dir); err != nil {
		return nil, Existing, fmt.Errorf("tlsca: creating %s: %w", dir, err)
	}
	unlock, err := lockDir(dir, opts.Owner)
	if err != nil {
		return nil, Existing, fmt.Errorf("tlsca: %w", err)
	}
	defer unlock()
	ca, err := Load(dir)
	result := Created
	domains := opts.Domains
	switch {
	case err == nil:
		var missing []string
		for _, d := range opts.Domains {
			if !ca.Permits(strings.ToLower(d)) {
				missing = append(missing, d)
			}
		}
		if len(missing) == 0 {
			return ca, Existing, nil
		}
		result = Replaced
		domains = append(ca.Domains(), missing...)
	case errors.Is(err, ErrNoCA):
	default:
		return nil, Existing, err
	}
	ca, err = create(dir, domains, opts)
	if err != nil {
		return nil, Existing, err
	}
	// Leaves of an older CA would only fail their signature check.
	os.RemoveAll(filepath.Join(dir, LeafDir))
	return ca, result, nil
}

func create(dir string, domains []string, opts EnsureOptions) (*CA, error) {
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("tlsca: generating the CA key: %w", err)
	}
	permitted := []string{BaseDomain}
	for _, d := range domains {
		d = strings.ToLower(strings.TrimSuffix(d, "."))
		if !slices.Contains(permitted, d) {
			permitted = append(permitted, d)
		}
	}
	var ipNets []*net.IPNet
	for _, c := range loopbackNets {
		_, n, _ := net.ParseCIDR(c)
		ipNets = append(ipNets, n)
	}
	label := opts.Label
	if label == "" {
		label = "siteplex"
	}
	spki, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return nil, err
	}
	ski := sha256.Sum256(spki)
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject: pkix.Name{
			Organization:       []string{"siteplex local CA"},
			OrganizationalUnit: []string{label},
			CommonName:         "siteplex local CA " + label,
		},
		SubjectKeyId:          ski[:20],
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(-time.Hour).Add(CAValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
		// Critical, as RFC 5280 asks: a verifier that does not understand
		// the constraints must reject the CA instead of ignoring them.
		PermittedDNSDomainsCritical: true,
		PermittedDNSDomains:         permitted,
		PermittedIPRanges:           ipNets,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("tlsca: creating the CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	// The key first: a certificate on disk always has its key.
	if err := writeFile(filepath.Join(dir, KeyFile), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600, opts.Owner, true); err != nil {
		return nil, fmt.Errorf("tlsca: writing the CA key: %w", err)
	}
	if err := writeFile(filepath.Join(dir, CertFile), certPEM, 0o644, opts.Owner, true); err != nil {
		return nil, fmt.Errorf("tlsca: writing the CA certificate: %w", err)
	}
	return &CA{Dir: dir, Cert: cert, CertPEM: certPEM, key: key}, nil
}

// Remove deletes the CA in dir: its key, certificate, leaf cache and lock
// file, then dir itself when nothing else is left in it. A missing CA is
// not an error. Files in dir that siteplex did not create are kept.
func Remove(dir string) error {
	var errs []error
	for _, name := range []string{KeyFile, CertFile, ".lock"} {
		if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if err := os.RemoveAll(filepath.Join(dir, LeafDir)); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("tlsca: removing the CA: %w", err)
	}
	if err := os.Remove(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		if entries, _ := os.ReadDir(dir); len(entries) == 0 {
			return fmt.Errorf("tlsca: %w", err)
		}
	}
	return nil
}

// Fingerprint is the SHA-256 of the CA certificate, in hex.
func (ca *CA) Fingerprint() string {
	sum := sha256.Sum256(ca.Cert.Raw)
	return hex.EncodeToString(sum[:])
}

// Domains are the DNS subtrees the CA may sign besides localhost.
func (ca *CA) Domains() []string {
	var out []string
	for _, d := range ca.Cert.PermittedDNSDomains {
		if d != BaseDomain {
			out = append(out, d)
		}
	}
	return out
}

// Scope lists what the CA may sign, for people: "localhost",
// "*.localhost", "127.0.0.0/8", "::1", "example.gh", "*.example.gh"; or
// "any name" for a CA without name constraints (one siteplex did not
// make).
func (ca *CA) Scope() []string {
	c := ca.Cert
	if len(c.PermittedDNSDomains) == 0 && len(c.PermittedIPRanges) == 0 {
		return []string{"any name"}
	}
	var parts []string
	for _, d := range c.PermittedDNSDomains {
		if strings.HasPrefix(d, ".") {
			parts = append(parts, "*"+d)
		} else {
			parts = append(parts, d, "*."+d)
		}
	}
	for _, n := range c.PermittedIPRanges {
		if ones, bits := n.Mask.Size(); ones == bits {
			parts = append(parts, n.IP.String())
		} else {
			parts = append(parts, n.String())
		}
	}
	return parts
}

// Permits reports whether the CA's name constraints allow a leaf for name
// (a lower-case host name or an IP address), by the rules of RFC 5280
// §4.2.1.10 that browsers apply: a DNS constraint "d" covers d and every
// name under it, ".d" only names under it.
func (ca *CA) Permits(name string) bool {
	c := ca.Cert
	if ip := net.ParseIP(name); ip != nil {
		for _, n := range c.ExcludedIPRanges {
			if n.Contains(ip) {
				return false
			}
		}
		if len(c.PermittedIPRanges) == 0 {
			return true
		}
		for _, n := range c.PermittedIPRanges {
			if n.Contains(ip) {
				return true
			}
		}
		return false
	}
	for _, d := range c.ExcludedDNSDomains {
		if matchDomain(name, d) {
			return false
		}
	}
	if len(c.PermittedDNSDomains) == 0 {
		return true
	}
	for _, d := range c.PermittedDNSDomains {
		if matchDomain(name, d) {
			return true
		}
	}
	return false
}

func matchDomain(name, constraint string) bool {
	constraint = strings.ToLower(constraint)
	if constraint == "" {
		return true
	}
	if strings.HasPrefix(constraint, ".") {
		return strings.HasSuffix(name, constraint)
	}
	return name == constraint || strings.HasSuffix(name, "."+constraint)
}

// specialUse are the single-label names --domain may name: reserved for
// local or test use (RFC 2606, RFC 6761, RFC 6762, ICANN's .internal), so
// no public site lives under them.
var specialUse = [...]string{"localhost", "test", "example", "invalid", "local", "internal"}

// CheckDomain validates a domain for EnsureOptions.Domains: a host name of
// at least two labels (a whole public top-level domain would let the CA
// sign every site under it), or one of the special-use names localhost,
// test, example, invalid, local, internal.
func CheckDomain(d string) error {
	d = strings.ToLower(strings.TrimSuffix(d, "."))
	if !validHostname(d) {
		return fmt.Errorf("tlsca: --domain %q is not a host name", d)
	}
	if !strings.Contains(d, ".") && !slices.Contains(specialUse[:], d) {
		return fmt.Errorf("tlsca: --domain %q is a whole top-level domain: the CA could then sign any site under it; name the site's domain (example.%s) instead", d, d)
	}
	return nil
}

func randomSerial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand does not fail on supported systems
	}
	return n.Add(n, big.NewInt(1))
}

func parseCertPEM(data []byte) (*x509.Certificate, error) {
	b, _ := pem.Decode(data)
	if b == nil || b.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM CERTIFICATE block")
	}
	return x509.ParseCertificate(b.Bytes)
}

func parseKeyPEM(data []byte) (crypto.Signer, error) {
	b, _ := pem.Decode(data)
	if b == nil {
		return nil, errors.New("no PEM block")
	}
	var (
		k   any
		err error
	)
	switch b.Type {
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(b.Bytes)
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(b.Bytes)
	default:
		return nil, fmt.Errorf("unexpected PEM block %q", b.Type)
	}
	if err != nil {
		return nil, err
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("unsupported key type %T", k)
	}
	return s, nil
}

func publicKeyEqual(a, b crypto.PublicKey) bool {
	ea, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && ea.Equal(b)
}
