// Package truststore installs siteplex's local CA certificate into the
// places browsers and tools look for trusted roots, removes it again, and
// says where it is trusted: the system store (Debian/Ubuntu
// update-ca-certificates, Fedora update-ca-trust, Arch's p11-kit trust)
// and the NSS databases Chromium and Firefox read on Linux (through
// certutil). It runs only when the user runs `siteplex trust`, `siteplex
// untrust` or `siteplex doctor`; it never changes anything it did not put
// there. docs/https.md lists every file touched.
//
// Whether a store needs root is the caller's business: the system store
// functions simply fail without permission, and Privileged tells first.
package truststore

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"os"
	"strings"

	"github.com/siteplex/siteplex/internal/tlsca"
)

// Stores, as --store and the JSON name them.
const (
	System = "system"
	NSS    = "nss"
)

// Statuses of a Result.
const (
	// Installed: this run added the CA.
	Installed = "installed"
	// Already: the CA was there, nothing changed.
	Already = "already"
	// Removed: this run took the CA out.
	Removed = "removed"
	// Absent: the CA is not there (status, or nothing to remove).
	Absent = "absent"
	// Trusted: status found the CA there and in effect.
	Trusted = "trusted"
	// Stale: the store holds an older certificate under this CA's name
	// (the CA was replaced since): run `siteplex trust` again.
	Stale = "stale"
	// NeedsRoot: the caller must run Command as root.
	NeedsRoot = "needs_root"
	// Unsupported: siteplex cannot do it on this system; Detail says
	// why, Command what to run by hand when there is a way.
	Unsupported = "unsupported"
	// Failed: it went wrong; Detail says how.
	Failed = "error"
)

// Result is what happened to one store (one NSS database, or the system
// store). The JSON field names are part of `siteplex trust --json`.
type Result struct {
	Store    string `json:"store"`
	Location string `json:"location"`
	Status   string `json:"status"`
	Detail   string `json:"detail,omitempty"`
	Command  string `json:"command,omitempty"`
}

// OK reports whether the result leaves the CA where it was asked to be
// (or gone, for a removal).
func (r Result) OK() bool {
	switch r.Status {
	case Installed, Already, Removed, Absent, Trusted:
		return true
	}
	return false
}

// Target is the CA certificate as the stores know it.
type Target struct {
	// Name is the system file's base name and the NSS nickname
	// (NameFor). It depends only on the user and the CAROOT, so that a
	// replaced CA takes its predecessor's place and removal works even
	// when the CA files are gone.
	Name string
	// CertPEM is rootCA.pem. Removal and status need only Name, though
	// status can then not tell "trusted" from "stale".
	CertPEM []byte
}

// NameFor is the name of the CA in CAROOT caroot of user u in the stores:
// "siteplex-<user>-<first 8 hex digits of the SHA-256 of caroot>".
func NameFor(caroot string, u tlsca.User) string {
	sum := sha256.Sum256([]byte(caroot))
	var b strings.Builder
	for _, r := range strings.ToLower(u.Name) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			b.WriteRune(r)
		}
	}
	user := b.String()
	if user == "" {
		user = "user"
	}
	return "siteplex-" + user + "-" + hex.EncodeToString(sum[:4])
}

// Privileged reports whether this process may change the system store
// (it is root).
func Privileged() bool { return os.Geteuid() == 0 }

// der returns the DER bytes of the first certificate in a PEM blob (or
// the blob itself when it is not PEM).
func der(b []byte) []byte {
	if p, _ := pem.Decode(b); p != nil {
		return p.Bytes
	}
	return b
}

// containsCert reports whether PEM data holds a certificate equal to cert
// (DER).
func containsCert(data, cert []byte) bool {
	for {
		var p *pem.Block
		p, data = pem.Decode(data)
		if p == nil {
			return false
		}
		if (p.Type == "CERTIFICATE" || p.Type == "TRUSTED CERTIFICATE") && bytes.HasPrefix(p.Bytes, cert) {
			return true
		}
	}
}

// firstLine is the first non-empty line of a command's output, for
// messages.
func firstLine(b []byte) string {
	for l := range strings.SplitSeq(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			return l
		}
	}
	return ""
}
