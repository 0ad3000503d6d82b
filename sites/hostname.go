package sites

import (
	"fmt"
	"net"
	"strings"

	"golang.org/x/net/idna"
)

// MaxHostnameLen is the longest hostname RFC 1123 allows.
const MaxHostnameLen = 253

// idnaProfile converts Unicode names to their ASCII (punycode) form without
// applying the stricter registration rules, so names such as "bücher.example"
// become "xn--bcher-kva.example". Validation is done by Hostname itself.
var idnaProfile = idna.New(idna.MapForLookup(), idna.Transitional(false), idna.StrictDomainName(false))

// StripPort removes a trailing ":port" from a host (and the brackets of an
// IPv6 literal). It leaves a name without a port untouched.
func StripPort(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		return h
	}
	if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		return host[1 : len(host)-1]
	}
	return host
}

// Hostname normalises a domain as found in django_site or multisite_alias
// into the name a resolver and the hosts file understand: a ":port" is
// stripped, the name is lower-cased and IDNA-encoded, a trailing dot is
// dropped. It returns an error saying what is wrong when the result is not an
// RFC 1123 hostname (labels of 1–63 letters, digits and inner hyphens; at most
// 253 characters; no whitespace, '#' or control characters).
func Hostname(domain string) (string, error) {
	if domain == "" {
		return "", fmt.Errorf("empty domain")
	}
	for _, r := range domain {
		switch {
		case r < 0x20 || r == 0x7f:
			return "", fmt.Errorf("domain %q contains a control character", domain)
		case r == ' ' || r == '\t':
			return "", fmt.Errorf("domain %q contains whitespace", domain)
		case r == '#':
			return "", fmt.Errorf("domain %q contains '#'", domain)
		}
	}
	h := domain
	if i := strings.LastIndexByte(h, ':'); i >= 0 && !strings.Contains(h[:i], ":") {
		port := h[i+1:]
		if port == "" || strings.Trim(port, "0123456789") != "" {
			return "", fmt.Errorf("domain %q has an invalid port", domain)
		}
		h = h[:i]
	}
	h = strings.TrimSuffix(h, ".")
	ascii := strings.ToLower(h)
	if !isASCII(ascii) {
		var err error
		if ascii, err = idnaProfile.ToASCII(ascii); err != nil {
			return "", fmt.Errorf("domain %q is not a valid hostname: %v", domain, err)
		}
	}
	if err := checkHostname(ascii); err != nil {
		return "", fmt.Errorf("domain %q is not a valid hostname: %w", domain, err)
	}
	return ascii, nil
}

func checkHostname(h string) error {
	if h == "" {
		return fmt.Errorf("empty name")
	}
	if len(h) > MaxHostnameLen {
		return fmt.Errorf("%d characters, more than %d", len(h), MaxHostnameLen)
	}
	if h[0] == '.' || h[len(h)-1] == '.' {
		return fmt.Errorf("empty label")
	}
	for rest := h; rest != ""; {
		label, after, _ := strings.Cut(rest, ".")
		rest = after
		if label == "" {
			return fmt.Errorf("empty label")
		}
		if len(label) > 63 {
			return fmt.Errorf("label %q is longer than 63 characters", label)
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("label %q starts or ends with a hyphen", label)
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return fmt.Errorf("label %q contains %q", label, c)
			}
		}
	}
	return nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
