package sites

import (
	"cmp"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Site is one row of django_site with what siteplex knows about it. The JSON
// field names are the contract of `siteplex sites --json` (docs/sites.md, "The JSON shape").
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
}

// Usable reports whether the site may be written to the hosts file and
// routed: it has no problems.
func (s *Site) Usable() bool { return len(s.Problems) == 0 }

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
		s.Problems = []string{} // never nil: JSON prints []
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
		}
		if s.Slug == "" {
			s.Problems = append(s.Problems, "empty slug")
			s.LocalDomain = ""
			continue
		}
		local := df.Apply(s.Slug, s.ID)
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

// Find returns the site that key names: an id, a slug, a domain, a local
// domain or an alias (case-insensitive, port ignored for domains).
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
	return nil, false
}

// UnknownSiteError builds the *UsageError for a SITE that matched nothing,
// listing the closest slugs and domains.
func UnknownSiteError(list []Site, key string) error {
	type cand struct {
		label string
		d     int
	}
	var cs []cand
	for _, s := range list {
		for _, l := range []string{s.Slug, s.Domain} {
			if l == "" {
				continue
			}
			d := levenshtein(strings.ToLower(key), strings.ToLower(l))
			if strings.Contains(strings.ToLower(l), strings.ToLower(key)) {
				d = 0
			}
			cs = append(cs, cand{fmt.Sprintf("%d %s (%s)", s.ID, s.Slug, s.Domain), d})
		}
	}
	sort.SliceStable(cs, func(i, j int) bool { return cs[i].d < cs[j].d })
	var near []string
	seen := map[string]bool{}
	for _, c := range cs {
		if len(near) == 3 || c.d > len(key)/2+2 {
			break
		}
		if !seen[c.label] {
			seen[c.label] = true
			near = append(near, c.label)
		}
	}
	if len(near) == 0 {
		return Usagef("unknown site %q: `siteplex sites` lists the sites", key)
	}
	return Usagef("unknown site %q; closest: %s", key, strings.Join(near, ", "))
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
