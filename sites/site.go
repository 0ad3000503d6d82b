package sites

import (
	"cmp"
	"fmt"
	"net"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Site is one site of the project (a django_site row, a Wagtail site, a
// tenant; see Origin) with what siteplex knows about it. The JSON field
// names are the contract of `siteplex sites --json` (docs/sites.md, "The JSON shape").
type Site struct {
	ID          int64    `json:"id"`
	Name        string   `json:"name"`
	Domain      string   `json:"domain"`
	Slug        string   `json:"slug"`
	RealDomain  *string  `json:"real_domain"`
	Enabled     bool     `json:"enabled"`
	Aliases     []string `json:"aliases"`
	LocalDomain string   `json:"local_domain"`
	Forced      bool     `json:"forced"`
	Problems    []string `json:"problems"`
	// Origin holds the source ("source" in JSON) and what it adds.
	Origin

	// CanonicalAlias is the multisite_alias row marked canonical, if any.
	// It is also the first element of Aliases.
	CanonicalAlias string `json:"-"`
	// PlusRow is true when the site has a django_multisite_plus_site row.
	PlusRow bool `json:"-"`
	// PlusSlug is the slug stored in django_multisite_plus_site ("" when
	// there is no row or the stored slug is empty).
	PlusSlug string `json:"-"`
	// Env and Command come from a [sites.<slug>] table in siteplex.toml.
	Env     map[string]string `json:"-"`
	Command []string          `json:"-"`
	// Declared is true when the site (also) comes from siteplex.toml.
	Declared bool `json:"-"`
	// HostsProblems are the Problems that only keep a name out of the
	// hosts file (a domain that is localhost or an IP address): the site
	// is still routed on its local name. Each is also in Problems.
	HostsProblems []string `json:"-"`
	// Unrouted are the Problems that name one of the site's names siteplex
	// never routes while it routes the others: a django-multisite alias
	// "*" (it would route every name), a django-pgschemas folder route.
	// They do not stop routing. Each is also in Problems.
	Unrouted []string `json:"-"`
}

// Usable reports whether the site may be routed and its names written to
// the hosts file: every problem it has, if any, is a hosts-only one or
// names a name that is not routed (see HostsProblems, Unrouted and
// HostsName).
func (s *Site) Usable() bool {
	for _, p := range s.Problems {
		if !slices.Contains(s.HostsProblems, p) && !slices.Contains(s.Unrouted, p) {
			return false
		}
	}
	return true
}

// HostsName reports whether name may be written to a hosts file: never
// localhost (with or without a port) nor an IP address, which a hosts line
// would map to loopback for every program on the machine (the
// "127.0.0.1 localhost" that Mezzanine's 127.0.0.1:8000 site would give).
func HostsName(name string) bool {
	h := strings.ToLower(strings.TrimSuffix(StripPort(strings.TrimSpace(name)), "."))
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	return h != "" && h != "localhost" && net.ParseIP(h) == nil
}

// NonCanonicalAliases returns the aliases that are not the canonical one:
// live domains, written to the hosts file only when asked for.
func (s *Site) NonCanonicalAliases() []string {
	var out []string
	for _, a := range s.Aliases {
		if a != s.CanonicalAlias {
			out = append(out, a)
		}
	}
	return out
}

// DeriveSlug turns a domain into a slug the way docs/sites.md says: port and a
// leading "www." removed, lower-cased, '.' → '-', characters outside
// [a-z0-9-] dropped.
func DeriveSlug(domain string) string {
	d := strings.ToLower(strings.TrimSpace(domain))
	if i := strings.LastIndexByte(d, ':'); i >= 0 {
		d = d[:i]
	}
	d = strings.TrimPrefix(d, "www.")
	var b strings.Builder
	for i := 0; i < len(d); i++ {
		c := d[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-':
			b.WriteByte(c)
		case c == '.':
			b.WriteByte('-')
		}
	}
	return b.String()
}

// Finalize fills in the derived fields of a list of sites read from a
// database or config: slugs (stored, else derived, with collisions
// resolved), local domains through df, Forced from forcedID (0 = none) and
// Problems. The sites are sorted by id. It is deterministic and does no I/O.
func Finalize(list []Site, df DomainFormat, forcedID int64) {
	byID := func(a, b Site) int { return cmp.Compare(a.ID, b.ID) }
	if !slices.IsSortedFunc(list, byID) { // a database list is sorted already
		slices.SortStableFunc(list, byID)
	}

	taken := make(map[string]bool, len(list))
	for i := range list {
		s := &list[i]
		s.Problems = append([]string{}, s.SourceProblems...) // never nil: JSON prints []
		s.HostsProblems, s.Unrouted = nil, nil
		if s.PlusSlug != "" {
			s.Slug = s.PlusSlug
		}
		if s.PlusSlug != "" || (s.Declared && s.Slug != "") {
			taken[s.Slug] = true
		}
		if s.Aliases == nil {
			s.Aliases = []string{}
		}
		if !s.PlusRow {
			s.Enabled = true
			s.RealDomain = nil
		}
	}
	// Derived slugs: lower ids first, so the higher id yields on a collision.
	for i := range list {
		s := &list[i]
		if s.PlusSlug != "" || (s.Declared && s.Slug != "") {
			continue
		}
		s.Slug = DeriveSlug(s.Domain)
		if s.Slug != "" && taken[s.Slug] {
			s.Slug = s.Slug + "-" + strconv.FormatInt(s.ID, 10)
		}
		if s.Slug != "" {
			taken[s.Slug] = true
		}
	}

	first := make(map[string]int, len(list)) // local domain → index of its first site
	var dups map[string][]int                // local domain → indexes, only when shared
	for i := range list {
		s := &list[i]
		s.Forced = forcedID != 0 && s.ID == forcedID
		if _, err := Hostname(s.Domain); err != nil {
			s.Problems = append(s.Problems, "invalid domain: "+err.Error())
		} else if !HostsName(s.Domain) {
			p := "domain " + s.Domain + " is this machine (localhost or an IP address): never written to the hosts file; the site is reached on its local name"
			s.Problems = append(s.Problems, p)
			s.HostsProblems = append(s.HostsProblems, p)
		}
		for _, p := range unroutedNames(s) {
			s.Problems = append(s.Problems, p)
			s.Unrouted = append(s.Unrouted, p)
		}
		if s.Slug == "" {
			s.Problems = append(s.Problems, "empty slug")
			s.LocalDomain = ""
			continue
		}
		if df.UsesSchema() && s.Schema == "" {
			s.Problems = append(s.Problems, fmt.Sprintf("domain format %q uses {schema}, and only django-tenants and django-pgschemas sites have a schema", df))
			s.LocalDomain = ""
			continue
		}
		local := df.Expand(s.Slug, s.ID, s.Schema)
		h, err := Hostname(local)
		if err != nil {
			s.Problems = append(s.Problems, "invalid local domain: "+err.Error())
			s.LocalDomain = local
			continue
		}
		s.LocalDomain = h
		if j, ok := first[h]; ok {
			if dups == nil {
				dups = map[string][]int{}
			}
			if len(dups[h]) == 0 {
				dups[h] = []int{j}
			}
			dups[h] = append(dups[h], i)
		} else {
			first[h] = i
		}
	}
	for name, idx := range dups {
		for _, i := range idx {
			var others []string
			for _, j := range idx {
				if j != i {
					others = append(others, strconv.FormatInt(list[j].ID, 10))
				}
			}
			list[i].Problems = append(list[i].Problems,
				fmt.Sprintf("duplicate local domain %s (also site %s)", name, strings.Join(others, ", ")))
		}
	}
}

// unroutedNames are the problems for the names of s that siteplex never
// routes although it routes the site (docs/sites.md): a wildcard alias
// that would match every name ("*", "*:8000"), and the folder routes of a
// django-pgschemas tenant that also has a domain (a tenant with folders
// only has a SourceProblem that keeps it from being routed at all).
func unroutedNames(s *Site) []string {
	var out []string
	for _, a := range s.Aliases {
		switch {
		case !IsWildcard(a) || !UnroutedWildcard(a):
		case strings.HasPrefix(a, "*."):
			out = append(out, fmt.Sprintf("alias %s is not routed: django-multisite matches a * in the first label only", a))
		default:
			out = append(out, fmt.Sprintf("alias %s is not routed: it would send every name to this site, and siteplex forwards no name it does not know; the site answers on its other names", a))
		}
	}
	if s.Source == SourcePGSchemas && s.CanonicalAlias != "" && len(s.Folders) > 0 {
		out = append(out, fmt.Sprintf("folder route %s not routed: siteplex routes by host name, so open it through the site of that domain", strings.Join(s.Folders, ", ")))
	}
	return out
}

// Find returns the site that key names: an id, a slug, a domain, a local
// domain or an alias (case-insensitive, port ignored for domains), else
// the site's name (case-insensitive) when only one site has it.
func Find(list []Site, key string) (*Site, bool) {
	k := strings.ToLower(strings.TrimSpace(key))
	if id, err := strconv.ParseInt(k, 10, 64); err == nil {
		for i := range list {
			if list[i].ID == id {
				return &list[i], true
			}
		}
	}
	for i := range list {
		if strings.ToLower(list[i].Slug) == k {
			return &list[i], true
		}
	}
	for i := range list {
		s := &list[i]
		if strings.EqualFold(s.Domain, k) || strings.EqualFold(StripPort(s.Domain), k) || s.LocalDomain == k {
			return s, true
		}
		if s.RealDomain != nil && strings.EqualFold(*s.RealDomain, k) {
			return s, true
		}
		for _, a := range s.Aliases {
			if strings.EqualFold(a, k) {
				return s, true
			}
		}
	}
	// A name, when exactly one site has it.
	var named *Site
	for i := range list {
		if strings.EqualFold(strings.TrimSpace(list[i].Name), k) {
			if named != nil {
				return nil, false
			}
			named = &list[i]
		}
	}
	return named, named != nil
}

// UnknownSiteError builds the *UsageError for a SITE that matched nothing:
// the sites sharing that name when it is ambiguous, else the closest
// sites, ranked by the edit distance from key to the nearest of their
// slug, name, domain and aliases (case-insensitive; lower ids first on a
// tie).
func UnknownSiteError(list []Site, key string) error {
	k := strings.ToLower(strings.TrimSpace(key))
	var same []string
	for i := range list {
		if strings.EqualFold(strings.TrimSpace(list[i].Name), k) {
			same = append(same, siteChoice(&list[i]))
		}
	}
	if len(same) > 1 {
		return Usagef("site name %q is shared by %d sites: %s; give an id or a slug", key, len(same), strings.Join(same, ", "))
	}
	type cand struct {
		site *Site
		d    int
	}
	cs := make([]cand, 0, len(list))
	for i := range list {
		s := &list[i]
		best := -1
		for _, l := range append([]string{s.Slug, s.Name, s.Domain, StripPort(s.Domain)}, s.Aliases...) {
			if l == "" {
				continue
			}
			if d := levenshtein(k, strings.ToLower(l)); best < 0 || d < best {
				best = d
			}
		}
		if best >= 0 {
			cs = append(cs, cand{s, best})
		}
	}
	sort.SliceStable(cs, func(i, j int) bool {
		if cs[i].d != cs[j].d {
			return cs[i].d < cs[j].d
		}
		return cs[i].site.ID < cs[j].site.ID
	})
	var near []string
	for _, c := range cs {
		if len(near) == 3 || c.d > len(k)/2+2 {
			break
		}
		near = append(near, siteChoice(c.site))
	}
	if len(near) == 0 {
		return Usagef("unknown site %q: `siteplex sites` lists the sites", key)
	}
	return Usagef("unknown site %q; closest: %s", key, strings.Join(near, ", "))
}

// siteChoice is "2 gh (Ghana, example.gh)" for messages.
func siteChoice(s *Site) string {
	if s.Name == "" || s.Name == s.Domain {
		return fmt.Sprintf("%d %s (%s)", s.ID, s.Slug, s.Domain)
	}
	return fmt.Sprintf("%d %s (%s, %s)", s.ID, s.Slug, s.Name, s.Domain)
}

func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
