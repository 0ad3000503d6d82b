package tlsca

import (
	"net"
	"strings"
)

// maxHostname is the longest DNS name (RFC 1035), without the final dot.
const maxHostname = 253

// normalize lower-cases a TLS server name and drops one final dot. It
// returns "" for a name that is neither a host name nor an IP address, so
// that nothing odd ever reaches a file name or a certificate.
func normalize(name string) string {
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	if ip := net.ParseIP(name); ip != nil {
		return ip.String()
	}
	if !validHostname(name) {
		return ""
	}
	return name
}

// validHostname reports whether h is a lower-case DNS name: labels of 1-63
// letters, digits, hyphens (underscores too, which some local set-ups use),
// at most 253 characters. A name with a "*" is never valid: siteplex issues
// no wildcards.
func validHostname(h string) bool {
	if h == "" || len(h) > maxHostname {
		return false
	}
	for label := range strings.SplitSeq(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// fileName is the leaf cache file for a normalized name: the name itself
// for host names, "ip-" and the address with ':' as '-' for IPs.
func fileName(name string) string {
	if strings.Contains(name, ":") || net.ParseIP(name) != nil {
		return "ip-" + strings.ReplaceAll(name, ":", "-") + ".pem"
	}
	return name + ".pem"
}
