package devproxy

import (
	"cmp"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"unsafe"

	"github.com/siteplex/siteplex/sites"
)

// routeKind says where a request goes.
type routeKind uint8

const (
	// toForeign: a host that is no site and no loopback name: a short 404
	// that links to the index, never the site list (DNS rebinding).
	toForeign routeKind = iota
	// toIndex: siteplex.localhost: the index page and the API.
	toIndex
	// toSite: a site's process.
	toSite
	// toLocal: localhost, 127.0.0.1 or [::1]: the cookie site, else the
	// forced site, else the index.
	toLocal
)

// IndexHost is the name that always reaches the index page and the API.
const IndexHost = "siteplex.localhost"

// cookieName is the cookie (and query parameter) that picks the site
// localhost serves for one browser (docs/engine.md, "Picking the site for
// localhost in one browser").
const cookieName = "siteplex-site"

// siteRoute is one routable site with its request counter, as reached
// by one kind of name: a site has one route for the names its framework
// knows (domain, aliases, real domain: the browser's Host goes upstream)
// and, when its Host is rewritten, another for siteplex's own names
// (local domain, its subdomains, localhost).
type siteRoute struct {
	site *sites.Site
	// requests counts the requests proxied to the site; it lives across
	// table rebuilds (shared by slug).
	requests *atomic.Int64
	// upstream is the Host sent to the process instead of the browser's,
	// "" to send the browser's own (docs/engine.md, "Host rewriting").
	upstream string
	// siteHeader is the value of django.HeaderSite for this site in
	// single mode with the overlay (nil: none is sent).
	siteHeader []string
	// local is the route of the site's local names: r itself when its
	// Host is not rewritten.
	local *siteRoute
}

// routeOpts are what the engine adds to the routing table: per site, the
// canonical host to send for its local names ("" = none) and whether
// single mode's site header goes with its requests.
type routeOpts struct {
	// upstream returns the canonical host for s's local names, or "".
	upstream func(s *sites.Site) string
	// siteHeader reports whether s's requests carry django.HeaderSite.
	siteHeader func(s *sites.Site) bool
}

// wildRoute is a wildcard alias in the routing table: its port ("" = any)
// and site.
type wildRoute struct {
	port  string
	route *siteRoute
}

// routeTable is an immutable snapshot of the routing rules, rebuilt on every
// reload and swapped in through an atomic pointer: lookups take no lock and
// allocate nothing.
type routeTable struct {
	// exact maps a lower-case hostname (no port) to its site, already in
	// precedence order: domains, then aliases, real domains, local domains.
	exact map[string]*siteRoute
	// wild maps a local domain to its site for "*.<local_domain>".
	wild map[string]*siteRoute
	// wildAlias maps the suffix of a wildcard alias ("shop.example" for
	// "*.shop.example") to its sites, those with a port first, then by
	// id (django-multisite's preference, sites.WildcardRank).
	wildAlias map[string][]wildRoute
	// unrouted are wildcard aliases that are not routed ("*": every
	// name), as "slug: alias".
	unrouted []string
	// bySlug and byID find a site for the cookie and the forced site.
	bySlug map[string]*siteRoute
	byID   map[int64]*siteRoute
	// all lists every site, routable or not, in id order (for the index).
	all []sites.Site
	// forced is the forced site id (0 = none) and forcedRoute its route.
	forced      int64
	forcedRoute *siteRoute
}

