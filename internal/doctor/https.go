package doctor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/siteplex/siteplex/internal/tlsca"
	"github.com/siteplex/siteplex/internal/truststore"
)

// Names of the HTTPS checks (docs/https.md), part of the --json contract.
const (
	NameHTTPSCA       = "https_ca"
	NameHTTPSCAExpiry = "https_ca_expiry"
	NameHTTPSTrust    = "https_trust"
)

// CAExpiryWarning is how long before the CA's expiry doctor starts to warn.
const CAExpiryWarning = 90 * 24 * time.Hour

// HTTPSCA loads the local CA in caroot. No CA is fine — HTTPS is off until
// `siteplex trust` — and so is an ok check; a CA that does not load
// (corrupt files, a key that is not the certificate's) fails, and a key
// file others may read warns. It returns the CA for the checks below (nil
// when there is none).
func HTTPSCA(caroot string) (Check, *tlsca.CA) {
	ca, err := tlsca.Load(caroot)
	if errors.Is(err, tlsca.ErrNoCA) {
		return ok(NameHTTPSCA, "no local CA in "+caroot+": HTTPS is off (`siteplex trust` creates the CA and turns it on)"), nil
	}
	if err != nil {
		return bad(NameHTTPSCA, Fail, err.Error(),
			"make a new CA: siteplex untrust --delete && siteplex trust"), nil
	}
	detail := fmt.Sprintf("%s: signs only %s; SHA-256 %s…", caroot, strings.Join(ca.Scope(), ", "), ca.Fingerprint()[:16])
	keyFile := filepath.Join(caroot, tlsca.KeyFile)
	if st, err := os.Stat(keyFile); err == nil && st.Mode().Perm()&0o077 != 0 {
		return bad(NameHTTPSCA, Warn, fmt.Sprintf("%s; %s is readable by others (mode %s)", detail, keyFile, st.Mode().Perm()),
			"chmod 600 "+keyFile+" (whoever reads the key can make certificates your browsers trust for the names above)"), ca
	}
	return ok(NameHTTPSCA, detail), ca
}

// HTTPSCAExpiry fails when the CA has expired (or is not valid yet) and
// warns within CAExpiryWarning of its end. nil ca: nothing to check.
func HTTPSCAExpiry(ca *tlsca.CA, now time.Time) Check {
	if ca == nil {
		return ok(NameHTTPSCAExpiry, "no local CA")
	}
	end := ca.Cert.NotAfter
	renew := "make a new CA: siteplex untrust --delete && siteplex trust"
	switch left := end.Sub(now); {
	case now.Before(ca.Cert.NotBefore):
		return bad(NameHTTPSCAExpiry, Fail, fmt.Sprintf("the CA is valid only from %s: is the clock right?", ca.Cert.NotBefore.Format(time.RFC3339)),
			"set the system clock")
	case left <= 0:
		return bad(NameHTTPSCAExpiry, Fail, fmt.Sprintf("the CA expired on %s: browsers reject every certificate it signs", end.Format("2006-01-02")), renew)
	case left < CAExpiryWarning:
		return bad(NameHTTPSCAExpiry, Warn, fmt.Sprintf("the CA expires on %s (in %d days)", end.Format("2006-01-02"), int(left.Hours()/24)), renew)
	default:
		return ok(NameHTTPSCAExpiry, fmt.Sprintf("valid until %s (%d days); leaf certificates last 30 days and are renewed by siteplex", end.Format("2006-01-02"), int(left.Hours()/24)))
	}
}

// HTTPSTrust says which stores trust the CA: the system store and each
// NSS database of u (Chromium, Firefox profiles). It is ok when at least
// one does and none holds a stale copy; it warns otherwise, with `siteplex
// trust` as the fix. nil ca: nothing to check.
func HTTPSTrust(ctx context.Context, ca *tlsca.CA, u tlsca.User) Check {
	if ca == nil {
		return ok(NameHTTPSTrust, "no local CA")
	}
	target := truststore.Target{Name: truststore.NameFor(ca.Dir, u), CertPEM: ca.CertPEM}
	var results []truststore.Result
	if st, err := truststore.DetectSystem(); err != nil {
		results = append(results, truststore.Result{Store: truststore.System, Status: truststore.Unsupported, Detail: err.Error()})
	} else {
		results = append(results, st.Status(target))
	}
	if !filepath.IsAbs(u.Home) {
		results = append(results, truststore.Result{Store: truststore.NSS, Status: truststore.Unsupported, Detail: "no home folder: browsers' databases not checked"})
	} else if dbs := truststore.NSSDatabases(u.Home); dbs != nil {
		if c, err := truststore.NewCertutil(u.Owner()); err != nil {
			results = append(results, truststore.Result{Store: truststore.NSS, Status: truststore.Unsupported, Detail: err.Error()})
		} else {
			for _, db := range dbs {
				if db.Exists {
					results = append(results, c.Status(ctx, db, target))
				}
			}
		}
	}
	trusted, stale := 0, 0
	var parts []string
	for _, r := range results {
		switch r.Status {
		case truststore.Trusted:
			trusted++
		case truststore.Stale, truststore.Failed:
			stale++
		}
		where := r.Store
		if r.Store == truststore.NSS && r.Location != "" {
			where = r.Detail // "Chromium/Chrome", "Firefox profile x"
			if i := strings.Index(where, ";"); i >= 0 {
				where = where[:i]
			}
		}
		p := where + ": " + r.Status
		if r.Status != truststore.Trusted && r.Status != truststore.Absent && r.Detail != "" && r.Store == truststore.System {
			p += " (" + r.Detail + ")"
		}
		parts = append(parts, p)
	}
	detail := strings.Join(parts, "; ")
	switch {
	case stale > 0:
		return bad(NameHTTPSTrust, Warn, detail, "run siteplex trust to bring every store up to date")
	case trusted == 0:
		return bad(NameHTTPSTrust, Warn, "no store trusts the CA, so browsers show a certificate warning: "+detail,
			"run siteplex trust (system store and browsers) or siteplex trust --store nss (browsers only)")
	}
	return ok(NameHTTPSTrust, detail)
}
