package sites

import (
	"strings"
)

// Wildcard aliases of django-multisite (docs/sites.md, "Wildcard
// aliases"): a multisite_alias whose first label is "*" ("*.shop.example",
// "*.shop.example:8000", "*"). They stay in Aliases, are never written to
// a hosts file (hosts files have no wildcards) and are routed by matching.

// IsWildcard reports whether an alias is a wildcard pattern: its first
// label is "*".
func IsWildcard(alias string) bool {
	return alias == "*" || strings.HasPrefix(alias, "*.") || strings.HasPrefix(alias, "*:")
}

// UnroutedWildcard reports whether siteplex never routes the wildcard
// alias: "*" and "*:port" would route every name, foreign ones included,
// and a pattern with another "*" ("*.*.example") is not one
// django-multisite matches by suffix.
func UnroutedWildcard(alias string) bool {
	name, _ := splitWildcard(strings.ToLower(alias))
	suffix, ok := strings.CutPrefix(strings.TrimSuffix(name, "."), "*.")
	return !ok || suffix == "" || strings.Contains(suffix, "*")
}

// Wildcards returns the site's wildcard aliases, in Aliases' order.
func (s *Site) Wildcards() []string {
	var out []string
	for _, a := range s.Aliases {
		if IsWildcard(a) {
			out = append(out, a)
		}
	}
	return out
}

// MatchesWildcard reports whether host (a Host header: a name with an
// optional :port) matches one of the site's wildcard aliases the way
// django-multisite resolves them.
func (s *Site) MatchesWildcard(host string) bool {
	for _, a := range s.Aliases {
		if IsWildcard(a) {
			if _, ok := WildcardRank(a, host); ok {
				return true
			}
		}
	}
	return false
}

// WildcardRank matches host against one wildcard pattern as
// django-multisite does (docs/sites.md, "Wildcard aliases"): only a leading
// "*" label, matching any number of labels but not the apex
// ("*.acme.example" matches x.acme.example and a.b.acme.example, not
// acme.example); "*" matches every host, IP addresses included, which are
// never split into labels; a pattern with a :port matches only a host
// carrying that port, one without matches any port. Names compare
// case-insensitively, a trailing dot ignored.
//
// The rank orders matches the way django-multisite prefers them: lower is
// more specific (more literal labels first; at equal labels a pattern
// with the port before one without). Exact names always beat wildcards:
// the router checks them first.
func WildcardRank(pattern, host string) (rank int, ok bool) {
	pname, pport := splitWildcard(strings.ToLower(pattern))
	hname, hport := splitWildcard(strings.ToLower(host))
	hname = strings.TrimSuffix(hname, ".")
	pname = strings.TrimSuffix(pname, ".")
	if pport != "" && pport != hport {
		return 0, false
	}
	portBonus := 1
	if pport != "" {
		portBonus = 0
	}
	if pname == "*" {
		return 2*1000 + portBonus, hname != ""
	}
	suffix, ok := strings.CutPrefix(pname, "*.")
	if !ok || suffix == "" || strings.Contains(suffix, "*") || isIPv4(hname) {
		return 0, false
	}
	if !strings.HasSuffix(hname, "."+suffix) || len(hname) == len(suffix)+1 {
		return 0, false
	}
	labels := strings.Count(suffix, ".") + 1
	return 2*(1000-min(labels, 999)) + portBonus, true
}

// BestWildcard returns the usable site whose wildcard alias matches host
// best (see WildcardRank), and that alias; nil when none matches. On a tie
// the lower site id wins.
func BestWildcard(list []Site, host string) (*Site, string) {
	var best *Site
	bestAlias, bestRank := "", 0
	for i := range list {
		s := &list[i]
		if !s.Usable() {
			continue
		}
		for _, a := range s.Aliases {
			if !IsWildcard(a) {
				continue
			}
			r, ok := WildcardRank(a, host)
			if ok && (best == nil || r < bestRank || r == bestRank && s.ID < best.ID) {
				best, bestAlias, bestRank = s, a, r
			}
		}
	}
	return best, bestAlias
}

// splitWildcard splits "name:port" (an IPv6 literal in brackets keeps
// its colons).
func splitWildcard(h string) (name, port string) {
	if strings.HasPrefix(h, "[") {
		if end := strings.IndexByte(h, ']'); end >= 0 {
			name, rest := h[:end+1], h[end+1:]
			return name, strings.TrimPrefix(rest, ":")
		}
		return h, ""
	}
	if i := strings.LastIndexByte(h, ':'); i >= 0 && !strings.Contains(h[:i], ":") {
		return h[:i], h[i+1:]
	}
	return h, ""
}

func isIPv4(h string) bool {
	parts := strings.Split(h, ".")
	if len(parts) != 4 {
		return false
	}
	for _, p := range parts {
		if p == "" || len(p) > 3 || strings.Trim(p, "0123456789") != "" {
			return false
		}
	}
	return true
}