// buildTable makes a routing table from list. Sites that are disabled or
// have problems are listed but never routed. counters carries the request
// counters over from the previous table (by slug) and is updated in place.
func buildTable(list []sites.Site, forced int64, counters map[string]*atomic.Int64, opts routeOpts) *routeTable {
	t := &routeTable{
		exact:     make(map[string]*siteRoute, len(list)*4),
		wild:      make(map[string]*siteRoute, len(list)),
		wildAlias: map[string][]wildRoute{},
		bySlug:    make(map[string]*siteRoute, len(list)),
		byID:      make(map[int64]*siteRoute, len(list)),
		all:       append([]sites.Site(nil), list...),
		forced:    forced,
	}
	routes := make([]*siteRoute, 0, len(list))
	for i := range t.all {
		s := &t.all[i]
		if !s.Usable() || !s.Enabled || s.Slug == "" {
			continue
		}
		c := counters[s.Slug]
		if c == nil {
			c = new(atomic.Int64)
			counters[s.Slug] = c
		}
		r := &siteRoute{site: s, requests: c}
		if opts.siteHeader != nil && opts.siteHeader(s) {
			r.siteHeader = []string{strconv.FormatInt(s.ID, 10)}
		}
		r.local = r
		if opts.upstream != nil {
			if up := opts.upstream(s); up != "" {
				l := *r
				l.upstream, l.local = up, nil
				l.local = &l
				r.local = &l
			}
		}
		routes = append(routes, r)
		t.bySlug[s.Slug] = r.local
		t.byID[s.ID] = r.local
	}
	add := func(name string, r *siteRoute) {
		h, err := sites.Hostname(name)
		if err != nil || h == "" || isLocalName(h) || h == IndexHost {
			return
		}
		if _, taken := t.exact[h]; !taken {
			t.exact[h] = r
		}
	}
	for _, r := range routes {
		add(r.site.Domain, r)
	}
	for _, r := range routes {
		for _, a := range r.site.Aliases {
			add(a, r)
		}
	}
	for _, r := range routes {
		if r.site.RealDomain != nil {
			add(*r.site.RealDomain, r)
		}
	}
	for _, r := range routes {
		add(r.site.LocalDomain, r.local)
	}
	for _, r := range routes {
		if h, err := sites.Hostname(r.site.LocalDomain); err == nil && h != "" {
			if _, taken := t.wild[h]; !taken {
				t.wild[h] = r.local
			}
		}
	}
	for _, r := range routes {
		for _, a := range r.site.Aliases {
			if !sites.IsWildcard(a) {
				continue
			}
			if sites.UnroutedWildcard(a) {
				// "*" (and "*:port") would route every name, foreign ones
				// included: siteplex never forwards an unknown name.
				t.unrouted = append(t.unrouted, r.site.Slug+": "+a)
				continue
			}
			name, port := splitHostPort(strings.ToLower(a))
			suffix, _ := strings.CutPrefix(strings.TrimSuffix(name, "."), "*.")
			t.wildAlias[suffix] = append(t.wildAlias[suffix], wildRoute{port: port, route: r})
		}
	}
	for _, ws := range t.wildAlias {
		slices.SortStableFunc(ws, func(a, b wildRoute) int {
			return cmp.Compare(boolRank(a.port == ""), boolRank(b.port == ""))
		})
	}
	t.forcedRoute = t.byID[forced]
	return t
}

func boolRank(b bool) int {
	if b {
		return 1
	}
	return 0
}

// splitHostPort splits "name:port" ("[v6]:port" keeps its brackets);
// port is "" when there is none.
func splitHostPort(h string) (name, port string) {
	if strings.HasPrefix(h, "[") {
		if end := strings.IndexByte(h, ']'); end >= 0 {
			return h[:end+1], strings.TrimPrefix(h[end+1:], ":")
		}
		return h, ""
	}
	if i := strings.LastIndexByte(h, ':'); i >= 0 && strings.IndexByte(h[:i], ':') < 0 {
		return h[:i], h[i+1:]
	}
	return h, ""
}

// isLocalName reports whether h (lower-case, no port, no brackets) is one of
// the names that stand for "this machine": localhost, 127.0.0.1, ::1.
func isLocalName(h string) bool {
	return h == "localhost" || h == "127.0.0.1" || h == "::1"
}

// lookup finds where a request for host (the Host header as sent, already
// checked by validHost) goes. It does not allocate for hosts up to 255
// bytes.
func (t *routeTable) lookup(host string) (routeKind, *siteRoute) {
	var buf [256]byte
	h, ok := normHost(host, &buf)
	if !ok {
		return toForeign, nil
	}
	if r := t.exact[h]; r != nil {
		return toSite, r
	}
	if isLocalName(h) {
		return toLocal, nil
	}
	if h == IndexHost {
		return toIndex, nil
	}
	// *.<local_domain>: try every suffix after a dot.
	for i := 0; i < len(h); i++ {
		if h[i] == '.' {
			if r := t.wild[h[i+1:]]; r != nil {
				return toSite, r
			}
		}
	}
	// Wildcard aliases (django-multisite's "*.shop.example"): the longest
	// suffix first, so the pattern with the most literal labels wins.
	if len(t.wildAlias) > 0 && !isIPv4Literal(h) {
		_, port := splitHostPort(host)
		for i := 0; i < len(h); i++ {
			if h[i] == '.' {
				for _, w := range t.wildAlias[h[i+1:]] {
					if w.port == "" || w.port == port {
						return toSite, w.route
					}
				}
			}
		}
	}
	return toForeign, nil
}

