package devproxy

// Host rewriting (docs/engine.md, "Host rewriting"; the frameworks'
// rules are in docs/django.md, "How a request reaches its site"). For
// frameworks that pick the site from the Host alone (django-multisite,
// Wagtail, django-tenants, django-pgschemas, Mezzanine's host lookup), a
// request on a name the framework does not know — a local name, localhost
// with a forced site, the cookie override — goes upstream with the site's
// canonical host. The answer's Location and Set-Cookie Domain are mapped
// back to the name the browser used, and a same-origin Origin and Referer
// go upstream on the canonical origin so Django's CSRF checks pass.

import (
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"

	"github.com/siteplex/siteplex/sites"
	"github.com/siteplex/siteplex/sites/django"
)

// RewriteHost is the rewrite_host setting: auto, always or never.
type RewriteHost string

const (
	// RewriteAuto rewrites for the sites whose framework resolves the site
	// from the Host (the default).
	RewriteAuto RewriteHost = "auto"
	// RewriteAlways rewrites the local names of every site.
	RewriteAlways RewriteHost = "always"
	// RewriteNever sends the browser's Host to every process.
	RewriteNever RewriteHost = "never"
)

// ParseRewriteHost checks a rewrite_host value ("" is auto).
func ParseRewriteHost(v string) (RewriteHost, error) {
	switch RewriteHost(strings.ToLower(strings.TrimSpace(v))) {
	case "", RewriteAuto:
		return RewriteAuto, nil
	case RewriteAlways:
		return RewriteAlways, nil
	case RewriteNever:
		return RewriteNever, nil
	}
	return "", sites.Usagef("unknown rewrite_host %q: use auto, always or never", v)
}

// hostFromHost reports whether the site's framework picks the site from
// the Host header alone, so that siteplex's local names reach the wrong
// site (or none) unless the Host is rewritten: Wagtail, django-tenants
// and django-pgschemas sites, and django_site sites of a project with
// django-multisite or Mezzanine (info nil: not known).
func hostFromHost(s *sites.Site, info *django.Info) bool {
	switch s.Source {
	case sites.SourceWagtail, sites.SourceTenants, sites.SourcePGSchemas:
		return true
	}
	return info != nil && (info.Frameworks.Multisite || info.Frameworks.Mezzanine)
}

// canonicalHost is the Host a site's framework knows it by, lower-cased:
// a django-multisite canonical alias, else the domain (Wagtail's
// hostname[:port], a tenant's primary domain). "" when it is no valid
// Host.
func canonicalHost(s *sites.Site) string {
	h := s.Domain
	if s.CanonicalAlias != "" && !sites.IsWildcard(s.CanonicalAlias) {
		h = s.CanonicalAlias
	}
	h = strings.ToLower(strings.TrimSpace(h))
	if !validHost(h) {
		return ""
	}
	return h
}

// upstreamFor decides the canonical host sent for s's local names under
// policy ("" = none).
func upstreamFor(policy RewriteHost, s *sites.Site, info *django.Info) string {
	switch policy {
	case RewriteNever:
		return ""
	case RewriteAlways:
	default:
		if !hostFromHost(s, info) {
			return ""
		}
	}
	return canonicalHost(s)
}

// rewriteUpstream sends the canonical host instead of the browser's, and
// a same-origin Origin and Referer on the canonical origin (Django ≥ 4
// compares Origin with the Host it sees). X-Forwarded-Host keeps the
// browser's Host (SetXForwarded has set it).
func rewriteUpstream(pr *httputil.ProxyRequest, canon string) {
	pr.Out.Host = canon
	h := pr.Out.Header
	if o := h["Origin"]; len(o) == 1 {
		if u, err := url.Parse(o[0]); err == nil && u.Host != "" && strings.EqualFold(u.Host, pr.In.Host) && u.Path == "" {
			h["Origin"] = []string{u.Scheme + "://" + canon}
		}
	}
	if r := h["Referer"]; len(r) == 1 {
		if u, err := url.Parse(r[0]); err == nil && strings.EqualFold(u.Host, pr.In.Host) {
			u.Host = canon
			h["Referer"] = []string{u.String()}
		}
	}
}

// rewriteAnswer maps an answer's Location and Set-Cookie Domain from the
// canonical host back to the name the browser used (browserHost, the
// Host it sent, port included; tls: it came over TLS). localDomain is the
// site's local domain: a cookie for the canonical domain becomes one for
// the local domain when the browser is on it or a subdomain of it (so its
// subdomains share it, as the real domain's did), and host-only otherwise
// (localhost, an IP: RFC 6265 §5.3 step 6 would drop a Domain that does
// not domain-match the host).
func rewriteAnswer(h http.Header, canon, browserHost, localDomain string, tls bool) {
	canonName, _ := splitHostPort(canon)
	if loc := h["Location"]; len(loc) == 1 {
		if v, ok := rewriteLocation(loc[0], canonName, browserHost, tls); ok {
			h["Location"] = []string{v}
		}
	}
	cookies := h["Set-Cookie"]
	if len(cookies) == 0 {
		return
	}
	browserName, _ := splitHostPort(strings.ToLower(browserHost))
	domain := ""
	if localDomain != "" && (browserName == localDomain || strings.HasSuffix(browserName, "."+localDomain)) {
		domain = localDomain
	}
	var out []string
	for i, c := range cookies {
		if v, ok := rewriteCookieDomain(c, canonName, domain); ok {
			if out == nil {
				out = append([]string(nil), cookies...)
			}
			out[i] = v
		}
	}
	if out != nil {
		h["Set-Cookie"] = out
	}
}

// rewriteLocation maps an absolute (or scheme-relative, as
// django-pgschemas' redirect_to_primary sends) Location on the canonical
// host to the browser's host and scheme. Relative ones and other hosts
// are left alone.
func rewriteLocation(loc, canonName, browserHost string, tls bool) (string, bool) {
	u, err := url.Parse(loc)
	if err != nil || u.Host == "" || u.Opaque != "" || u.User != nil {
		return "", false
	}
	if u.Scheme != "" && u.Scheme != "http" && u.Scheme != "https" {
		return "", false
	}
	name, _ := splitHostPort(strings.ToLower(u.Host))
	if strings.TrimSuffix(name, ".") != canonName {
		return "", false
	}
	u.Host = browserHost
	if u.Scheme != "" {
		u.Scheme = "http"
		if tls {
			u.Scheme = "https"
		}
	}
	return u.String(), true
}

// rewriteCookieDomain rewrites the Domain attribute of one Set-Cookie
// value when it domain-matches the canonical host (RFC 6265 §5.1.3: the
// host is the domain or a subdomain of it): to domain, or dropped when
// domain is "". The attributes are split as RFC 6265 §5.2 says (on ";",
// the name up to "="); everything else is kept byte for byte.
func rewriteCookieDomain(c, canonName, domain string) (string, bool) {
	parts := strings.Split(c, ";")
	changed := false
	kept := []string{parts[0]}
	for _, p := range parts[1:] {
		name, val, _ := strings.Cut(p, "=")
		if !strings.EqualFold(strings.TrimSpace(name), "domain") {
			kept = append(kept, p)
			continue
		}
		d := strings.ToLower(strings.TrimPrefix(strings.TrimSpace(val), "."))
		if d == "" || (canonName != d && !strings.HasSuffix(canonName, "."+d)) {
			kept = append(kept, p)
			continue
		}
		changed = true
		if domain != "" {
			kept = append(kept, " Domain="+domain)
		}
	}
	if !changed {
		return "", false
	}
	return strings.Join(kept, ";"), true
}
