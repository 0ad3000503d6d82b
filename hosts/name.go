package hosts

import (
	"strings"

	"github.com/siteplex/siteplex/sites"
)

// Hostname normalises and validates a name with sites.Hostname (":port"
// stripped, lower-cased, IDNA, RFC 1123, at most 253 characters). A name
// that is already a lower-case letters-digits-hyphens hostname is its own
// normal form and is checked without the IDNA machinery, which keeps a
// 10,000-site block fast.
func Hostname(name string) (string, error) {
	if isLDH(name) {
		return name, nil
	}
	return sites.Hostname(name)
}

// isLDH reports whether h is a lower-case RFC 1123 hostname: labels of 1-63
// of [a-z0-9-], not starting or ending with '-', at most 253 characters,
// and no "xn--" label (those need IDNA's punycode check).
func isLDH(h string) bool {
	if len(h) == 0 || len(h) > sites.MaxHostnameLen {
		return false
	}
	start := 0
	for i := 0; i <= len(h); i++ {
		if i < len(h) && h[i] != '.' {
			c := h[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
			continue
		}
		label := h[start:i]
		if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' ||
			strings.HasPrefix(label, "xn--") {
			return false
		}
		start = i + 1
	}
	return true
}