// isIPv4Literal reports whether h is a dotted-decimal IPv4 address, which
// wildcard aliases never match (sites.WildcardRank).
func isIPv4Literal(h string) bool {
	dots := 0
	for i := 0; i < len(h); i++ {
		switch c := h[i]; {
		case c == '.':
			dots++
		case c < '0' || c > '9':
			return false
		}
	}
	return dots == 3
}

// validHost reports whether a Host header is unambiguous: hostname[:port]
// or [IPv6][:port]. A hostname is dot-separated labels of ASCII letters,
// digits, '-' and '_' (so an IPv4 address is one), at most 253 bytes plus
// an optional final dot; a port is 1 to 5 digits up to 65535. Anything
// else — userinfo, a second colon, spaces, percent-encoding, an IPv6 zone
// — gets 400 before routing (docs/engine.md, "What siteplex refuses").
func validHost(h string) bool {
	if h == "" || len(h) > 260 {
		return false
	}
	if h[0] == '[' {
		end := strings.IndexByte(h, ']')
		if end < 0 {
			return false
		}
		ip, err := netip.ParseAddr(h[1:end])
		if err != nil || !ip.Is6() || ip.Zone() != "" {
			return false
		}
		rest := h[end+1:]
		return rest == "" || rest[0] == ':' && validPort(rest[1:])
	}
	name := h
	if i := strings.IndexByte(h, ':'); i >= 0 {
		if !validPort(h[i+1:]) {
			return false
		}
		name = h[:i]
	}
	name = strings.TrimSuffix(name, ".")
	if name == "" || len(name) > 253 {
		return false
	}
	label := 0
	for i := 0; i < len(name); i++ {
		switch c := name[i]; {
		case c == '.':
			if label == 0 {
				return false
			}
			label = 0
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
			label++
			if label > 63 {
				return false
			}
		default:
			return false
		}
	}
	return label > 0
}

// validPort reports whether p is a port number: 1 to 5 digits, at most
// 65535.
func validPort(p string) bool {
	if p == "" || len(p) > 5 {
		return false
	}
	n := 0
	for i := 0; i < len(p); i++ {
		if p[i] < '0' || p[i] > '9' {
			return false
		}
		n = n*10 + int(p[i]-'0')
	}
	return n <= 65535
}

// normHost lower-cases host and strips a port and IPv6 brackets, using buf
// when it has to change bytes. ok is false for an empty or oversized host.
func normHost(host string, buf *[256]byte) (string, bool) {
	if host == "" {
		return "", false
	}
	if host[0] == '[' {
		end := strings.IndexByte(host, ']')
		if end < 0 {
			return "", false
		}
		host = host[1:end]
	} else if i := strings.LastIndexByte(host, ':'); i >= 0 && strings.IndexByte(host[:i], ':') < 0 {
		host = host[:i]
	}
	host = strings.TrimSuffix(host, ".")
	if host == "" {
		return "", false
	}
	lower := true
	for i := 0; i < len(host); i++ {
		if c := host[i]; c >= 'A' && c <= 'Z' {
			lower = false
			break
		}
	}
	if lower {
		return host, true
	}
	if len(host) > len(buf) {
		return "", false
	}
	for i := 0; i < len(host); i++ {
		c := host[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	// The string shares buf: callers use it only for map lookups within
	// the caller's frame (the compiler's string(bytes) map-key optimisation
	// would copy; this avoids even that).
	return unsafeString(buf[:len(host)]), true
}

// unsafeString views b as a string without copying; b must not change while
// the string is in use.
func unsafeString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
